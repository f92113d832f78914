import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileDurably } from '../../common/src/durable-file.js'
import { FerryError } from '../../common/src/errors.js'

/**
 * What a simulated device keeps across restarts: the stand-in for the ESP32's NVS. One small JSON
 * file per device, `<state dir>/<id>.json`.
 *
 * `boot` is incremented and written once per start, before the first reading, exactly like the
 * firmware's `next_boot_count` (docs/firmware-notes.md#boot-counter-and-sequence-numbers). `seq` is
 * a RAM counter that restarts at 1 each boot: `(device, boot, seq)` identifies a reading
 * (README.md#topics-and-payloads), one flash write per boot instead of one per reading. `lastSeq`
 * is informational (written at a clean stop).
 */
export interface SimState {
  schema: 1
  device: string
  boot: number
  /** The last seq of the previous boot, when it stopped cleanly. */
  lastSeq?: number
  /** The running firmware: the factory version until an OTA update is installed. */
  firmware: { version: string; secureVersion: number }
  /** The last OTA outcome, for people reading the file. */
  ota?: { deployment: string; version: string; state: string; reason?: string; at: number }
  updatedAt: number
}

/** `<dir>/<id>.json`; the id has been validated by the caller (it is a file name). */
export function stateFile(dir: string, device: string): string {
  return join(dir, `${device}.json`)
}

/**
 * Reads the state file, or undefined when there is none yet. A file that exists but cannot be read
 * stops the simulator: starting over at boot 1 would reuse `(device, boot, seq)` ids the gateway has
 * already stored, and it would drop the new readings as duplicates.
 */
export function loadState(file: string, device: string): SimState | undefined {
  if (!existsSync(file)) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new FerryError('FERRY_ERR_USAGE', `device state ${file} is unreadable (${(err as Error).message}); fix or delete it. Deleting restarts the boot counter at 1, so the gateway may treat new readings as duplicates of old ones.`, { cause: err })
  }
  const state = parsed as Partial<SimState> | null
  if (!state || state.schema !== 1 || state.device !== device || !Number.isSafeInteger(state.boot) || (state.boot as number) < 0 || typeof state.firmware?.version !== 'string' || !Number.isSafeInteger(state.firmware?.secureVersion)) {
    throw new FerryError('FERRY_ERR_USAGE', `device state ${file} is not a state file of device "${device}"; point --state at another folder or delete the file.`)
  }
  return state as SimState
}

/**
 * Writes the state atomically: a temporary file, fsync, rename over the old one, fsync the folder.
 * A crash leaves the old file or the new one, never half of one.
 */
export function saveState(file: string, state: SimState): void {
  writeFileDurably(file, JSON.stringify(state, null, 2) + '\n', 0o644)
}
