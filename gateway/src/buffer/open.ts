import Database from 'better-sqlite3'
import { accessSync, constants, existsSync, renameSync, mkdirSync, statSync } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { ConfigError } from '../../../common/src/errors.js'
import type { Logger } from '../../../common/src/logger.js'
import { migrations } from './migrations.js'
import { checkAtOpen, checkWhole, clearDamage, countAtOpen, damageFile, damageReported } from './integrity.js'

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
 * returned for status and logs. Start-up checks cheaply and the whole file is checked in the
 * background (integrity.ts, background-check.ts, docs/integrity.md); damage the background check
 * reported (`<db>.damaged`) makes the next open check the whole file first. A file or folder that
 * cannot be opened or written (permissions, a read-only mount, a file where a folder should be) is a
 * ConfigError naming `opts.setting` (default FERRY_DB), the path and what to check (unusablePathError).
 */
export function openBuffer(path: string, opts: { synchronous?: SyncMode; log?: Logger; readonly?: boolean; setting?: string } = {}): OpenResult {
  if (opts.readonly) {
    try {
      const db = new Database(path, { readonly: true, fileMustExist: true })
      db.pragma('busy_timeout = 5000')
      return { db }
    } catch (err) {
      throw unusablePathError(path, err, { setting: opts.setting, readonly: true })
    }
  }
  const damage = path === ':memory:' ? undefined : damageReported(path)
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    if (damage) opts.log?.warn({ path, reported: damage }, 'the background check reported damage in the buffer database; checking the whole file before using it (this takes a while on a large buffer)')
    const db = openAndMigrate(path, opts.synchronous ?? 'FULL', damage !== undefined)
    if (damage) {
      // Gone now (the file was replaced or repaired by hand, or the read error did not repeat).
      clearDamage(path)
      opts.log?.warn({ path, reported: damage }, 'the whole buffer database checks out; using it')
    }
    return { db }
  } catch (err) {
    const code = (err as { code?: string }).code ?? ''
    if (!CORRUPT.has(code) || path === ':memory:') throw unusablePathError(path, err, { setting: opts.setting })
    const at = Date.now()
    const movedTo = `${path}.corrupt-${new Date(at).toISOString().replace(/[:.]/g, '-')}`
    // The background check's report (integrity.ts) goes along with the file it describes.
    for (const suffix of ['', '-wal', '-shm', damageFile('')]) {
      if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix)
    }
    const error = `${code}: ${(err as Error).message}`
    opts.log?.error({ err, path, movedTo }, 'buffer database is corrupt; moved it aside and started a fresh one')
    const db = openAndMigrate(path, opts.synchronous ?? 'FULL')
    db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('last_corrupt_recovery', JSON.stringify({ movedTo, error, at }))
    return { db, recovered: { movedTo, error, at } }
  }
}

/** Error codes (SQLite's and the OS's) that mean "cannot open or write this path", not "the file is bad". */
const UNUSABLE = /^(SQLITE_CANTOPEN|SQLITE_READONLY|SQLITE_PERM|SQLITE_AUTH|EACCES|EPERM|EROFS|ENOTDIR|EISDIR|EEXIST|ENOENT)/

/**
 * `err` from opening the buffer at `path` (or its lock file beside it) as a ConfigError that names the
 * setting, the path, why (looked up again: SQLite's "unable to open database file" does not say) and
 * what to do; any other error is returned as it is. The gateway needs to create and write the database
 * and the files beside it (-wal, -shm, .lock) in its folder; the container runs as uid 1000.
 */
export function unusablePathError(path: string, err: unknown, opts: { setting?: string | undefined; readonly?: boolean } = {}): unknown {
  const code = String((err as { code?: unknown } | null)?.code ?? '')
  if (path === ':memory:' || !(UNUSABLE.test(code) || code.startsWith('SQLITE_IOERR'))) return err
  const why = whyUnusable(path, opts.readonly ?? false)
  // An I/O error is the disk's, unless the path itself explains it (a folder opened as a file reads EISDIR).
  if (!UNUSABLE.test(code) && !why) return err
  const setting = opts.setting ?? 'FERRY_DB'
  const dir = dirname(resolve(path))
  const uid = process.getuid?.()
  const user = `this user${uid === undefined ? '' : ` (uid ${uid})`}`
  const message = (err as Error).message
  const detail = message.startsWith(code) ? message : `${code}: ${message}`
  const head = `${setting}=${path}: cannot ${opts.readonly ? 'open' : 'create or write'} the buffer database: ${why ? `${why} (${detail})` : detail}.`
  if (opts.readonly) return new ConfigError(`${head} T${user.slice(1)} must be able to read it and enter ${dir}: check the owners and permissions (ls -ld ${dir} ${path}).`, { cause: err })
  const name = basename(path)
  return new ConfigError(
    `${head} The gateway creates ${name} and the files beside it (${name}-wal, ${name}-shm, ${name}.lock) in ${dir}, so ${user} must be able to write there. ` +
      `Check the folder's owner and permissions (ls -ld ${dir}) and that its file system is not mounted read-only; in the container the gateway runs as the non-root uid 1000, ` +
      `so a host folder mounted there must belong to it (chown 1000:1000 on the host). Or point ${setting} at another folder.`,
    { cause: err },
  )
}

/** The first reason found why `path` cannot be used, in words; undefined when none is visible. */
function whyUnusable(path: string, readonly: boolean): string | undefined {
  try {
    const full = resolve(path)
    // The nearest part of the path that exists: a file there means no folder can be made under it.
    let existing = dirname(full)
    while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing)
    if (!statSync(existing).isDirectory()) return `${existing} is a file, not a folder`
    if (existsSync(full) && statSync(full).isDirectory()) return `${full} is a folder, not a file`
    if (readonly) return existsSync(full) ? denied(full, constants.R_OK) : undefined
    // The folder, then each file the gateway writes there that exists already (left by another user?).
    const files = ['', '-wal', '-shm', '.lock'].map((suffix) => full + suffix).filter((f) => existsSync(f))
    const checks: Array<[string, number]> = [[existing, constants.W_OK | constants.X_OK], ...files.map((f): [string, number] => [f, constants.R_OK | constants.W_OK])]
    for (const [p, mode] of checks) {
      const why = denied(p, mode)
      if (why) return why
    }
    return undefined
  } catch {
    return undefined // the question cannot be asked either: SQLite's own message will do
  }
}

/** Why this process may not use `p` with `mode` (access(2)), or undefined when it may. */
function denied(p: string, mode: number): string | undefined {
  try {
    accessSync(p, mode)
    return undefined
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'EROFS') return `${p} is on a read-only file system`
    const st = statSync(p)
    return `${p} is not ${mode & constants.W_OK ? 'writable' : 'readable'} by this user (${code}; owner uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`
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

function openAndMigrate(path: string, synchronous: SyncMode, checkAll = false): Database.Database {
  const db = new Database(path)
  try {
    // 1 KiB pages for a new file (an existing one keeps its size): every group commit rewrites the
    // partly filled pages it appends to (the table's last page, one dedupe-index leaf per device),
    // and in WAL mode each is written twice; smaller pages cut the bytes written per reading by about
    // a third (docs/buffer-storage.md). Only takes effect before the first table is created.
    db.pragma('page_size = 1024')
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${synchronous}`)
    db.pragma('busy_timeout = 5000')
    // better-sqlite3 builds SQLite with a 16 MB page cache per connection. The buffer is written at
    // the end and read in order, so a small cache costs nothing measurable and keeps the gateway's
    // memory flat however large the backlog (bench/README.md, backlog memory).
    db.pragma('cache_size = -2000')
    // A damaged file is caught now, not mid-ingest; cheaply, since the first acknowledgement waits
    // for it (integrity.ts). The whole file when the background check reported damage.
    if (checkAll) checkWhole(db)
    else checkAtOpen(db)
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
    // The ring's exact counts, kept for the RingBuffer constructor; reading every page of the
    // readings table is also the start check of that table.
    countAtOpen(db)
    return db
  } catch (err) {
    db.close()
    throw err
  }
}
