import t from 'tap'
import { handleTelemetry } from './telemetry.js'

const TOPIC = 'sensors/dev1/telemetry'
const handle = (body: unknown, maxBytes = 1024) => {
  const payload = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
  return handleTelemetry(TOPIC, 'dev1', payload, 1000, maxBytes)
}
const good = { seq: 7, boot: 2, ts: 1767225600000, pot: 4095, switch: 1, led: 100 }

t.test('a valid reading keeps every field and the raw payload', async (t) => {
  const r = handle(good)
  t.same(r, { type: 'reading', topic: TOPIC, device: 'dev1', boot: 2, seq: 7, tsMs: 1767225600000, receivedAt: 1000, pot: 4095, switch: 1, led: 100, payload: Buffer.from(JSON.stringify(good)), fieldsOnly: true })
})

t.test('ts and led are optional; extra fields from newer firmware are allowed and mark the payload as more than its fields', async (t) => {
  t.match(handle({ seq: 0, boot: 0, pot: 0, switch: 0 }), { type: 'reading', tsMs: undefined, led: null, fieldsOnly: true })
  t.match(handle({ ...good, rssi: -60 }), { type: 'reading', seq: 7, fieldsOnly: false })
  t.match(handle({ seq: 0, boot: 0, pot: 0, switch: 0, led: 5, extra: null }), { type: 'reading', fieldsOnly: false }, 'counted against the fields present')
})

t.test('anything else is a dead letter whose reason names the field', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ['{"seq":', /^not JSON: /],
    ['[1,2]', /must be a JSON object/],
    ['null', /must be a JSON object/],
    [{ ...good, seq: -1 }, /"seq" must be an unsigned integer/],
    [{ ...good, seq: 1.5 }, /"seq"/],
    [{ ...good, boot: '2' }, /"boot" must be an unsigned integer/],
    [{ ...good, pot: 4096 }, /"pot" must be an integer 0\.\.4095/],
    [{ ...good, switch: true }, /"switch" must be 0 or 1/],
    [{ ...good, led: 101 }, /"led" must be an integer 0\.\.100/],
    [{ ...good, ts: '2026-01-01' }, /"ts" must be epoch milliseconds/],
  ]
  for (const [body, reason] of cases) {
    const r = handle(body)
    t.match(r, { type: 'dead', topic: TOPIC, device: 'dev1', reason, receivedAt: 1000 }, JSON.stringify(body))
  }
})

t.test('a payload over the limit is refused before it is parsed', async (t) => {
  const r = handle(good, 10)
  t.match(r, { type: 'dead', reason: /more than FERRY_INGEST_MAX_PAYLOAD_BYTES=10/ })
})
