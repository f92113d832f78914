import type { ErrorCode } from '../../../common/src/errors.js'
import type { Logger } from '../../../common/src/logger.js'

/** Error codes that mean "no space to commit" (SQLite's and the file system's names for it). */
const DISK_FULL_CODES = new Set(['SQLITE_FULL', 'ENOSPC', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC', 'SQLITE_IOERR_SHMSIZE', 'SQLITE_IOERR'])

export const isDiskFull = (code: string): boolean => DISK_FULL_CODES.has(code)

/** Why ingest stopped taking messages. */
export type PauseReason = 'disk-full' | 'backpressure'

export const PAUSE_REASONS: readonly PauseReason[] = ['disk-full', 'backpressure']

/** The state while paused, as status, the API and `meta` show it. */
export interface IngestPause {
  reason: PauseReason
  code: ErrorCode
  since: number
  /** What the failed commit said. */
  error: string
}

/** Per reason: its error code (docs/errors.md), how often to probe, and the one line logged on entering and on leaving. */
const REASONS: Record<PauseReason, { code: ErrorCode; probeEveryMs: number; level: 'error' | 'warn'; entering: string; leaving: string }> = {
  'disk-full': {
    code: 'FERRY_ERR_BUFFER_FULL_DISK',
    probeEveryMs: 2000,
    level: 'error',
    entering: 'disk full: stopped acknowledging; the broker keeps the messages. Free space on the buffer volume; ingest resumes by itself',
    leaving: 'disk has space again; resuming ingest (nothing was lost: the broker held the messages)',
  },
  backpressure: {
    code: 'FERRY_ERR_BUFFER_BACKPRESSURE',
    probeEveryMs: 500,
    level: 'warn',
    entering: 'buffer full of undelivered readings (FERRY_BUFFER_ON_FULL=backpressure): ingest paused, the group was not committed and nothing acknowledged; the broker and the devices keep the messages. Resumes by itself once the drainers have freed room',
    leaving: 'the drainers freed room in the buffer; resuming ingest (no undelivered reading was dropped)',
  },
}

export interface PauseGuardOptions {
  /** Stop taking messages (disconnect without acknowledging: the broker keeps them). */
  pause: (p: IngestPause) => void
  resume: (p: IngestPause) => void
  log: Logger
  /** Overrides each reason's probe interval (tests). */
  probeEveryMs?: number
  now?: () => number
}

/**
 * "Ingest paused until X": when a commit cannot be made for a reason that time (or the operator) will
 * fix, stop acknowledging (the broker holds the messages, the devices keep theirs since nothing is
 * confirmed), probe every so often whether X holds, and resume by itself once it does.
 *
 * - disk-full: X = a write as large as a big batch commits (FERRY_ERR_BUFFER_FULL_DISK).
 * - backpressure: X = the buffer has room for a full group without deleting an undelivered reading
 *   (FERRY_ERR_BUFFER_BACKPRESSURE).
 *
 * One line is logged on entering (ERROR for a full disk, WARN for backpressure) and one INFO on leaving.
 */
export class PauseGuard {
  private timer: NodeJS.Timeout | undefined
  private state: IngestPause | undefined
  private readonly now: () => number

  constructor(private readonly opts: PauseGuardOptions) {
    this.now = opts.now ?? Date.now
  }

  /** The pause in force, if any. */
  get current(): IngestPause | undefined {
    return this.state
  }

  /**
   * Pauses for `reason` until `ready()` returns true (a throw counts as not ready); returns false, and
   * changes nothing, when ingest is already paused. `context` goes into the log line.
   */
  enter(reason: PauseReason, error: string, ready: () => boolean, context: Record<string, unknown> = {}): boolean {
    if (this.state) return false
    const r = REASONS[reason]
    const p: IngestPause = { reason, code: r.code, since: this.now(), error }
    this.state = p
    this.opts.log[r.level]({ ...context, reason, code: r.code, error }, r.entering)
    this.opts.pause(p)
    this.timer = setInterval(() => this.probe(p, ready), this.opts.probeEveryMs ?? r.probeEveryMs)
    return true
  }

  private probe(p: IngestPause, ready: () => boolean): void {
    let ok: boolean
    try {
      ok = ready()
    } catch {
      ok = false
    }
    if (!ok) return
    this.stop()
    this.opts.log.info({ reason: p.reason, pausedForMs: this.now() - p.since }, REASONS[p.reason].leaving)
    this.opts.resume(p)
  }

  /** Leaves the state without resuming (the gateway is shutting down). */
  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.state = undefined
  }
}
