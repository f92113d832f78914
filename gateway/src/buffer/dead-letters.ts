/**
 * Dead letters: messages ingest could not store as readings (source "ingest") and readings a sink
 * refused (source "sink:<name>"), each with the reason and the raw bytes. Listed for `ferry dlq list`,
 * requeued for `ferry dlq requeue` once the cause is fixed. Rows get here from `RingBuffer.ingest` and
 * `RingBuffer.settle`, through `DeadLetterStore` (dead-letter-store.ts), which keeps them bounded.
 */
import type Database from 'better-sqlite3'
import { pointTimeUs, type RingBuffer } from './ring-buffer.js'
import type { IngestItem } from './types.js'

export interface DeadLetter {
  id: number
  at: number
  source: string
  topic: string | null
  device: string | null
  readingId: number | null
  reason: string
  payload: string
  /**
   * The payload's length as received when only its first FERRY_INGEST_MAX_PAYLOAD_BYTES bytes were
   * kept (such a dead letter cannot be requeued); null when it was kept whole.
   */
  truncatedFrom: number | null
  requeuedAt: number | null
  /**
   * Point time (µs) of the reading a sink refused, which a requeue keeps. Null for a dead letter from
   * ingest (it never had one: a requeue gives it the device's `ts` when plausible, else the time the
   * gateway received it, `at`), and for one a sink refused before Ferry kept point times.
   */
  tsUs: number | null
}

/** Dead letters, newest first. */
export function listDeadLetters(db: Database.Database, opts: { limit?: number; source?: string; includeRequeued?: boolean } = {}): DeadLetter[] {
  // `*`: `ferry dlq list` opens the file read-only, so it may not be migrated yet (no ts_us column).
  const rows = db
    .prepare('SELECT * FROM dead_letters WHERE (? IS NULL OR source = ?) AND (? OR requeued_at IS NULL) ORDER BY id DESC LIMIT ?')
    .all(opts.source ?? null, opts.source ?? null, opts.includeRequeued ? 1 : 0, opts.limit ?? 100) as DeadLetterRow[]
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    source: r.source,
    topic: r.topic,
    device: r.device,
    readingId: r.reading_id,
    reason: r.reason,
    payload: r.payload.toString('utf8'),
    truncatedFrom: r.payload_bytes ?? null,
    requeuedAt: r.requeued_at,
    tsUs: r.ts_us ?? null,
  }))
}

interface DeadLetterRow {
  id: number
  at: number
  source: string
  topic: string | null
  device: string | null
  reading_id: number | null
  reason: string
  payload: Buffer
  requeued_at: number | null
  ts_us?: number | null
  payload_bytes?: number | null
}

/** What became of one dead letter given to `requeueDeadLetters`; `reason` says why it was not requeued. */
export type RequeueResult = { id: number; requeued: true } | { id: number; requeued: false; reason: string }

/**
 * Validates a message again as ingest would (the ingest handlers' `toIngestItem`). Passed in because
 * the buffer does not depend on ingest: ingest depends on the buffer.
 */
export type Revalidate = (topic: string, payload: Buffer, receivedAt: number) => IngestItem

/**
 * Feeds dead letters through validation again and stores each one that now passes through the ring's
 * own insert path (`RingBuffer.requeue`): a new row at the end, so every sink receives it, oldest
 * first behind what it already holds, and ids stay contiguous. Each dead letter is stored and marked
 * requeued in one transaction; one that still fails validation, kept only a prefix of its payload, or
 * does not exist, is left as it is. A requeued dead letter no longer counts against its device's share.
 *
 * A reading keeps its original point time, so it lands where it belongs in time (and InfluxDB
 * overwrites the same point if it ever got it): the one it had when a sink refused it, else the one
 * ingest gives (the device's `ts` when plausible, else the receive time), from the time the gateway
 * first received it (`at` of an ingest dead letter). Its receive time is the requeue's: receive
 * times must not decrease with the row id (`receiveTimeSearch`).
 */
export function requeueDeadLetters(buffer: RingBuffer, ids: readonly number[], revalidate: Revalidate, now: () => number = Date.now): RequeueResult[] {
  const get = buffer.db.prepare('SELECT topic, payload, at, ts_us AS tsUs, payload_bytes AS truncatedFrom FROM dead_letters WHERE id = ? AND requeued_at IS NULL')
  const mark = buffer.db.prepare('UPDATE dead_letters SET requeued_at = ? WHERE id = ?')
  return ids.map((id): RequeueResult => {
    const dl = get.get(id) as { topic: string | null; payload: Buffer; at: number; tsUs: number | null; truncatedFrom: number | null } | undefined
    if (!dl) return { id, requeued: false, reason: 'not found or already requeued' }
    if (dl.truncatedFrom !== null) return { id, requeued: false, reason: `only the first ${dl.payload.length} of its ${dl.truncatedFrom} bytes were kept` }
    const item = revalidate(dl.topic ?? '', dl.payload, now())
    if (item.type === 'dead') return { id, requeued: false, reason: `still invalid: ${item.reason}` }
    buffer.db.transaction(() => {
      buffer.requeue(item.type === 'reading' ? { ...item, pointTimeUs: dl.tsUs ?? pointTimeUs(item.tsMs, dl.at) } : item)
      mark.run(now(), id)
    })()
    return { id, requeued: true }
  })
}
