/**
 * A message payload decoded as JSON, as the firmware reads one: refused when it is larger than
 * `maxBytes` (the firmware's buffer) or not JSON; `notJson` starts the refusal's reason.
 */
export function decodeJsonPayload(payload: Buffer | string, maxBytes: number, notJson = 'not JSON'): { ok: true; value: unknown } | { ok: false; reason: string } {
  const text = Buffer.isBuffer(payload) ? payload.toString('utf8') : payload
  if (Buffer.byteLength(text) > maxBytes) return { ok: false, reason: `payload is larger than ${maxBytes} bytes` }
  try {
    return { ok: true, value: JSON.parse(text) as unknown }
  } catch (err) {
    return { ok: false, reason: `${notJson}: ${(err as Error).message}` }
  }
}
