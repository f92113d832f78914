import t from 'tap'
import { encodeLedState, judgeLedCommand, parseLedCommand } from './led.js'

t.test('accepts the JSON command and a bare integer', async (t) => {
  t.same(parseLedCommand('{"cmd":"a1","brightness":80}'), { ok: true, command: { cmd: 'a1', brightness: 80 } })
  t.same(parseLedCommand('{"cmd":"a1","brightness":0,"expires":1767225600000}'), { ok: true, command: { cmd: 'a1', brightness: 0, expires: 1767225600000 } })
  t.same(parseLedCommand(Buffer.from('80')), { ok: true, command: { cmd: '', brightness: 80 } })
})

t.test('refuses what the firmware refuses, saying why', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['101', /0\.\.100/],
    ['-1', /0\.\.100/],
    ['12.5', /0\.\.100/],
    ['bright', /not JSON/],
    ['[1]', /expected/],
    ['{"brightness":10}', /cmd/],
    ['{"cmd":"","brightness":10}', /cmd/],
    [`{"cmd":"${'x'.repeat(65)}","brightness":10}`, /cmd/],
    ['{"cmd":"a","brightness":"10"}', /brightness/],
    ['{"cmd":"a","brightness":10,"expires":-5}', /expires/],
    [`{"cmd":"a","brightness":10,"pad":"${'x'.repeat(1100)}"}`, /larger/],
  ]
  for (const [payload, why] of cases) {
    const r = parseLedCommand(payload)
    t.equal(r.ok, false, payload.slice(0, 40))
    if (!r.ok) t.match(r.reason, why)
  }
})

t.test('an expired command is not applied; one without expiry always is', async (t) => {
  t.equal(judgeLedCommand({ cmd: 'a', brightness: 1, expires: 1000 }, true, 999), 'apply')
  t.equal(judgeLedCommand({ cmd: 'a', brightness: 1, expires: 1000 }, true, 1000), 'expired')
  t.equal(judgeLedCommand({ cmd: 'a', brightness: 1, expires: 1000 }, false, 0), 'clock-not-set')
  t.equal(judgeLedCommand({ cmd: 'a', brightness: 1 }, false, 0), 'apply')
})

t.test('echo payload matches the led/state contract (README.md#topics-and-payloads)', async (t) => {
  t.equal(encodeLedState('a1', 80), '{"cmd":"a1","brightness":80}')
})
