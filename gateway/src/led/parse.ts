import { isDeviceId } from '../../../common/src/ids.js'

/** A command string read into what the relay needs; `device` absent means "the default device". */
export type ParsedLedCommand =
  | { ok: true; brightness: number; device?: string; expires?: number }
  | { ok: false; reason: string }

const FORMS = 'use "80", "LED=80" or {"device":"<id>","brightness":80}'

/**
 * Reads a TalkBack `command_string` (at most 255 characters,
 * docs/cloud-apis.md#thingspeak-talkback). Accepted:
 * - `80`: brightness 0..100 for the default device;
 * - `LED=80` (also `led = 80`, `LED:80`): the same;
 * - JSON `{"brightness": 80, "device"?: "<id>", "expires"?: <epoch ms>}`.
 * Anything else is refused with a reason, which ends up in the commands table.
 */
export function parseLedCommand(input: string): ParsedLedCommand {
  const s = input.trim()
  const bare = /^(?:led\s*[=:]\s*)?([0-9]{1,3})$/i.exec(s)
  if (bare) return brightnessOf(Number(bare[1]), {})
  if (s.startsWith('{')) {
    let v: unknown
    try {
      v = JSON.parse(s)
    } catch (err) {
      return { ok: false, reason: `not JSON: ${(err as Error).message}; ${FORMS}` }
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, reason: `not a JSON object; ${FORMS}` }
    const o = v as Record<string, unknown>
    if (typeof o.brightness !== 'number') return { ok: false, reason: '"brightness" must be an integer 0..100' }
    if (o.device !== undefined && !isDeviceId(o.device)) return { ok: false, reason: `"device" ${JSON.stringify(o.device)} is not a device id (^[a-z0-9][a-z0-9_-]{0,62}$)` }
    if (o.expires !== undefined && (typeof o.expires !== 'number' || !Number.isSafeInteger(o.expires) || o.expires < 0)) {
      return { ok: false, reason: '"expires" must be a time in ms since the epoch' }
    }
    return brightnessOf(o.brightness, { device: o.device as string | undefined, expires: o.expires as number | undefined })
  }
  return { ok: false, reason: `cannot read ${JSON.stringify(s.slice(0, 80))}; ${FORMS}` }
}

function brightnessOf(n: number, extra: { device?: string; expires?: number }): ParsedLedCommand {
  if (!Number.isInteger(n) || n < 0 || n > 100) return { ok: false, reason: `brightness ${n} is outside 0..100` }
  return {
    ok: true,
    brightness: n,
    ...(extra.device !== undefined ? { device: extra.device } : {}),
    ...(extra.expires !== undefined ? { expires: extra.expires } : {}),
  }
}
