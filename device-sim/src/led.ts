/**
 * LED commands from `sensors/<id>/led/set` (retained, QoS 1), parsed as the firmware does
 * (firmware/lib/ferry_core/src/command.cpp): `{"cmd":"<id>","brightness":0..100,"expires"?:epoch ms}`
 * or a bare integer such as `80`. Commands are absolute and carry an id that is echoed on
 * `led/state`, so applying one twice (QoS 1 redelivery, the retained copy after every reconnect) is
 * harmless and the sender can match the echo.
 */

import { decodeJsonPayload } from './payload.js'

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
  const decoded = decodeJsonPayload(payload, MAX_LED_PAYLOAD, 'not JSON or a bare integer')
  if (!decoded.ok) return decoded
  const parsed = decoded.value
  if (typeof parsed === 'number') {
    return isBrightness(parsed) ? { ok: true, command: { cmd: '', brightness: parsed } } : { ok: false, reason: 'brightness must be an integer 0..100' }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, reason: 'expected {"cmd", "brightness"} or an integer' }
  const fields = parsed as Record<string, unknown>
  if (typeof fields.cmd !== 'string' || fields.cmd.length === 0 || fields.cmd.length > 64) return { ok: false, reason: 'cmd must be a string of 1..64 characters' }
  if (!isBrightness(fields.brightness)) return { ok: false, reason: 'brightness must be an integer 0..100' }
  if (fields.expires !== undefined && !(typeof fields.expires === 'number' && Number.isSafeInteger(fields.expires) && fields.expires >= 0)) {
    return { ok: false, reason: 'expires must be epoch milliseconds' }
  }
  return { ok: true, command: { cmd: fields.cmd, brightness: fields.brightness, ...(fields.expires !== undefined ? { expires: fields.expires as number } : {}) } }
}

export type LedVerdict = 'apply' | 'expired' | 'clock-not-set'

/**
 * A command with `expires` applies only while the wall clock is known and before the expiry, so a
 * stale retained command is not replayed after a long outage. Without `expires` it always applies.
 */
export function judgeLedCommand(command: LedCommand, clockValid: boolean, nowMs: number): LedVerdict {
  if (command.expires === undefined) return 'apply'
  if (!clockValid) return 'clock-not-set'
  return nowMs < command.expires ? 'apply' : 'expired'
}

/** The `led/state` payload: `{"cmd":"<id>","brightness":80}` (firmware `encode_led_state`). */
export function encodeLedState(cmd: string, brightness: number): string {
  return JSON.stringify({ cmd, brightness })
}
