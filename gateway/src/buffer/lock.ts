/**
 * One gateway per buffer database. Two `ferry gateway` processes on the same FERRY_DB share one MQTT
 * identity (the certificate CN is the client id), so the broker hands the session to whichever
 * connected last and drops the other, which reconnects and drops the first, about once a second, and
 * both write the same buffer. The second one must refuse to start instead.
 *
 * How: a small side database `<db>.lock` on which the gateway holds SQLite's RESERVED lock (an open
 * `BEGIN IMMEDIATE`, nothing written) for as long as it runs. SQLite takes it with an fcntl() record
 * lock, which the kernel drops when the process ends in any way, SIGKILL, OOM kill or power cut
 * included: no stale lock to detect or clean up. RESERVED still lets others read, so a refused
 * gateway reads who holds it (pid, host, start time, written just before) and names it. `ferry status`
 * and `ferry dlq` never touch this file, and the buffer's own locking is unchanged.
 *
 * Why not the alternatives:
 * - `<db>.lock` created with O_EXCL holding a pid, stale when that pid is gone: pids are reused, and in
 *   a container the gateway is the same small pid at every start, in its own pid namespace, so a pid
 *   read from a shared volume says nothing (another container, another host) or the wrong thing.
 * - proper-lockfile: a lock directory kept fresh by rewriting its mtime on a timer; a crashed holder
 *   blocks restarts until the mtime is stale, and a live one whose event loop stalls (a long
 *   checkpoint, a suspended VM) is declared stale and loses the lock while it still runs.
 * - flock(2): not in Node's core; a native add-on only for this. SQLite is already here and already
 *   relies on these locks for the buffer itself.
 *
 * Limits, the same as SQLite's own: the folder must be on a local file system (POSIX locks over NFS
 * are unreliable, and WAL needs local storage anyway), and deleting `<db>.lock` while a gateway runs
 * lets a second one start. Nothing else in the process may open the lock file: closing any descriptor
 * of a file drops the process's fcntl locks on it (SQLite's own connections are careful about this).
 */
import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname } from 'node:path'
import { FerryError } from '../../../common/src/errors.js'
import { unusablePathError } from './open.js'

export interface BufferLock {
  /** `<db>.lock`. */
  path: string
  /** Gives the lock up (at a clean stop; the OS does it when the process dies). Safe to call twice. */
  release(): void
}

/** Who holds a lock, as the holder recorded it when it took the lock. */
interface LockHolder {
  pid: number
  host: string
  startedAt: number
}

/** Locks held by this process: referenced here so that a connection holding one is never collected. */
const held = new Set<Database.Database>()

const busy = (err: unknown) => /^SQLITE_(BUSY|LOCKED)/.test(String((err as { code?: unknown }).code ?? ''))

/**
 * Takes the lock on the buffer database at `dbPath` for this process, or throws FERRY_ERR_BUFFER_LOCKED
 * naming the holder. A folder that cannot hold the lock file is a ConfigError naming FERRY_DB
 * (unusablePathError). `:memory:` needs no lock.
 */
export function lockBuffer(dbPath: string): BufferLock {
  const path = `${dbPath}.lock`
  if (dbPath === ':memory:') return { path, release() {} }
  let db: Database.Database | undefined
  try {
    mkdirSync(dirname(dbPath), { recursive: true })
    db = new Database(path, { timeout: 0 })
    take(db, dbPath)
  } catch (err) {
    db?.close()
    throw unusablePathError(dbPath, err) // FERRY_ERR_BUFFER_LOCKED and the unexpected pass through as they are
  }
  held.add(db)
  const lock = db
  return {
    path,
    release() {
      if (!held.delete(lock)) return
      lock.close() // ends the transaction, and so the lock
    },
  }
}

function take(db: Database.Database, dbPath: string): void {
  begin(db, dbPath)
  // Ours: record who we are, commit (the only write), and hold the lock again at once.
  db.pragma('busy_timeout = 2000') // a refused gateway may be reading the holder row this instant
  db.exec('CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL, host TEXT NOT NULL, started_at INTEGER NOT NULL)')
  db.prepare('INSERT OR REPLACE INTO holder (id, pid, host, started_at) VALUES (1, ?, ?, ?)').run(process.pid, hostname(), Date.now())
  db.exec('COMMIT')
  // Another gateway can take the lock only in the instant between COMMIT and here; then it holds it
  // and this one is refused, naming it: one of the two runs, as it should.
  db.pragma('busy_timeout = 0')
  begin(db, dbPath)
}

function begin(db: Database.Database, dbPath: string): void {
  try {
    db.exec('BEGIN IMMEDIATE')
  } catch (err) {
    if (!busy(err)) throw err
    throw new FerryError('FERRY_ERR_BUFFER_LOCKED', lockedMessage(dbPath, readHolder(db)), { cause: err })
  }
}

/** The holder as it recorded itself; undefined when it has not yet (or the file is being written). */
function readHolder(db: Database.Database): LockHolder | undefined {
  try {
    db.pragma('busy_timeout = 1000')
    return db.prepare('SELECT pid, host, started_at AS startedAt FROM holder WHERE id = 1').get() as LockHolder | undefined
  } catch {
    return undefined
  }
}

function lockedMessage(dbPath: string, h: LockHolder | undefined): string {
  const who = h ? `another ferry gateway (pid ${h.pid} on host ${h.host}, started ${new Date(h.startedAt).toISOString()})` : 'another ferry gateway'
  return (
    `the buffer database ${dbPath} (FERRY_DB) is in use by ${who}; two gateways on one database would knock each other off the broker. ` +
    `Stop the other gateway first, or give this one its own FERRY_DB. The lock is ${dbPath}.lock, held while that gateway runs and let go by the system when it exits or is killed; do not delete it.`
  )
}
