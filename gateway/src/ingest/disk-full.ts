import type { Logger } from '../../../common/src/logger.js'

/** Error codes that mean "no space to commit" (SQLite's and the file system's names for it). */
const DISK_FULL_CODES = new Set(['SQLITE_FULL', 'ENOSPC', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC', 'SQLITE_IOERR_SHMSIZE', 'SQLITE_IOERR'])

export const isDiskFull = (code: string): boolean => DISK_FULL_CODES.has(code)

export interface DiskFullGuardOptions {
  /** A test write as large as a big batch; throws while the disk is still full. */
  probeWrite: () => void
  /** Stop taking messages (disconnect without acknowledging: the broker keeps them). */
  pause: () => void
  resume: () => void
  log: Logger
  probeEveryMs?: number
  now?: () => number
}

/**
 * What ingest does when the disk is full: stop acknowledging (the broker holds the messages, nothing
 * is lost), probe every couple of seconds with a write the size of a large batch, and resume by itself
 * once that write commits. The operator's side is FERRY_ERR_BUFFER_FULL_DISK in docs/errors.md.
 */
export class DiskFullGuard {
  private timer: NodeJS.Timeout | undefined
  private since: number | undefined
  private readonly now: () => number

  constructor(private readonly opts: DiskFullGuardOptions) {
    this.now = opts.now ?? Date.now
  }

  get active(): boolean {
    return this.since !== undefined
  }

  /** Enters the disk-full state; returns false if it was already in it. */
  enter(): boolean {
    if (this.since !== undefined) return false
    this.since = this.now()
    this.opts.pause()
    this.timer = setInterval(() => this.probe(), this.opts.probeEveryMs ?? 2000)
    return true
  }

  private probe(): void {
    try {
      this.opts.probeWrite()
    } catch {
      return
    }
    const downForMs = this.now() - this.since!
    this.stop()
    this.opts.log.warn({ downForMs }, 'disk has space again; resuming ingest (nothing was lost: the broker held the messages)')
    this.opts.resume()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.since = undefined
  }
}
