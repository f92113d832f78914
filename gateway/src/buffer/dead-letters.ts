/**
 * Dead letters: messages ingest could not store as readings (source "ingest") and readings a sink
 * refused (source "sink:<name>"), each with the reason and the raw bytes. Listed for `ferry dlq list`,
 * requeued for `ferry dlq requeue` once the cause is fixed. Rows get here from `RingBuffer.ingest` and
 * `RingBuffer.settle`.
 */
import type Database from 'better-sqlite3'
import type { RingBuffer } from './ring-buffer.js'
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
  requeuedAt: number | null
}

/** Dead letters, newest first. */
export function listDeadLetters(db: Database.Database, opts: { limit?: number; source?: string; includeRequeued?: boolean } = {}): DeadLetter[] {
  const rows = db
    .prepare(
      `SELECT id, at, source, topic, device, reading_id AS readingId, reason, payload, requeued_at AS requeuedAt FROM dead_letters
       WHERE (? IS NULL OR source = ?) AND (? OR requeued_at IS NULL) ORDER BY id DESC LIMIT ?`,
    )
    .all(opts.source ?? null, opts.source ?? null, opts.includeRequeued ? 1 : 0, opts.limit ?? 100) as Array<Omit<DeadLetter, 'payload'> & { payload: Buffer }>
  return rows.map((r) => ({ ...r, payload: r.payload.toString('utf8') }))
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
 * requeued in one transaction; one that still fails validation, or does not exist, is left as it is.
 */
export function requeueDeadLetters(buffer: RingBuffer, ids: readonly number[], revalidate: Revalidate, now: () => number = Date.now): RequeueResult[] {
  const get = buffer.db.prepare('SELECT topic, payload FROM dead_letters WHERE id = ? AND requeued_at IS NULL')
  const mark = buffer.db.prepare('UPDATE dead_letters SET requeued_at = ? WHERE id = ?')
  return ids.map((id): RequeueResult => {
    const dl = get.get(id) as { topic: string | null; payload: Buffer } | undefined
    if (!dl) return { id, requeued: false, reason: 'not found or already requeued' }
    const item = revalidate(dl.topic ?? '', dl.payload, now())
    if (item.type === 'dead') return { id, requeued: false, reason: `still invalid: ${item.reason}` }
    buffer.db.transaction(() => {
      buffer.requeue(item)
      mark.run(now(), id)
    })()
    return { id, requeued: true }
  })
}
