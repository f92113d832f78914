/**
 * Which sinks hold readings in the buffer. Every sink the gateway has run has a row in `sink_state`
 * with its cursor (every reading with id <= cursor has been accepted or dead-lettered by it). A sink
 * taken out of FERRY_SINKS would otherwise hold every reading after its cursor for good: prune would
 * keep them, and the ring bound would count them as drops although every configured sink has them.
 * So at start the gateway tells the buffer which sinks are configured (`RingBuffer.configureSinks`):
 *
 * - a sink no longer configured is retired (`retired_at`): prune, the ring bound and the backlog
 *   figures ignore its cursor; status lists it with the time it was retired;
 * - a retired sink configured again resumes from its cursor when every reading after it is still
 *   buffered, else from the oldest buffered reading (what it missed has left the buffer);
 * - a sink never seen before starts at the oldest buffered reading.
 *
 * A sink keeps its totals and last error throughout.
 */
import type Database from 'better-sqlite3'
import type { Logger } from '../../../common/src/logger.js'

/** What `configureSinks` (or `ensureSink`) changed for one sink. Counts come from the id range (ids are contiguous). */
export type SinkChange =
  | { sink: string; change: 'added'; backlog: number }
  | { sink: string; change: 'retired'; cursor: number; undelivered: number }
  | { sink: string; change: 'resumed'; retiredAt: number; from: 'cursor' | 'oldest'; cursor: number; previousCursor: number; missed: number; backlog: number }

/** The `sink_state` rows: registering, retiring and resuming sinks. Prepared once per RingBuffer. */
export class SinkRegistry {
  private readonly st: ReturnType<SinkRegistry['prepare']>

  constructor(private readonly db: Database.Database) {
    this.st = this.prepare()
  }

  private prepare() {
    const db = this.db
    return {
      all: db.prepare('SELECT name, cursor, retired_at AS retiredAt FROM sink_state ORDER BY name'),
      one: db.prepare('SELECT cursor, retired_at AS retiredAt FROM sink_state WHERE name = ?'),
      add: db.prepare('INSERT INTO sink_state (name, cursor) VALUES (?, 0)'),
      retire: db.prepare('UPDATE sink_state SET retired_at = ? WHERE name = ?'),
      resume: db.prepare('UPDATE sink_state SET retired_at = NULL, cursor = ? WHERE name = ?'),
      oldestId: db.prepare('SELECT min(id) AS id FROM reading_rows'),
      // AUTOINCREMENT keeps the largest id ever given here, also when every row has been deleted.
      lastId: db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'reading_rows'"),
    }
  }

  /** The oldest id still held (the next id when none is) and the newest id ever given (0: none). */
  private held(): { first: number; last: number } {
    const last = (this.st.lastId.get() as { seq: number } | undefined)?.seq ?? 0
    const first = (this.st.oldestId.get() as { id: number | null }).id ?? last + 1
    return { first, last }
  }

  /** Adds a sink never seen before, or resumes a retired one; undefined when it is already active. */
  register(name: string): SinkChange | undefined {
    const row = this.st.one.get(name) as { cursor: number; retiredAt: number | null } | undefined
    if (!row) {
      this.st.add.run(name)
      const { first, last } = this.held()
      return { sink: name, change: 'added', backlog: last - (first - 1) }
    }
    if (row.retiredAt === null) return undefined
    const { first, last } = this.held()
    // Deletes are oldest first, so every reading after the cursor is still held iff the cursor has
    // not fallen below the oldest held id.
    const from = row.cursor >= first - 1 ? 'cursor' : 'oldest'
    const cursor = Math.max(row.cursor, first - 1)
    this.st.resume.run(cursor, name)
    return { sink: name, change: 'resumed', retiredAt: row.retiredAt, from, cursor, previousCursor: row.cursor, missed: cursor - row.cursor, backlog: last - cursor }
  }

  /** Retires every active sink not in `names`. */
  retireAllBut(names: readonly string[], now: number): SinkChange[] {
    const { first, last } = this.held()
    const out: SinkChange[] = []
    for (const r of this.st.all.all() as Array<{ name: string; cursor: number; retiredAt: number | null }>) {
      if (names.includes(r.name) || r.retiredAt !== null) continue
      this.st.retire.run(now, r.name)
      out.push({ sink: r.name, change: 'retired', cursor: r.cursor, undelivered: last - Math.max(r.cursor, first - 1) })
    }
    return out
  }
}

/** One INFO line per change, with the numbers. */
export function logSinkChanges(log: Logger, changes: readonly SinkChange[]): void {
  for (const c of changes) {
    if (c.change === 'added') {
      log.info(c, `new sink ${c.sink}: it starts from the oldest buffered reading`)
    } else if (c.change === 'retired') {
      log.info(c, `sink ${c.sink} is no longer in FERRY_SINKS: retired, so it no longer holds readings in the buffer (${c.undelivered} it had not received stay only as long as the buffer keeps them); add it back to resume`)
    } else if (c.from === 'cursor') {
      log.info({ ...c, retiredAt: new Date(c.retiredAt).toISOString() }, `sink ${c.sink} is configured again: every reading after its cursor is still buffered, so it resumes from its cursor (${c.backlog} to send)`)
    } else {
      log.info(
        { ...c, retiredAt: new Date(c.retiredAt).toISOString() },
        `sink ${c.sink} is configured again: ${c.missed} readings after its cursor left the buffer while it was retired and will not reach it; it resumes from the oldest buffered reading (${c.backlog} to send)`,
      )
    }
  }
}
