/**
 * Writes dead letters and keeps the `dead_letters` table within a bound of its own, apart from the
 * ring's (FERRY_DEADLETTER_MAX_ROWS, FERRY_DEADLETTER_MAX_BYTES), with a share per device
 * (FERRY_DEADLETTER_DEVICE_SHARE) so that one device cannot fill it for the others:
 *
 * - A dead letter whose device already holds its share (rows or bytes of its dead letters not
 *   requeued) is not stored: it is counted for the device as `over-share` in `dead_letter_discards`.
 *   A flood of bad messages from one device therefore costs a counter update per group commit, not a
 *   row per message.
 * - Past the total cap the oldest dead letters are deleted (requeued ones too); each one not
 *   requeued is counted for its device as `evicted`.
 * - Every dead letter is bounded: the payload keeps at most its first `maxPayloadBytes` bytes (the
 *   most a valid message may have; the length received is kept in `payload_bytes`, and such a dead
 *   letter cannot be requeued), the reason and the topic at most `TEXT_MAX_BYTES` each.
 *
 * Bytes are those of the stored payload, reason and topic (UTF-8), not SQLite's overhead. Without
 * limits (`ferry dlq`, tests) nothing is cut, refused or deleted. `RingBuffer` calls `add` and
 * `finish` inside its transactions, then `committed` or `rolledBack`; the counts kept in memory are
 * read from the database at start and again after a rolled-back transaction.
 */
import type Database from 'better-sqlite3'
import type { Logger } from '../../../common/src/logger.js'
import type { DeadLetter } from './dead-letters.js'

/** Why a dead letter was not kept: over its device's share (never stored) or deleted for the total cap. */
export type DiscardReason = 'over-share' | 'evicted'

export interface DiscardCount {
  device: string
  reason: DiscardReason
  count: number
}

/** The device key of a dead letter that names no device (its topic had none); never a device id. */
export const NO_DEVICE = '-'

/** Longest reason or topic kept with a dead letter, in UTF-8 bytes. */
export const TEXT_MAX_BYTES = 1024

/** How often, at most, the per-device counts are read again when a device looks full (`ferry dlq requeue` in another process frees share). */
const REFRESH_MS = 1000

export interface DeadLetterLimits {
  /** Most dead letters kept, requeued ones included. */
  maxRows: number
  /** Most bytes kept (payload, reason and topic). */
  maxBytes: number
  /** Most dead letters not requeued one device may hold. */
  deviceMaxRows: number
  /** Most bytes of dead letters not requeued one device may hold. */
  deviceMaxBytes: number
  /** Longer payloads keep only their first this many bytes (FERRY_INGEST_MAX_PAYLOAD_BYTES). */
  maxPayloadBytes: number
}

/** The bytes a stored dead letter counts, in SQL (the same sum as `add` makes). */
export const DEAD_LETTER_BYTES_SQL = 'length(payload) + length(CAST(reason AS BLOB)) + coalesce(length(CAST(topic AS BLOB)), 0)'

/** A dead letter to store: a `DeadLetter` as listed (dead-letters.ts) before it has an id, with its raw payload. */
export type DeadLetterIn = Pick<DeadLetter, 'at' | 'source' | 'topic' | 'device' | 'readingId' | 'reason' | 'tsUs'> & { payload: Buffer }

type Usage = { rows: number; bytes: number }

export class DeadLetterStore {
  private total: Usage = { rows: 0, bytes: 0 }
  /** Dead letters not requeued, per device. */
  private perDevice = new Map<string, Usage>()
  /** This transaction's discards, by device and reason. */
  private pending = new Map<string, DiscardCount>()
  /** Discards committed but not yet reported. */
  private toReport: DiscardCount[] = []
  private refreshedAt = -Infinity
  private readonly st

  /** Told, after each commit that discarded dead letters, how many per device and reason (metrics, log). */
  onDiscard: ((d: readonly DiscardCount[]) => void) | undefined

  constructor(
    private readonly db: Database.Database,
    readonly limits: DeadLetterLimits | undefined,
    private readonly now: () => number,
  ) {
    this.st = {
      insert: db.prepare('INSERT INTO dead_letters (at, source, topic, device, reading_id, reason, payload, ts_us, payload_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      total: db.prepare(`SELECT count(*) AS rows, coalesce(sum(${DEAD_LETTER_BYTES_SQL}), 0) AS bytes FROM dead_letters`),
      perDevice: db.prepare(`SELECT coalesce(device, '${NO_DEVICE}') AS device, count(*) AS rows, sum(${DEAD_LETTER_BYTES_SQL}) AS bytes FROM dead_letters WHERE requeued_at IS NULL GROUP BY 1`),
      oldest: db.prepare(`SELECT id, coalesce(device, '${NO_DEVICE}') AS device, requeued_at IS NOT NULL AS requeued, ${DEAD_LETTER_BYTES_SQL} AS b FROM dead_letters ORDER BY id LIMIT ?`),
      deleteUpTo: db.prepare('DELETE FROM dead_letters WHERE id <= ?'),
      addDiscards: db.prepare('INSERT INTO dead_letter_discards (device, reason, count) VALUES (?, ?, ?) ON CONFLICT (device, reason) DO UPDATE SET count = count + excluded.count'),
    }
    this.reload()
  }

  /** Reads the counts from the database (at start, after a rollback, and to see another process's requeues). */
  private reload(): void {
    this.total = this.st.total.get() as Usage
    this.perDevice = new Map((this.st.perDevice.all() as Array<Usage & { device: string }>).map((r) => [r.device, { rows: r.rows, bytes: r.bytes }]))
    this.refreshedAt = this.now()
  }

  /** Dead letters held (requeued ones included) and their bytes: what counts against the total cap. */
  size(): Usage {
    return { ...this.total }
  }

  /** Stores a dead letter, cut to size, unless its device holds its share. Inside a transaction; true when stored. */
  add(dl: DeadLetterIn): boolean {
    const lim = this.limits
    const payload = lim && dl.payload.length > lim.maxPayloadBytes ? dl.payload.subarray(0, lim.maxPayloadBytes) : dl.payload
    const reason = lim ? clip(dl.reason) : dl.reason
    const topic = lim && dl.topic !== null ? clip(dl.topic) : dl.topic
    const bytes = payload.length + Buffer.byteLength(reason) + (topic === null ? 0 : Buffer.byteLength(topic))
    const device = dl.device ?? NO_DEVICE
    if (lim && this.overShare(device, bytes, lim)) {
      this.count(device, 'over-share', 1)
      return false
    }
    this.st.insert.run(dl.at, dl.source, topic, dl.device, dl.readingId, reason, payload, dl.tsUs, payload === dl.payload ? null : dl.payload.length)
    const use = this.perDevice.get(device) ?? { rows: 0, bytes: 0 }
    this.perDevice.set(device, { rows: use.rows + 1, bytes: use.bytes + bytes })
    this.total = { rows: this.total.rows + 1, bytes: this.total.bytes + bytes }
    return true
  }

  /** Whether one more dead letter of `bytes` would take `device` past its share; looks again at most every REFRESH_MS. */
  private overShare(device: string, bytes: number, lim: DeadLetterLimits): boolean {
    const over = () => {
      const use = this.perDevice.get(device) ?? { rows: 0, bytes: 0 }
      return use.rows + 1 > lim.deviceMaxRows || use.bytes + bytes > lim.deviceMaxBytes
    }
    if (!over()) return false
    if (this.now() - this.refreshedAt < REFRESH_MS) return true
    this.reload()
    return over()
  }

  private count(device: string, reason: DiscardReason, n: number): void {
    const key = `${device}\u0000${reason}`
    const c = this.pending.get(key)
    if (c) c.count += n
    else this.pending.set(key, { device, reason, count: n })
  }

  /**
   * End of a transaction that may have added dead letters: deletes the oldest until the total cap
   * holds, and writes this transaction's discard counts. Inside the transaction.
   */
  finish(): void {
    if (this.limits) this.evict(this.limits)
    if (this.pending.size === 0) return
    for (const c of this.pending.values()) this.st.addDiscards.run(c.device, c.reason, c.count)
    this.toReport.push(...this.pending.values())
    this.pending.clear()
  }

  /** Deletes the oldest dead letters, a prefix of the ids, until both total limits hold. */
  private evict(lim: DeadLetterLimits): void {
    while (this.total.rows > lim.maxRows || this.total.bytes > lim.maxBytes) {
      const excess = this.total.rows - lim.maxRows
      const chunk = this.st.oldest.all(Math.max(64, Math.min(excess, 10_000))) as Array<{ id: number; device: string; requeued: 0 | 1; b: number }>
      if (chunk.length === 0) break
      let cut = -1
      let { rows, bytes } = this.total
      for (const r of chunk) {
        if (rows <= lim.maxRows && bytes <= lim.maxBytes) break
        cut = r.id
        rows--
        bytes -= r.b
        if (r.requeued) continue
        const use = this.perDevice.get(r.device)
        if (use) this.perDevice.set(r.device, { rows: use.rows - 1, bytes: use.bytes - r.b })
        this.count(r.device, 'evicted', 1)
      }
      this.st.deleteUpTo.run(cut)
      this.total = { rows, bytes }
    }
  }

  /** The transaction committed: reports its discards. */
  committed(): void {
    if (this.toReport.length === 0 || this.db.inTransaction) return
    const report = this.toReport
    this.toReport = []
    this.onDiscard?.(report)
  }

  /** The transaction rolled back: nothing of it happened. */
  rolledBack(): void {
    this.pending.clear()
    this.toReport = []
    this.reload()
  }
}

/** `text` cut to at most TEXT_MAX_BYTES of UTF-8, on a character boundary. */
function clip(text: string): string {
  if (text.length * 3 <= TEXT_MAX_BYTES || Buffer.byteLength(text) <= TEXT_MAX_BYTES) return text
  let s = text.slice(0, TEXT_MAX_BYTES)
  while (Buffer.byteLength(s) > TEXT_MAX_BYTES) s = s.slice(0, -1)
  return /[\uD800-\uDBFF]$/.test(s) ? s.slice(0, -1) : s // not half a surrogate pair
}

/**
 * The log line for discarded dead letters: one WARN at most every `everyMs`, with what was discarded
 * per device and reason since the last one, so a flood of bad messages does not flood the log too.
 */
export function discardWarner(log: Logger, everyMs = 60_000, now: () => number = Date.now): (d: readonly DiscardCount[]) => void {
  let since: Record<string, Partial<Record<DiscardReason, number>>> = {}
  let loggedAt = -Infinity
  return (discards) => {
    for (const d of discards) {
      const byReason = (since[d.device] ??= {})
      byReason[d.reason] = (byReason[d.reason] ?? 0) + d.count
    }
    if (now() - loggedAt < everyMs) return
    loggedAt = now()
    log.warn({ discarded: since }, 'dead letters not kept: over-share = the device holds its share (FERRY_DEADLETTER_DEVICE_SHARE), evicted = oldest deleted for FERRY_DEADLETTER_MAX_ROWS / _BYTES; counted per device (ferry status)')
    since = {}
  }
}
