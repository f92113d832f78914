import type { DeadIn, EventIn } from '../../buffer/ring-buffer.js'

type Kind = EventIn['kind']

const OTA_STATES = new Set(['downloading', 'verified', 'installed', 'failed', 'rolled-back'])

/**
 * Status (LWT `online`/`offline`), `led/state` (`{"cmd","brightness"}`) and `ota/status`
 * (`{"deployment","state","version","reason"?}`). Valid ones become events; anything else a dead letter.
 */
export function handleEvent(topic: string, device: string, kind: Kind, payload: Buffer, receivedAt: number, maxBytes: number): EventIn | DeadIn {
  const dead = (reason: string): DeadIn => ({ type: 'dead', topic, device, reason, payload, receivedAt })
  if (payload.length > maxBytes) return dead(`payload is ${payload.length} bytes, more than FERRY_INGEST_MAX_PAYLOAD_BYTES=${maxBytes}`)
  const text = payload.toString('utf8')
  const event = (): EventIn => ({ type: 'event', topic, device, kind, payload, receivedAt })
  if (kind === 'status') {
    // An empty retained payload clears the retained status; nothing to record.
    return text === 'online' || text === 'offline' ? event() : dead('status must be "online" or "offline"')
  }
  let o: Record<string, unknown>
  try {
    const v: unknown = JSON.parse(text)
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return dead(`${kind} must be a JSON object`)
    o = v as Record<string, unknown>
  } catch (err) {
    return dead(`not JSON: ${(err as Error).message}`)
  }
  if (kind === 'led_state') {
    if (typeof o.brightness !== 'number' || !Number.isInteger(o.brightness) || o.brightness < 0 || o.brightness > 100) {
      return dead('"brightness" must be an integer 0..100')
    }
    if (o.cmd !== undefined && (typeof o.cmd !== 'string' || o.cmd.length > 64)) return dead('"cmd" must be a string of at most 64 characters')
    return event()
  }
  if (typeof o.state !== 'string' || !OTA_STATES.has(o.state)) return dead(`"state" must be one of ${[...OTA_STATES].join('|')}`)
  if (typeof o.version !== 'string' || o.version.length > 64) return dead('"version" must be a string')
  if (typeof o.deployment !== 'string' || o.deployment.length > 128) return dead('"deployment" must be a string')
  return event()
}
