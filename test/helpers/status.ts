import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

const ROOT = join(import.meta.dirname, '..', '..')

type PerDevice = { total: number; byDevice: Record<string, number> }

/** The parts of `ferry status --json` and `/api/status` the tests read (both have them). */
export interface StatusJson {
  buffered: { rows: number; bytes: number }
  runway: { onFull: 'drop-oldest' | 'backpressure'; ingestPerS: number; freeRows: number; freeBytes: number; seconds: number | null } | null
  sinks: Array<{ name: string; rows: number; sentTotal: number; drainEtaS: number | null }>
  dropped: PerDevice
  expired: PerDevice
  deadLetters: {
    total: number
    bySource: Record<string, number>
    held: { rows: number; bytes: number }
    limits: { maxRows: number; maxBytes: number; deviceMaxRows: number; deviceMaxBytes: number; maxPayloadBytes: number } | null
    discarded: PerDevice & { byReason: Record<string, number> }
  }
  /** `ferry status --json` only (the API has `gateway.ingestPaused`). */
  ingestPaused?: { reason: string; code: string } | null
  /** `/api/status` only. */
  gateway?: { brokerConnected: boolean; ingestPaused: { reason: string; code: string } | null }
}

/** Runs `ferry status --db <db>` (text) from the TypeScript sources. */
export function ferryStatusText(db: string): string {
  return execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'status', '--db', db], { encoding: 'utf8' })
}

/** Runs `ferry status --json --db <db>`. */
export function ferryStatusJson(db: string): StatusJson {
  return JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'status', '--json', '--db', db], { encoding: 'utf8' })) as StatusJson
}
