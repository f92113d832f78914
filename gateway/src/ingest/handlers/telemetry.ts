import type { DeadIn, ReadingIn } from '../../buffer/index.js'

const MAX_SAFE = Number.MAX_SAFE_INTEGER

function isUint(v: unknown, max = MAX_SAFE): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max
}

/**
 * Validates `{"seq": uint, "boot": uint, "ts"?: epoch ms, "pot": 0..4095, "switch": 0|1, "led"?: 0..100}`.
 * Extra fields are allowed (newer firmware) and kept in the raw payload; a payload of these fields
 * alone is marked `fieldsOnly`, so the buffer may store its columns without the raw bytes
 * (docs/buffer-storage.md). Returns the reading, or a dead letter whose reason names the first field
 * that is wrong and what was expected.
 */
export function handleTelemetry(topic: string, device: string, payload: Buffer, receivedAt: number, maxBytes: number): ReadingIn | DeadIn {
  const dead = (reason: string): DeadIn => ({ type: 'dead', topic, device, reason, payload, receivedAt })
  if (payload.length > maxBytes) return dead(`payload is ${payload.length} bytes, more than FERRY_INGEST_MAX_PAYLOAD_BYTES=${maxBytes}`)
  let parsed: unknown
  try {
    parsed = JSON.parse(payload.toString('utf8'))
  } catch (err) {
    return dead(`not JSON: ${(err as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return dead('telemetry must be a JSON object')
  const fields = parsed as Record<string, unknown>
  if (!isUint(fields.seq)) return dead('"seq" must be an unsigned integer')
  if (!isUint(fields.boot)) return dead('"boot" must be an unsigned integer')
  // From here on the reading is identified: a dead letter still names it, so it can be confirmed.
  const { boot, seq } = fields
  const deadReading = (reason: string): DeadIn => ({ ...dead(reason), reading: { boot, seq } })
  if (!isUint(fields.pot, 4095)) return deadReading('"pot" must be an integer 0..4095')
  if (fields.switch !== 0 && fields.switch !== 1) return deadReading('"switch" must be 0 or 1')
  if (fields.led !== undefined && !isUint(fields.led, 100)) return deadReading('"led" must be an integer 0..100 when present')
  if (fields.ts !== undefined && !isUint(fields.ts)) return deadReading('"ts" must be epoch milliseconds when present')
  let keys = 0
  for (const _ in fields) keys++
  return {
    type: 'reading',
    topic,
    device,
    boot,
    seq,
    tsMs: fields.ts as number | undefined,
    receivedAt,
    pot: fields.pot,
    switch: fields.switch,
    led: (fields.led as number | undefined) ?? null,
    payload,
    fieldsOnly: keys === 4 + (fields.ts === undefined ? 0 : 1) + (fields.led === undefined ? 0 : 1),
  }
}
