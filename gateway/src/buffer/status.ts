/**
 * Status queries: what the buffer holds, per sink how far behind it is, drops, dead letters and the
 * facts kept in `meta`. Read-only, so they run on `ferry status`'s read-only connection as well as on
 * the gateway's.
 */
import type Database from 'better-sqlite3'
import { LIVE_READING } from './ring-buffer.js'

export interface SinkBacklog {
  name: string
  cursor: number
  rows: number
  oldestAgeMs: number | null
  sentTotal: number
  rejectedTotal: number
  lastOkAt: number | null
  lastErrorCode: string | null
  lastError: string | null
  lastErrorAt: number | null
}

/** What a running RingBuffer knows without scanning (see `RingBuffer.size` and `backlogEstimate`). */
export interface LiveCounts {
  size(): { rows: number; bytes: number }
  backlogEstimate(sink: string): number
}

/** What `ferry status`, `/api/status` and the metrics show; safe on a read-only connection. */
export function queryStatus(db: Database.Database, now = Date.now(), counts?: LiveCounts) {
  // Exact counts scan the whole buffer: fine for `ferry status`, too slow to repeat for every
  // dashboard poll on a large backlog, so the running gateway passes the counts it keeps in memory.
  const agg = counts?.size() ?? (db.prepare('SELECT count(*) AS rows, coalesce(sum(length(payload)), 0) AS bytes FROM readings').get() as { rows: number; bytes: number })
  const oldestAfter = db.prepare('SELECT received_at AS at FROM readings WHERE id > ? ORDER BY id LIMIT 1')
  const countAfter = db.prepare('SELECT count(*) AS n FROM readings WHERE id > ?')
  const sinks = (db.prepare('SELECT * FROM sink_state ORDER BY name').all() as Array<Record<string, unknown>>).map((s): SinkBacklog => {
    const cursor = s.cursor as number
    const oldest = (oldestAfter.get(cursor) as { at: number } | undefined)?.at ?? null
    return {
      name: s.name as string,
      cursor,
      rows: counts ? counts.backlogEstimate(s.name as string) : (countAfter.get(cursor) as { n: number }).n,
      oldestAgeMs: oldest === null ? null : now - oldest,
      sentTotal: s.sent_total as number,
      rejectedTotal: s.rejected_total as number,
      lastOkAt: (s.last_ok_at as number | null) ?? null,
      lastErrorCode: (s.last_error_code as string | null) ?? null,
      lastError: (s.last_error as string | null) ?? null,
      lastErrorAt: (s.last_error_at as number | null) ?? null,
    }
  })
  const drops = db.prepare('SELECT device, count FROM drops ORDER BY device').all() as Array<{ device: string; count: number }>
  const dead = db.prepare('SELECT source, count(*) AS n FROM dead_letters WHERE requeued_at IS NULL GROUP BY source ORDER BY source').all() as Array<{ source: string; n: number }>
  const meta = Object.fromEntries((db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>).map((m) => [m.key, JSON.parse(m.value) as unknown]))
  return {
    buffered: { rows: agg.rows, bytes: agg.bytes },
    sinks,
    dropped: { total: drops.reduce((a, d) => a + d.count, 0), byDevice: Object.fromEntries(drops.map((d) => [d.device, d.count])) },
    deadLetters: { total: dead.reduce((a, d) => a + d.n, 0), bySource: Object.fromEntries(dead.map((d) => [d.source, d.n])) },
    meta,
  }
}

/**
 * Readings held per device (delivered ones stay for the dedupe window) and the backlog of the slowest
 * sink, from the id range like `RingBuffer.backlogEstimate` (with no sink registered, every row).
 * What `ferry demo` waits on before it compares published, stored and delivered.
 */
export function readingCounts(db: Database.Database): { perDevice: Record<string, number>; backlog: number } {
  const rows = db.prepare(`SELECT device, count(*) AS n FROM readings WHERE ${LIVE_READING} GROUP BY device`).all() as Array<{ device: string; n: number }>
  const hi = (db.prepare('SELECT coalesce(max(id), 0) AS hi FROM readings').get() as { hi: number }).hi
  const lo = (db.prepare('SELECT coalesce(min(cursor), 0) AS lo FROM sink_state').get() as { lo: number }).lo
  return { perDevice: Object.fromEntries(rows.map((r) => [r.device, r.n])), backlog: Math.max(0, hi - lo) }
}
