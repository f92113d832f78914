/**
 * Status queries: what the buffer holds, per sink how far behind it is, drops, dead letters (held
 * against their own bound, and those discarded per device) and the facts kept in `meta`. Read-only,
 * so they run on `ferry status`'s read-only connection as well as on the gateway's.
 */
import type Database from 'better-sqlite3'
import { LIVE_READING } from './ring-buffer.js'
import { readingStore } from './schema.js'
import { scanCounts } from './integrity.js'
import { drainEtaS, META_BUFFER_LIMITS, META_INGEST_PAUSED, META_INGEST_RATE, rateAt, runway, type RateSnapshot, type Runway } from './runway.js'
import type { BufferLimits } from './types.js'
import { DEAD_LETTER_BYTES_SQL, type DeadLetterLimits } from './dead-letter-store.js'

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

/** A sink no longer configured (sinks.ts): it holds no readings; kept to resume if it is added back. */
export interface RetiredSink {
  name: string
  /** When it was retired, ms since the epoch. */
  retiredAt: number
  cursor: number
  sentTotal: number
  rejectedTotal: number
  lastOkAt: number | null
}

/** What a running RingBuffer knows without scanning (see `RingBuffer.size` and `backlogEstimate`). */
export interface LiveCounts {
  size(): { rows: number; bytes: number }
  deadLetterSize(): { rows: number; bytes: number }
  backlogEstimate(sink: string): number
  /** The live ingest rate (`ferry status` reads the one the gateway last wrote to `meta`). */
  ingestPerS(): number
  readonly limits: BufferLimits
}

/** A sink's backlog with the estimated seconds until it is delivered (`drainEtaS` in runway.ts). */
export type SinkOutlook = SinkBacklog & { drainEtaS: number | null }

/** What `ferry status`, `/api/status` and the metrics show; safe on a read-only connection. */
export function queryStatus(db: Database.Database, now = Date.now(), counts?: LiveCounts) {
  // Exact counts scan the whole buffer: fine for `ferry status`, too slow to repeat for every
  // dashboard poll on a large backlog, so the running gateway passes the counts it keeps in memory.
  const store = readingStore(db)
  const agg = counts?.size() ?? scanCounts(db)
  const oldestAfter = db.prepare(`SELECT received_at AS at FROM ${store.table} WHERE id > ? ORDER BY id LIMIT 1`)
  const countAfter = db.prepare(`SELECT count(*) AS n FROM ${store.table} WHERE id > ?`)
  // `*`: `ferry status` opens the file read-only, so it may not be migrated yet (no retired_at column).
  const states = db.prepare('SELECT * FROM sink_state ORDER BY name').all() as Array<Record<string, unknown>>
  const retiredSinks = states.filter((s) => s.retired_at != null).map((s): RetiredSink => ({
    name: s.name as string,
    retiredAt: s.retired_at as number,
    cursor: s.cursor as number,
    sentTotal: s.sent_total as number,
    rejectedTotal: s.rejected_total as number,
    lastOkAt: (s.last_ok_at as number | null) ?? null,
  }))
  const sinks = states.filter((s) => s.retired_at == null).map((s): SinkBacklog => {
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
  // `ferry status` may read a file the gateway has not migrated yet (no `expired` table).
  const hasTable = (name: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined
  const expired = hasTable('expired') ? (db.prepare('SELECT device, count FROM expired ORDER BY device').all() as Array<{ device: string; count: number }>) : []
  const dead = db.prepare('SELECT source, count(*) AS n FROM dead_letters WHERE requeued_at IS NULL GROUP BY source ORDER BY source').all() as Array<{ source: string; n: number }>
  const deadHeld = counts?.deadLetterSize() ?? (db.prepare(`SELECT count(*) AS rows, coalesce(sum(${DEAD_LETTER_BYTES_SQL}), 0) AS bytes FROM dead_letters`).get() as { rows: number; bytes: number })
  const discards = hasTable('dead_letter_discards')
    ? (db.prepare('SELECT device, reason, count FROM dead_letter_discards ORDER BY device, reason').all() as Array<{ device: string; reason: string; count: number }>)
    : []
  const meta = Object.fromEntries((db.prepare('SELECT key, value FROM meta').all() as Array<{ key: string; value: string }>).map((m) => [m.key, JSON.parse(m.value) as unknown]))
  const limits = counts?.limits ?? (meta[META_BUFFER_LIMITS] as BufferLimits | undefined)
  const ahead = outlook(meta, sinks, agg, now, counts)
  return {
    buffered: { rows: agg.rows, bytes: agg.bytes },
    sinks: ahead.sinks,
    retiredSinks,
    dropped: perDevice(drops),
    expired: perDevice(expired),
    runway: ahead.runway,
    deadLetters: {
      total: dead.reduce((a, d) => a + d.n, 0),
      bySource: Object.fromEntries(dead.map((d) => [d.source, d.n])),
      held: deadHeld,
      limits: (limits?.deadLetters ?? null) as DeadLetterLimits | null,
      discarded: { total: discards.reduce((a, d) => a + d.count, 0), byDevice: tally(discards, 'device'), byReason: tally(discards, 'reason') },
    },
    meta,
  }
}

const perDevice = (rows: Array<{ device: string; count: number }>) => ({ total: rows.reduce((a, d) => a + d.count, 0), byDevice: Object.fromEntries(rows.map((d) => [d.device, d.count])) })

/** Discard counts summed per device or per reason. */
function tally(rows: ReadonlyArray<{ device: string; reason: string; count: number }>, key: 'device' | 'reason'): Record<string, number> {
  const sums: Record<string, number> = {}
  for (const r of rows) sums[r[key]] = (sums[r[key]] ?? 0) + r.count
  return sums
}

/**
 * The runway and each sink's drain ETA (runway.ts), from the live counts or, for `ferry status`, from
 * what the gateway keeps in `meta`: its limits, its last ingest rate (decayed to now), whether ingest is
 * paused, and each drainer's last send rate. Null runway: the gateway never wrote its limits. The
 * slowest sink's backlog is what is undelivered (with no active sink, every reading).
 */
function outlook(meta: Record<string, unknown>, sinks: SinkBacklog[], held: { rows: number; bytes: number }, now: number, counts?: LiveCounts): { runway: Runway | null; sinks: SinkOutlook[] } {
  const ingestPerS = counts ? counts.ingestPerS() : rateAt(meta[META_INGEST_RATE] as RateSnapshot | undefined, now)
  const limits = counts?.limits ?? (meta[META_BUFFER_LIMITS] as BufferLimits | undefined)
  const undelivered = sinks.length ? Math.max(...sinks.map((s) => s.rows)) : held.rows
  let ahead = limits ? runway(limits, held, undelivered, ingestPerS) : null
  if (ahead && (meta[META_INGEST_PAUSED] as { reason?: string } | null | undefined)?.reason === 'backpressure') ahead = { ...ahead, seconds: 0 }
  const sendPerS = (s: SinkBacklog) => (s.lastErrorCode ? null : ((meta[`progress:${s.name}`] as { ratePerS?: number } | undefined)?.ratePerS ?? null))
  return { runway: ahead, sinks: sinks.map((s) => ({ ...s, drainEtaS: drainEtaS(s.rows, sendPerS(s), ingestPerS) })) }
}

/**
 * Readings held per device (delivered ones stay for the dedupe window) and the backlog of the slowest
 * sink, from the id range like `RingBuffer.backlogEstimate` (with no active sink, every row).
 * What `ferry demo` waits on before it compares published, stored and delivered.
 */
export function readingCounts(db: Database.Database): { perDevice: Record<string, number>; backlog: number } {
  const rows = db.prepare(`SELECT device, count(*) AS n FROM readings WHERE ${LIVE_READING} GROUP BY device`).all() as Array<{ device: string; n: number }>
  const hi = (db.prepare(`SELECT coalesce(max(id), 0) AS hi FROM ${readingStore(db).table}`).get() as { hi: number }).hi
  const lo = (db.prepare('SELECT coalesce(min(cursor), 0) AS lo FROM sink_state WHERE retired_at IS NULL').get() as { lo: number }).lo
  return { perDevice: Object.fromEntries(rows.map((r) => [r.device, r.n])), backlog: Math.max(0, hi - lo) }
}
