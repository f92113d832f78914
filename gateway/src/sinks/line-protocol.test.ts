import t from 'tap'
import { encodeBatch, escapeKey, escapeMeasurement, nsFromUs, toLine } from './line-protocol.js'
import type { BufferedReading } from './types.js'

function row(over: Partial<BufferedReading> = {}): BufferedReading {
  return { id: 1, device: 'dev1', boot: 3, seq: 42, tsUs: 1_767_225_600_123_456, receivedAt: 0, pot: 2048, switch: 1, led: null, payload: '{}', ...over }
}

t.test('writes the design line with integer fields and a nanosecond timestamp', async (t) => {
  t.equal(toLine(row()), 'telemetry,device=dev1 pot=2048i,switch=1i,seq=42i,boot=3i 1767225600123456000')
})

t.test('adds led when present, including 0', async (t) => {
  t.equal(toLine(row({ led: 80 })), 'telemetry,device=dev1 pot=2048i,switch=1i,seq=42i,boot=3i,led=80i 1767225600123456000')
  t.equal(toLine(row({ led: 0 })), 'telemetry,device=dev1 pot=2048i,switch=1i,seq=42i,boot=3i,led=0i 1767225600123456000')
})

t.test('never uses the unsigned u suffix', async (t) => {
  t.notMatch(toLine(row({ led: 5 })), /\du[ ,]/)
})

t.test('the timestamp is exact beyond 2^53 (digits and 000, no float loss)', async (t) => {
  // µs × 1000 for any real date is above 2^53, where doubles are 256 ns apart.
  t.equal(nsFromUs(9_007_199_254_740_991), '9007199254740991000')
  t.equal(nsFromUs(1_767_225_600_000_001), '1767225600000001000')
  t.equal(nsFromUs(0), '0')
  t.equal(nsFromUs(-5), '-5000')
  t.throws(() => nsFromUs(1.5), /integer number of microseconds/)
  for (const us of [1, 999, 1000, 1_700_000_000_000_000, 2 ** 52 + 1]) t.equal(nsFromUs(us), (BigInt(us) * 1000n).toString())
  t.equal(BigInt(1_767_225_600_000_001 * 1000).toString(), '1767225600000001024', 'control: float math lands 24 ns off')
})

t.test('escapes commas and spaces in the measurement', async (t) => {
  t.equal(escapeMeasurement('my meas,x=y'), 'my\\ meas\\,x=y')
  t.match(toLine(row(), 'a b,c'), /^a\\ b\\,c,device=dev1 /)
})

t.test('escapes commas, spaces and equals signs in tag keys, tag values and field keys', async (t) => {
  t.equal(escapeKey('a,b c=d'), 'a\\,b\\ c\\=d')
  t.equal(toLine(row({ device: 'we ird,dev=1' })), 'telemetry,device=we\\ ird\\,dev\\=1 pot=2048i,switch=1i,seq=42i,boot=3i 1767225600123456000')
})

t.test('a row that cannot be encoded is rejected with a reason, the others encoded', async (t) => {
  const { ok, bad } = encodeBatch([row({ id: 1 }), row({ id: 2, pot: 1.5 }), row({ id: 3, device: '' }), row({ id: 4 })])
  t.same(ok.map((x) => x.id), [1, 4])
  t.same(bad.map((x) => x.id), [2, 3])
  t.match(bad[0]?.reason, /pot must be an integer/)
  t.match(bad[1]?.reason, /device id is empty/)
})
