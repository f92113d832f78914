import Database from 'better-sqlite3'
import { existsSync, renameSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { Logger } from '../../../common/src/logger.js'
import { migrations } from './migrations.js'

export type SyncMode = 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA'

export interface OpenResult {
  db: Database.Database
  /** Set when the file could not be used and was moved aside. */
  recovered?: { movedTo: string; error: string; at: number }
}

/** SQLite result codes that mean "this file is not a usable database". */
const CORRUPT = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CORRUPT_INDEX', 'SQLITE_CORRUPT_SEQUENCE', 'SQLITE_CORRUPT_VTAB'])

/**
 * The only place that opens the buffer and sets pragmas.
 *
 * Durability: WAL, with `synchronous` configurable. The PUBACK is our promise to the broker, so the
 * row must survive whatever the deployment cares about:
 * - `FULL` (the gateway's default): an fsync of the WAL per commit; also survives power loss, which
 *   a Raspberry Pi pulled from the wall is exposed to. Ingest groups many messages per commit (see
 *   ingest/batcher.ts), so FULL costs one fsync per batch, not per message: in bench/README.md it
 *   ingested as fast as NORMAL, ~1.0x a bare mosquitto_sub, while one fsync per message reached 0.05x.
 * - `NORMAL`: a commit is durable against a killed or crashed *process* (the WAL is in the OS page
 *   cache); on power loss the last commits since the last checkpoint-fsync can be lost.
 *
 * A file that is not a database (or is corrupt) is moved aside as `<db>.corrupt-<ts>` with its
 * -wal/-shm files and a fresh one is started: no crash loop, nothing deleted, and the reason is
 * returned for status and logs.
 */
export function openBuffer(path: string, opts: { synchronous?: SyncMode; log?: Logger; readonly?: boolean } = {}): OpenResult {
  if (opts.readonly) {
    const db = new Database(path, { readonly: true, fileMustExist: true })
    db.pragma('busy_timeout = 5000')
    return { db }
  }
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  try {
    return { db: openAndMigrate(path, opts.synchronous ?? 'FULL') }
  } catch (err) {
    const code = (err as { code?: string }).code ?? ''
    if (!CORRUPT.has(code) || path === ':memory:') throw err
    const at = Date.now()
    const movedTo = `${path}.corrupt-${new Date(at).toISOString().replace(/[:.]/g, '-')}`
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix)
    }
    const error = `${code}: ${(err as Error).message}`
    opts.log?.error({ err, path, movedTo }, 'buffer database is corrupt; moved it aside and started a fresh one')
    const db = openAndMigrate(path, opts.synchronous ?? 'FULL')
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('last_corrupt_recovery', JSON.stringify({ movedTo, error, at }))
    return { db, recovered: { movedTo, error, at } }
  }
}

/**
 * Takes and releases the write lock (`BEGIN IMMEDIATE` + `ROLLBACK`): throws unless the file is open,
 * writable and not locked by someone else, without writing a page (no fsync per call). For `/healthz`.
 */
export function checkWritable(db: Database.Database): void {
  db.exec('BEGIN IMMEDIATE')
  db.exec('ROLLBACK')
}

function openAndMigrate(path: string, synchronous: SyncMode): Database.Database {
  const db = new Database(path)
  try {
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${synchronous}`)
    db.pragma('busy_timeout = 5000')
    // better-sqlite3 builds SQLite with a 16 MB page cache per connection. The buffer is written at
    // the end and read in order, so a small cache costs nothing measurable and keeps the gateway's
    // memory flat however large the backlog (bench/README.md, backlog memory).
    db.pragma('cache_size = -2000')
    // Reading the whole schema and one quick check catches a damaged file now, not mid-ingest.
    const check = db.pragma('quick_check', { simple: true })
    if (check !== 'ok') {
      throw Object.assign(new Error(`quick_check: ${String(check)}`), { code: 'SQLITE_CORRUPT' })
    }
    const version = db.pragma('user_version', { simple: true }) as number
    if (version > migrations.length) {
      throw new Error(`buffer schema version ${version} is newer than this Ferry (${migrations.length}); upgrade Ferry or point FERRY_DB elsewhere`)
    }
    for (let v = version; v < migrations.length; v++) {
      db.transaction(() => {
        db.exec(migrations[v]!)
        db.pragma(`user_version = ${v + 1}`)
      })()
    }
    return db
  } catch (err) {
    db.close()
    throw err
  }
}
