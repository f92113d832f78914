/**
 * LED commands from `sensors/<id>/led/set` (retained, QoS 1), parsed as the firmware does
 * (firmware/lib/ferry_core/src/command.cpp): `{"cmd":"<id>","brightness":0..100,"expires"?:epoch ms}`
 * or a bare integer such as `80`. Commands are absolute and carry an id that is echoed on
 * `led/state`, so applying one twice (QoS 1 redelivery, the retained copy after every reconnect) is
 * harmless and the sender can match the echo.
 */

export interface LedCommand {
  /** "" for a bare integer. */
  cmd: string
  brightness: number
  /** Epoch ms after which the command must not be applied. */
  expires?: number
}

export type LedParse = { ok: true; command: LedCommand } | { ok: false; reason: string }

/** Payloads larger than this are refused before parsing (the firmware's JSON limit). */
export const MAX_LED_PAYLOAD = 1024

function isBrightness(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 100
}

/** Parses a `led/set` payload; a refusal names what is wrong, and the caller keeps the LED as it is. */
export function parseLedCommand(payload: Buffer | string): LedParse {
  const text = Buffer.isBuffer(payload) ? payload.toString('utf8') : payload
  if (Buffer.byteLength(text) > MAX_LED_PAYLOAD) return { ok: false, reason: `payload is larger than ${MAX_LED_PAYLOAD} bytes` }
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (err) {
    return { ok: false, reason: `not JSON or a bare integer: ${(err as Error).message}` }
  }
  if (typeof v === 'number') {
    return isBrightness(v) ? { ok: true, command: { cmd: '', brightness: v } } : { ok: false, reason: 'brightness must be an integer 0..100' }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, reason: 'expected {"cmd", "brightness"} or an integer' }
  const o = v as Record<string, unknown>
  if (typeof o.cmd !== 'string' || o.cmd.length === 0 || o.cmd.length > 64) return { ok: false, reason: 'cmd must be a string of 1..64 characters' }
  if (!isBrightness(o.brightness)) return { ok: false, reason: 'brightness must be an integer 0..100' }
  if (o.expires !== undefined && !(typeof o.expires === 'number' && Number.isSafeInteger(o.expires) && o.expires >= 0)) {
    return { ok: false, reason: 'expires must be epoch milliseconds' }
  }
  return { ok: true, command: { cmd: o.cmd, brightness: o.brightness, ...(o.expires !== undefined ? { expires: o.expires as number } : {}) } }
}

export type LedVerdict = 'apply' | 'expired' | 'clock-not-set'

/**
 * A command with `expires` applies only while the wall clock is known and before the expiry, so a
 * stale retained command is not replayed after a long outage. Without `expires` it always applies.
 */
export function judgeLedCommand(c: LedCommand, clockValid: boolean, nowMs: number): LedVerdict {
  if (c.expires === undefined) return 'apply'
  if (!clockValid) return 'clock-not-set'
  return nowMs < c.expires ? 'apply' : 'expired'
}

/** The `led/state` payload: `{"cmd":"<id>","brightness":80}` (firmware `encode_led_state`). */
export function encodeLedState(cmd: string, brightness: number): string {
  return JSON.stringify({ cmd, brightness })
}
