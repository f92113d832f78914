import t from 'tap'
import { parseLedCommand } from './parse.js'

t.test('reads the three TalkBack command forms', async (t) => {
  t.same(parseLedCommand('80'), { ok: true, brightness: 80 })
  t.same(parseLedCommand(' 0 '), { ok: true, brightness: 0 })
  t.same(parseLedCommand('LED=100'), { ok: true, brightness: 100 })
  t.same(parseLedCommand('led = 7'), { ok: true, brightness: 7 })
  t.same(parseLedCommand('LED:42'), { ok: true, brightness: 42 })
  t.same(parseLedCommand('{"device":"dev-1","brightness":55}'), { ok: true, brightness: 55, device: 'dev-1' })
  t.same(parseLedCommand('{"brightness":5,"expires":1700000000000}'), { ok: true, brightness: 5, expires: 1700000000000 })
})

t.test('refuses anything else with a reason that names the accepted forms', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['101', /outside 0\.\.100/],
    ['LED=1000', /use "80"/],
    ['-1', /use "80"/],
    ['80.5', /use "80"/],
    ['LED=', /use "80"/],
    ['TURN_ON', /cannot read "TURN_ON"; use "80", "LED=80"/],
    ['', /cannot read/],
    ['{', /not JSON/],
    ['[80]', /cannot read/],
    ['{"brightness":"80"}', /"brightness" must be an integer/],
    ['{"brightness":80.5}', /outside 0\.\.100/],
    ['{"device":"Bad Id","brightness":1}', /is not a device id/],
    ['{"device":"ferry-gateway","brightness":1}', /is not a device id/],
    ['{"brightness":1,"expires":"soon"}', /"expires" must be a time/],
  ]
  for (const [input, reason] of cases) {
    const r = parseLedCommand(input)
    t.equal(r.ok, false, input)
    if (!r.ok) t.match(r.reason, reason, input)
  }
})
