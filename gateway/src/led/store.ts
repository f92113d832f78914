import type Database from 'better-sqlite3'

/**
 * What became of an LED command.
 * - `pending`: recorded (always first: a command is committed here before anything else happens to
 *   it), handed to MQTT, the broker has not acknowledged it yet (queued while offline); after a
 *   restart, `LedRelay.start` publishes it again.
 * - `published`: the broker holds it as the retained `led/set` of the device.
 * - `confirmed`: the device echoed its id on `led/state`.
 * - `superseded`: a newer command for the same device replaced it before it was confirmed.
 * - `expired`: its expiry passed before delivery (never published) or before the device confirmed it.
 * - `rejected`: it could not be read (bad TalkBack command string, no device); never published.
 * - `failed`: the broker refused the publish (e.g. ACL).
 */
export type CommandState = 'pending' | 'published' | 'confirmed' | 'superseded' | 'expired' | 'rejected' | 'failed'

export const COMMAND_STATES: readonly CommandState[] = ['pending', 'published', 'confirmed', 'superseded', 'expired', 'rejected', 'failed']

/** Where a command came from. */
export type CommandSource = 'api' | 'talkback'

/** One row of the commands table. Times are ms since the epoch. */
export interface CommandRecord {
  cmd: string
  source: CommandSource
  sourceRef: string | null
  raw: string | null
  device: string | null
  brightness: number | null
  createdAt: number
  expiresAt: number | null
  state: CommandState
  reason: string | null
  publishedAt: number | null
  confirmedAt: number | null
  confirmedBrightness: number | null
  clearedAt: number | null
}

export type NewCommand = Pick<CommandRecord, 'cmd' | 'source' | 'device' | 'brightness' | 'createdAt' | 'expiresAt' | 'state'> &
  Partial<Pick<CommandRecord, 'sourceRef' | 'raw' | 'reason'>>

/** The commands table keeps this many rows; older ones are deleted (oldest first). */
const KEEP = 10_000

const COLUMNS = `cmd, source, source_ref AS sourceRef, raw, device, brightness, created_at AS createdAt, expires_at AS expiresAt,
  state, reason, published_at AS publishedAt, confirmed_at AS confirmedAt, confirmed_brightness AS confirmedBrightness, cleared_at AS clearedAt`

/**
 * The commands table (buffer migration 2). Synchronous like the ring buffer; each method is one
 * statement or one transaction, so it never interleaves with an ingest commit.
 */
export class CommandStore {
  private readonly st: ReturnType<CommandStore['prepare']>

  constructor(readonly db: Database.Database) {
    this.st = this.prepare()
  }

  private prepare() {
    const db = this.db
    return {
      insert: db.prepare(
        `INSERT INTO commands (cmd, source, source_ref, raw, device, brightness, created_at, expires_at, state, reason)
         VALUES (@cmd, @source, @sourceRef, @raw, @device, @brightness, @createdAt, @expiresAt, @state, @reason)`,
      ),
      trim: db.prepare('DELETE FROM commands WHERE seq <= (SELECT max(seq) FROM commands) - ?'),
      get: db.prepare(`SELECT ${COLUMNS} FROM commands WHERE cmd = ?`),
      // The echo can in principle be processed before the PUBACK callback: keep a state past `published`.
      published: db.prepare("UPDATE commands SET published_at = coalesce(published_at, ?), state = CASE WHEN state = 'pending' THEN 'published' ELSE state END WHERE cmd = ?"),
      failed: db.prepare("UPDATE commands SET state = 'failed', reason = ? WHERE cmd = ? AND state = 'pending'"),
      supersede: db.prepare(
        "UPDATE commands SET state = 'superseded', reason = ? WHERE device = ? AND seq < (SELECT seq FROM commands WHERE cmd = ?) AND state IN ('pending', 'published')",
      ),
      confirm: db.prepare(
        `UPDATE commands SET confirmed_at = coalesce(confirmed_at, ?), confirmed_brightness = ?,
           state = CASE WHEN state IN ('pending', 'published', 'superseded', 'expired') THEN 'confirmed' ELSE state END
         WHERE cmd = ? AND device = ?`,
      ),
      expireUnconfirmed: db.prepare("UPDATE commands SET state = 'expired', reason = ? WHERE cmd = ? AND state IN ('pending', 'published')"),
      cleared: db.prepare('UPDATE commands SET cleared_at = ? WHERE cmd = ?'),
      // The retained led/set of each device is its newest command that reached MQTT and was not cleared.
      retained: db.prepare(
        `SELECT ${COLUMNS} FROM commands WHERE seq IN (
           SELECT max(seq) FROM commands WHERE device IS NOT NULL AND (published_at IS NOT NULL OR state = 'pending') GROUP BY device
         ) AND cleared_at IS NULL`,
      ),
      latestFor: db.prepare(`SELECT ${COLUMNS} FROM commands WHERE device = ? ORDER BY seq DESC LIMIT 1`),
      list: db.prepare(`SELECT ${COLUMNS} FROM commands WHERE (? IS NULL OR device = ?) ORDER BY seq DESC LIMIT ?`),
      counts: db.prepare('SELECT state, count(*) AS n FROM commands GROUP BY state'),
    }
  }

  /** Adds a command; keeps the table at its bound. */
  insert(c: NewCommand): CommandRecord {
    this.db.transaction(() => {
      this.st.insert.run({ sourceRef: null, raw: null, reason: null, ...c })
      this.st.trim.run(KEEP)
    })()
    return this.get(c.cmd)!
  }

  get(cmd: string): CommandRecord | undefined {
    return this.st.get.get(cmd) as CommandRecord | undefined
  }

  /** The broker acknowledged the publish; older unconfirmed commands of the device are superseded. */
  markPublished(cmd: string, device: string, at: number): void {
    this.db.transaction(() => {
      this.st.published.run(at, cmd)
      this.st.supersede.run(`replaced by ${cmd}`, device, cmd)
    })()
  }

  markFailed(cmd: string, reason: string): void {
    this.st.failed.run(reason, cmd)
  }

  /** Records the device's echo. Returns false when no command of that device has this id. */
  confirm(device: string, cmd: string, brightness: number, at: number): boolean {
    return this.st.confirm.run(at, brightness, cmd, device).changes > 0
  }

  /** At expiry: a command the device did not confirm becomes `expired`. */
  expireUnconfirmed(cmd: string, reason: string): boolean {
    return this.st.expireUnconfirmed.run(reason, cmd).changes > 0
  }

  markCleared(cmd: string, at: number): void {
    this.st.cleared.run(at, cmd)
  }

  /** Per device, the command the broker (probably) still retains on `led/set`. */
  retained(): CommandRecord[] {
    return this.st.retained.all() as CommandRecord[]
  }

  latestFor(device: string): CommandRecord | undefined {
    return this.st.latestFor.get(device) as CommandRecord | undefined
  }

  /** Newest first. */
  list(opts: { device?: string; limit?: number } = {}): CommandRecord[] {
    const d = opts.device ?? null
    return this.st.list.all(d, d, opts.limit ?? 50) as CommandRecord[]
  }

  counts(): Record<CommandState, number> {
    const out = Object.fromEntries(COMMAND_STATES.map((s) => [s, 0])) as Record<CommandState, number>
    for (const r of this.st.counts.all() as Array<{ state: CommandState; n: number }>) out[r.state] = r.n
    return out
  }
}
