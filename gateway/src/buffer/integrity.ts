/**
 * Corruption checks at start (docs/integrity.md). A full `PRAGMA quick_check` reads every page of
 * the file: 1.0-1.6 s for a 1,000,000-reading buffer in the page cache, 5-10 s from the disk
 * (bench/README.md#restart), too long to hold the first acknowledgement for. So start-up checks what
 * it reads anyway, and the whole file is checked in the background (background-check.ts):
 *
 * - the header and the schema (a file that is not a database fails here);
 * - `quick_check` of each table whose size follows the number of devices and sinks, not time;
 * - the first and last rows of the tables that grow with time (the ends ingest, drain and prune touch);
 * - every page of the readings table itself, read by the counting scan that seeds the ring's row and
 *   byte counts (`countReadings`), which start-up needs exactly anyway.
 *
 * What this misses (a damaged page inside an index, or inside events, dead_letters or commands, the
 * free list) is the background check's; when that finds damage it leaves `<db>.damaged` beside the
 * database, and the next start checks the whole file before using it (`damageReported`).
 */
import type Database from 'better-sqlite3'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { writeFileDurably } from '../../../common/src/durable-file.js'
import { readingStore } from './schema.js'

/** Tables that grow with time (readings, history); start-up reads only their ends. */
const GROWING = new Set(['reading_rows', 'readings', 'events', 'dead_letters', 'commands'])

/** An error that openBuffer treats as "this file is corrupt" (moved aside, a fresh one started). */
export function corruptError(message: string): Error {
  return Object.assign(new Error(message), { code: 'SQLITE_CORRUPT' })
}

/** Throws a SQLITE_CORRUPT error unless a pragma check answered "ok". */
function expectOk(what: string, answer: unknown): void {
  if (answer !== 'ok') throw corruptError(`${what}: ${String(answer)}`)
}

const quoted = (name: string) => `"${name.replace(/"/g, '""')}"`

/**
 * The cheap check at open: O(number of devices), not O(readings). Throws SQLite's own error
 * (SQLITE_CORRUPT, SQLITE_NOTADB) or a SQLITE_CORRUPT one naming what failed.
 */
export function checkAtOpen(db: Database.Database): void {
  // Reading the schema decodes the header and page 1 onwards: not a database, or a damaged schema, fails here.
  const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all() as string[]
  for (const t of tables) {
    if (GROWING.has(t)) {
      // Separate statements: `min(rowid), max(rowid)` together would scan the table.
      db.prepare(`SELECT * FROM ${quoted(t)} ORDER BY rowid LIMIT 1`).get()
      db.prepare(`SELECT * FROM ${quoted(t)} ORDER BY rowid DESC LIMIT 1`).get()
    } else {
      expectOk(`quick_check(${t})`, db.pragma(`quick_check(${quoted(t)})`, { simple: true }))
    }
  }
}

/** The whole file, as the background check and a start after a reported damage do it. */
export function checkWhole(db: Database.Database): void {
  let rows: Array<{ integrity_check: string }>
  try {
    rows = db.pragma('integrity_check(20)', { simple: false }) as Array<{ integrity_check: string }>
  } catch (err) {
    // Some damage stops the check itself (a page it cannot decode); that is its answer too.
    const code = String((err as { code?: unknown }).code ?? '')
    if (/^SQLITE_(CORRUPT|NOTADB)/.test(code)) throw corruptError(`integrity_check: ${code}: ${(err as Error).message}`)
    throw err
  }
  const answer = rows.map((r) => r.integrity_check)
  if (answer.length !== 1 || answer[0] !== 'ok') throw corruptError(`integrity_check: ${answer.join('; ')}`)
}

export interface ReadingCounts {
  rows: number
  bytes: number
}

/**
 * The exact counting scan over `readings`; it reads every page of the table, so it also checks them.
 * Also `ferry status`'s count on a file no running gateway counts for it (status.ts).
 */
export function scanCounts(db: Database.Database): ReadingCounts {
  const { table, size } = readingStore(db)
  const agg = db.prepare(`SELECT count(*) AS n, coalesce(sum(${size}), 0) AS b FROM ${table}`).get() as { n: number; b: number }
  return { rows: agg.n, bytes: agg.b }
}

/**
 * Counts made at open, handed to the RingBuffer constructor so the table is scanned once per start.
 * Valid only while nothing was written since, on this connection (total_changes) or another one
 * (data_version): otherwise the constructor counts again.
 */
const atOpen = new WeakMap<Database.Database, ReadingCounts & { stamp: string }>()

function stamp(db: Database.Database): string {
  return `${String(db.prepare('SELECT total_changes()').pluck().get())}/${String(db.pragma('data_version', { simple: true }))}`
}

/** Counts the readings as part of the check at open (throws SQLITE_CORRUPT on a damaged page) and keeps the counts. */
export function countAtOpen(db: Database.Database): void {
  const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?").get(readingStore(db).table)
  if (!exists) return
  atOpen.set(db, { ...scanCounts(db), stamp: stamp(db) })
}

/**
 * Rows and payload bytes in `readings`, exactly: the ones counted at open when still valid, else a
 * fresh scan. For the RingBuffer constructor.
 */
export function countReadings(db: Database.Database): ReadingCounts {
  const kept = atOpen.get(db)
  atOpen.delete(db)
  if (kept && kept.stamp === stamp(db)) return { rows: kept.rows, bytes: kept.bytes }
  return scanCounts(db)
}

/** What the background check found, as left beside the database in `<db>.damaged`. */
export interface DamageReport {
  at: number
  error: string
}

export const damageFile = (path: string): string => `${path}.damaged`

/** Leaves the report for the next start (and `ferry status`); durable, so a power cut keeps it. */
export function reportDamage(path: string, report: DamageReport): void {
  writeFileDurably(damageFile(path), JSON.stringify(report) + '\n', 0o644)
}

/** The damage the background check reported for the database at `path`, if any. */
export function damageReported(path: string): DamageReport | undefined {
  const file = damageFile(path)
  if (!existsSync(file)) return undefined
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as DamageReport
    return { at: Number(r.at), error: String(r.error) }
  } catch {
    // Half a report still means a check found damage.
    return { at: 0, error: 'unreadable damage report' }
  }
}

export function clearDamage(path: string): void {
  rmSync(damageFile(path), { force: true })
}
