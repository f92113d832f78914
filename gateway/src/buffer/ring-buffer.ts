import type Database from 'better-sqlite3'
import type { BufferLimits, IngestItem, IngestOutcome, ReadingIn, Settlement, BufferedReading } from './types.js'
import { SinkRegistry, type SinkChange } from './sinks.js'
import { FerryError } from '../../../common/src/errors.js'
import { IngestRate, META_INGEST_RATE } from './runway.js'
import { DeadLetterStore, type DiscardCount } from './dead-letter-store.js'
import { countReadings } from './integrity.js'
import { readingStore } from './schema.js'

/**
 * Smallest reading id received at or after `t`, or null when none was; by binary search over ids in
 * O(log n) primary-key lookups. Receive times do not decrease with the id (ids are given in arrival
 * order), so there is no need for an index on received_at, which would slow every ingest commit.
 * Used by prune (what is older than the dedupe window) and the API (readings since a time).
 */
export function receiveTimeSearch(db: Database.Database): (t: number) => number | null {
  const { table } = readingStore(db)
  const range = db.prepare(idRangeSql(table))
  const atOrAfter = db.prepare(`SELECT id, received_at AS at FROM ${table} WHERE id >= ? ORDER BY id LIMIT 1`)
  return (t) => {
    const r = range.get() as { lo: number | null; hi: number | null }
    if (r.lo === null || r.hi === null) return null
    let lo = r.lo
    let hi = r.hi + 1 // invariant: the answer is in [lo, hi]; hi means "none"
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2)
      const row = atOrAfter.get(mid) as { id: number; at: number } | undefined
      if (row && row.at >= t) hi = mid
      else if (row) lo = row.id + 1
      else hi = mid
    }
    return lo > r.hi ? null : lo
  }
}

/**
 * The lowest and highest id held, as `lo`, `hi`. Two sub-selects: SQLite answers a lone `min(id)` or
 * `max(id)` from one end of the primary key, but `SELECT min(id), max(id)` in one statement scans the
 * whole table (~0.3 s per million rows; prune, expiry and the backlog estimate for /metrics ask often).
 */
export function idRangeSql(table: string): string {
  return `SELECT (SELECT min(id) FROM ${table}) AS lo, (SELECT max(id) FROM ${table}) AS hi`
}

/**
 * SQL condition for a row that is a reading. A retired row (superseded by a requeued copy, see
 * `RingBuffer.requeue`) keeps its id and bytes until pruned like any other row, but gives up its
 * (device, boot, seq) by taking seq = -id: ingest stores unsigned seqs only. Sinks never read it,
 * and it is neither a drop nor a reading per device.
 */
export const LIVE_READING = 'seq >= 0'

/** Device timestamps before this are treated as "clock not set" (ESP32 before NTP boots at 1970). */
const PLAUSIBLE_FROM_MS = Date.UTC(2020, 0, 1)
/** ... and later than receive time plus this are treated as a wrong clock. */
const FUTURE_TOLERANCE_MS = 10 * 60_000
/** How often the ingest rate is written to `meta` for `ferry status`, inside a commit (no fsync of its own). */
const RATE_PERSIST_MS = 1000

/**
 * The SQLite ring buffer. Every method is synchronous and runs in one transaction (better-sqlite3 can't
 * span an `await`), so a commit is all-or-nothing and the caller acknowledges only after it returns.
 *
 * Deletion order is always oldest-first, which keeps row ids a contiguous range and lets the ring bound
 * remove delivered rows before undelivered ones without a scan. Nothing else deletes a reading: a
 * requeued dead letter whose reading is still held retires the held copy in place (`requeue`).
 * Dead letters are written through `DeadLetterStore`, which keeps them within their own bound.
 */
export class RingBuffer {
  private rows = 0
  private bytes = 0
  private clocks = new Map<string, number>()
  /** `device_ids`: the small integer each device's rows and dedupe keys carry, both ways. */
  private deviceIds = new Map<string, number>()
  private deviceNames: string[] = []
  private readonly rate: IngestRate
  private ratePersistedAt = 0
  /** The active (not retired) sinks; see sinks.ts. */
  private readonly sinks = new Set<string>()
  private readonly registry: SinkRegistry
  private readonly deadLetters: DeadLetterStore
  private readonly st: ReturnType<RingBuffer['prepare']>
  private readonly ingestTx: (items: readonly IngestItem[]) => IngestOutcome
  private readonly firstReceivedAtOrAfter: (t: number) => number | null

  constructor(
    readonly db: Database.Database,
    readonly limits: BufferLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.st = this.prepare()
    this.registry = new SinkRegistry(db)
    this.deadLetters = new DeadLetterStore(db, limits.deadLetters, now)
    this.firstReceivedAtOrAfter = receiveTimeSearch(db)
    // Counted once per start, at open where possible (integrity.ts: the scan is also a corruption check).
    const counted = countReadings(db)
    this.rows = counted.rows
    this.bytes = counted.bytes
    this.loadClocks()
    this.loadDeviceIds()
    this.rate = new IngestRate(now())
    for (const r of db.prepare('SELECT name FROM sink_state WHERE retired_at IS NULL').all() as Array<{ name: string }>) this.sinks.add(r.name)
    this.ingestTx = db.transaction((items: readonly IngestItem[]) => {
      const out = this.ingestItems(items)
      const at = this.now()
      if (at - this.ratePersistedAt >= RATE_PERSIST_MS) {
        this.setMeta(META_INGEST_RATE, this.rate.snapshot(at, out.stored))
        this.ratePersistedAt = at
      }
      return out
    })
  }

  private loadClocks(): void {
    this.clocks = new Map()
    for (const r of this.db.prepare('SELECT device, last_ts_us FROM devices WHERE last_ts_us IS NOT NULL').all() as Array<{ device: string; last_ts_us: number }>) {
      this.clocks.set(r.device, r.last_ts_us)
    }
  }

  private loadDeviceIds(): void {
    this.deviceIds = new Map()
    this.deviceNames = []
    for (const r of this.db.prepare('SELECT id, device FROM device_ids').all() as Array<{ id: number; device: string }>) {
      this.deviceIds.set(r.device, r.id)
      this.deviceNames[r.id] = r.device
    }
  }

  /** The device's integer id, given it on its first reading (inside the caller's transaction). */
  private deviceId(device: string): number {
    let id = this.deviceIds.get(device)
    if (id === undefined) {
      id = Number(this.st.addDeviceId.run(device).lastInsertRowid)
      this.deviceIds.set(device, id)
      this.deviceNames[id] = device
    }
    return id
  }

  /**
   * Runs a write transaction; if it throws (rolled back), the counts and clocks kept in memory are put
   * back as the database has them, so a refused or failed commit leaves no trace. Once it committed,
   * the dead letters it discarded are reported (`onDeadLettersDiscarded`).
   */
  private undoable<T>(tx: () => T): T {
    const rows = this.rows
    const bytes = this.bytes
    let out: T
    try {
      out = tx()
    } catch (err) {
      this.rows = rows
      this.bytes = bytes
      this.loadClocks()
      this.loadDeviceIds() // one given inside the rolled-back transaction is gone
      this.deadLetters.rolledBack()
      throw err
    }
    this.deadLetters.committed()
    return out
  }

  private prepare() {
    const db = this.db
    return {
      insertReading: db.prepare(
        'INSERT OR IGNORE INTO reading_rows (device, boot, seq, ts_us, received_at, pot, switch, led, size, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      addDeviceId: db.prepare('INSERT INTO device_ids (device) VALUES (?)'),
      // One row per device per batch: last seen, last reading, and the clock that keeps point times increasing.
      upsertDeviceReading: db.prepare(
        `INSERT INTO devices (device, last_seen, last_reading, last_reading_at, last_ts_us) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (device) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen), last_reading = excluded.last_reading,
           last_reading_at = excluded.last_reading_at, last_ts_us = excluded.last_ts_us`,
      ),
      insertEvent: db.prepare('INSERT INTO events (at, device, kind, payload) VALUES (?, ?, ?, ?)'),
      touchDevice: db.prepare('INSERT INTO devices (device, last_seen) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)'),
      deviceStatus: db.prepare('UPDATE devices SET online = ?, status_at = ? WHERE device = ?'),
      deviceLed: db.prepare('UPDATE devices SET led_state = ? WHERE device = ?'),
      deviceOta: db.prepare('UPDATE devices SET ota_state = ? WHERE device = ?'),
      oldest: db.prepare(`SELECT id, device, NOT (${LIVE_READING}) AS retired, size AS b FROM reading_rows ORDER BY id LIMIT ?`),
      deleteUpTo: db.prepare('DELETE FROM reading_rows WHERE id <= ?'),
      addDrops: db.prepare('INSERT INTO drops (device, count) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET count = count + excluded.count'),
      addExpired: db.prepare('INSERT INTO expired (device, count) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET count = count + excluded.count'),
      liveByDevice: db.prepare(`SELECT device, count(*) AS n FROM readings WHERE id > ? AND id <= ? AND ${LIVE_READING} GROUP BY device`),
      minCursor: db.prepare('SELECT min(cursor) AS c FROM sink_state WHERE retired_at IS NULL'),
      // The raw payload is not read: sinks encode from the parsed columns, and a dead letter fetches
      // its payload by id (payloadOf). Rows come as arrays (`raw`): better-sqlite3 builds an object
      // per row with named properties at about three times the cost (docs/buffer-storage.md#reading).
      readAfter: db.prepare(`SELECT id, device, boot, seq, ts_us, received_at, pot, switch, led FROM reading_rows WHERE id > ? AND ${LIVE_READING} ORDER BY id LIMIT ?`).raw(true),
      // Through the view: the raw bytes, or the JSON rebuilt from the columns.
      payloadOf: db.prepare('SELECT payload FROM readings WHERE id = ?'),
      retire: db.prepare('UPDATE reading_rows SET seq = -id WHERE device = ? AND boot = ? AND seq = ?'),
      // Only for a requeued reading (a scan of the device's rows through the UNIQUE index).
      keysBetween: db.prepare('SELECT device, boot, seq FROM reading_rows WHERE id > ? AND id <= ? AND seq >= 0 ORDER BY id'),
      idOf: db.prepare('SELECT id FROM reading_rows WHERE device = ? AND boot = ? AND seq = ?').pluck(),
      pointTimeTaken: db.prepare(`SELECT 1 FROM reading_rows WHERE device = ? AND ts_us = ? AND ${LIVE_READING}`),
      cursorOf: db.prepare('SELECT cursor FROM sink_state WHERE name = ?'),
      advance: db.prepare(
        'UPDATE sink_state SET cursor = max(cursor, ?), sent_total = sent_total + ?, rejected_total = rejected_total + ?, last_ok_at = coalesce(?, last_ok_at) WHERE name = ?',
      ),
      sinkError: db.prepare('UPDATE sink_state SET last_error_code = ?, last_error = ?, last_error_at = ? WHERE name = ?'),
      countUpTo: db.prepare('SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM reading_rows WHERE id <= ?'),
      pruneEvents: db.prepare('DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?'),
      idRange: db.prepare(idRangeSql('reading_rows')),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    }
  }

  /**
   * Stores a batch in one transaction. Throws (and stores nothing) if SQLite fails, e.g. SQLITE_FULL,
   * or, with `onFull: 'backpressure'`, FERRY_ERR_BUFFER_BACKPRESSURE when the batch does not fit.
   */
  ingest(items: readonly IngestItem[]): IngestOutcome {
    const out = this.undoable(() => this.ingestTx(items))
    this.rate.add(out.stored, this.now())
    return out
  }

  private ingestItems(items: readonly IngestItem[]): IngestOutcome {
    const out: IngestOutcome = { stored: 0, duplicates: 0, dead: 0, events: 0, dropped: 0 }
    // The newest stored reading per device; `devices` is written once per device per batch.
    const latest = new Map<string, { it: ReadingIn; tsUs: number }>()
    const seen = new Map<string, number>()
    for (const it of items) {
      if (it.type === 'reading') {
        const last = this.clocks.get(it.device) ?? 0
        const tsUs =
          it.pointTimeUs !== undefined
            ? this.freePointTime(it.device, it.pointTimeUs)
            : this.limits.replica == null
              ? Math.max(pointTimeUs(it.tsMs, it.receivedAt), last + 1)
              : sharedPointTime(it, last, this.limits.replica)
        const raw = keepsRawPayload(it, tsUs) ? it.payload : null
        const r = this.st.insertReading.run(this.deviceId(it.device), it.boot, it.seq, tsUs, it.receivedAt, it.pot, it.switch, it.led, it.payload.length, raw)
        seen.set(it.device, it.receivedAt)
        if (r.changes === 1) {
          out.stored++
          this.rows++
          this.bytes += it.payload.length
          // Always the case but for a requeued reading that keeps an older point time, and for a
          // replica's reading that arrives after a later one (device time kept: sharedPointTime).
          if (tsUs > last) {
            this.clocks.set(it.device, tsUs)
            latest.set(it.device, { it, tsUs })
          }
        } else {
          out.duplicates++
          ;(out.duplicateReadings ??= []).push(it)
        }
      } else if (it.type === 'dead') {
        // `dead` counts it whether it is stored or, its device's share being full, only counted (dead-letter-store.ts).
        this.deadLetters.add({ at: it.receivedAt, source: 'ingest', topic: it.topic, device: it.device, readingId: null, reason: it.reason, payload: it.payload, tsUs: null })
        out.dead++
      } else {
        this.st.insertEvent.run(it.receivedAt, it.device, it.kind, it.payload)
        this.st.touchDevice.run(it.device, it.receivedAt)
        const text = it.payload.toString('utf8')
        if (it.kind === 'status') this.st.deviceStatus.run(text === 'online' ? 1 : 0, it.receivedAt, it.device)
        else if (it.kind === 'led_state') this.st.deviceLed.run(text, it.device)
        else this.st.deviceOta.run(text, it.device)
        out.events++
      }
    }
    for (const [device, at] of seen) {
      const l = latest.get(device)
      if (!l) {
        this.st.touchDevice.run(device, at) // only duplicates from this device in this batch
        continue
      }
      const { it, tsUs } = l
      const reading = JSON.stringify({ boot: it.boot, seq: it.seq, pot: it.pot, switch: it.switch, led: it.led, ts: Math.floor(tsUs / 1000) })
      this.st.upsertDeviceReading.run(device, at, reading, it.receivedAt, tsUs)
    }
    this.deadLetters.finish()
    // The event history's bound holds with or without sinks (prune runs only while some sink drains).
    if (out.events) this.st.pruneEvents.run(this.limits.maxEvents)
    if (this.overLimits()) {
      if (this.limits.onFull !== 'backpressure') out.dropped = this.enforceLimits(Infinity)
      else {
        this.enforceLimits(this.minCursor()) // delivered rows only
        if (this.overLimits()) this.refuse()
      }
    }
    return out
  }

  private overLimits(): boolean {
    return this.rows > this.limits.maxRows || this.bytes > this.limits.maxBytes
  }

  /**
   * Backpressure: the batch fits only by deleting undelivered readings, so the transaction is rolled
   * back (the throw) and nothing of it is stored, acknowledged or confirmed.
   */
  private refuse(): never {
    throw new FerryError(
      'FERRY_ERR_BUFFER_BACKPRESSURE',
      `the buffer is full of undelivered readings (${this.rows} readings, ${this.bytes} bytes with this group; limits ${this.limits.maxRows} readings, ${this.limits.maxBytes} bytes): commit refused, nothing acknowledged`,
    )
  }

  /**
   * Removes the oldest rows, none after id `upTo`, until both limits hold (or nothing more may go).
   * Rows every sink has passed go first (they are the oldest); any undelivered row removed is a drop,
   * counted per device (so with `upTo` = the lowest cursor nothing is dropped). Returns the drops.
   */
  private enforceLimits(upTo: number): number {
    const passed = this.minCursor()
    let dropped = 0
    while (this.overLimits()) {
      const excessRows = Math.max(0, this.rows - this.limits.maxRows)
      const chunk = this.st.oldest.all(Math.max(64, Math.min(excessRows, 10_000))) as Array<{ id: number; device: number; retired: 0 | 1; b: number }>
      if (chunk.length === 0) break
      let cut = -1
      let rows = this.rows
      let bytes = this.bytes
      const perDevice = new Map<string, number>()
      for (const r of chunk) {
        if ((rows <= this.limits.maxRows && bytes <= this.limits.maxBytes) || r.id > upTo) break
        cut = r.id
        rows--
        bytes -= r.b
        if (r.id > passed && !r.retired) perDevice.set(this.deviceNames[r.device]!, (perDevice.get(this.deviceNames[r.device]!) ?? 0) + 1)
      }
      if (cut < 0) break
      this.st.deleteUpTo.run(cut)
      this.rows = rows
      this.bytes = bytes
      for (const [device, n] of perDevice) {
        this.st.addDrops.run(device, n)
        dropped += n
      }
    }
    return dropped
  }

  /**
   * The id up to which every configured sink has taken (or dead-lettered) every reading: confirmations
   * after delivery (ingest/confirmer.ts). 0 with no sinks: nothing is ever delivered.
   */
  deliveredUpTo(): number {
    return this.minCursor()
  }

  /** `(device, boot, seq)` of the readings with `lo < id <= hi` still held, in id order. */
  readingKeysBetween(lo: number, hi: number): Array<{ device: string; boot: number; seq: number }> {
    const rows = this.st.keysBetween.all(lo, hi) as Array<{ device: number | string; boot: number; seq: number }>
    for (const r of rows) r.device = this.deviceNames[r.device as number]!
    return rows as Array<{ device: string; boot: number; seq: number }>
  }

  /** Those of `readings` (already stored: duplicates) that every sink has taken. */
  deliveredAmong<R extends { device: string; boot: number; seq: number }>(readings: readonly R[]): R[] {
    const upTo = this.minCursor()
    return readings.filter((r) => {
      const device = this.deviceIds.get(r.device)
      const id = device === undefined ? undefined : (this.st.idOf.get(device, r.boot, r.seq) as number | undefined)
      return id !== undefined && id <= upTo
    })
  }

  /** The lowest cursor over all sinks; with no sinks nothing counts as delivered. */
  private minCursor(): number {
    if (this.sinks.size === 0) return 0
    return ((this.st.minCursor.get() as { c: number | null }).c ?? 0)
  }

  /**
   * Point times are unique per device: a kept point time that another live reading of the device
   * holds moves on by 1 µs until it is free (only possible for a dead letter from ingest, which never
   * had one: see dead-letters.ts).
   */
  private freePointTime(device: string, tsUs: number): number {
    const id = this.deviceId(device)
    while (this.st.pointTimeTaken.get(id, tsUs)) tsUs++
    return tsUs
  }

  /**
   * Tells the buffer which sinks are configured (FERRY_SINKS), at gateway start: registers each and
   * retires every other sink in `sink_state`, so that its cursor no longer holds readings (sinks.ts).
   * One transaction; returns what changed, for the log (`logSinkChanges`).
   */
  configureSinks(names: readonly string[]): SinkChange[] {
    return this.db.transaction(() => {
      const changes = this.registry.retireAllBut(names, this.now())
      for (const c of changes) this.sinks.delete(c.sink)
      for (const name of names) {
        const c = this.ensureSink(name)
        if (c) changes.push(c)
      }
      return changes
    })()
  }

  /** Registers a sink: a new one starts at the oldest reading still in the buffer, a retired one resumes (sinks.ts). */
  ensureSink(name: string): SinkChange | undefined {
    const change = this.registry.register(name)
    this.sinks.add(name)
    return change
  }

  /** The next readings for a sink, oldest first. */
  read(sink: string, limit: number): BufferedReading[] {
    return this.readFrom(this.cursor(sink), limit)
  }

  /** Readings with id > `afterId`, oldest first (the drainer reads ahead of its cursor while batches are in flight). */
  readFrom(afterId: number, limit: number): BufferedReading[] {
    const rows = this.st.readAfter.all(afterId, limit) as RawReading[]
    const out: BufferedReading[] = new Array(rows.length)
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!
      out[i] = { id: r[0], device: this.deviceNames[r[1]]!, boot: r[2], seq: r[3], tsUs: r[4], receivedAt: r[5], pot: r[6], switch: r[7] ? 1 : 0, led: r[8] }
    }
    return out
  }

  cursor(sink: string): number {
    return ((this.st.cursorOf.get(sink) as { cursor: number } | undefined)?.cursor ?? 0)
  }

  /**
   * Applies a sink's answer in one transaction. The cursor moves over the longest prefix of the batch
   * whose rows were accepted or rejected; rejected rows in that prefix become dead letters with the
   * sink's reason (within the dead letters' bound: dead-letter-store.ts). Rows after the first retryable (or unmentioned) row are sent again later, in order.
   */
  settle = (sink: string, batch: readonly BufferedReading[], result: Settlement): { advanced: number; accepted: number; rejected: number } => {
    return this.undoable(this.db.transaction(() => {
      const now = this.now()
      // The common case, everything accepted in order: no per-row bookkeeping.
      if (result.rejected.length === 0 && result.accepted.length === batch.length && batch.length > 0 && result.accepted.every((id, i) => id === batch[i]!.id)) {
        this.st.advance.run(batch[batch.length - 1]!.id, batch.length, 0, now, sink)
        return { advanced: batch.length, accepted: batch.length, rejected: 0 }
      }
      const accepted = new Set(result.accepted)
      const rejected = new Map(result.rejected.map((r) => [r.id, r.reason]))
      let cursor = -1
      let nAcc = 0
      let nRej = 0
      for (const row of batch) {
        if (accepted.has(row.id)) nAcc++
        else if (rejected.has(row.id)) {
          nRej++
          // Keeps the point time, for a requeue (dead-letters.ts); subject to the dead letters' bound.
          const payload = (this.st.payloadOf.get(row.id) as { payload: Buffer } | undefined)?.payload ?? Buffer.alloc(0)
          this.deadLetters.add({ at: now, source: `sink:${sink}`, topic: `sensors/${row.device}/telemetry`, device: row.device, readingId: row.id, reason: rejected.get(row.id)!, payload, tsUs: row.tsUs })
        } else break
        cursor = row.id
      }
      this.deadLetters.finish()
      if (cursor >= 0) this.st.advance.run(cursor, nAcc, nRej, nAcc > 0 ? now : null, sink)
      return { advanced: nAcc + nRej, accepted: nAcc, rejected: nRej }
    }))
  }

  /**
   * Stores `item` again, at the end, through the same path as `ingest` (a dead letter being requeued;
   * see dead-letters.ts). A sink-refused reading may still be held (kept for dedupe) under the same
   * (device, boot, seq): that copy is retired in place, not deleted, so ids stay a contiguous range
   * and `backlogEstimate` stays the exact count of rows after a cursor (a retired row among them is
   * skipped when read). A reading that carries `pointTimeUs` keeps that point time instead of taking
   * the next one of the device clock. One transaction.
   */
  requeue(item: IngestItem): IngestOutcome {
    return this.undoable(() =>
      this.db.transaction(() => {
        const device = item.type === 'reading' ? this.deviceIds.get(item.device) : undefined
        if (item.type === 'reading' && device !== undefined) this.st.retire.run(device, item.boot, item.seq)
        return this.ingestItems([item])
      })(),
    )
  }

  /** Records a sink failure for status (code is low-cardinality, e.g. 'http_429', 'auth', 'network'). */
  recordSinkError(sink: string, code: string | null, message: string | null): void {
    this.st.sinkError.run(code, message, code ? this.now() : null, sink)
  }

  /**
   * Deletes readings every sink has passed once they are older than the dedupe window, the oldest
   * first and at most `maxRows` of them (one transaction each call: the drainer prunes a large
   * delivered backlog in chunks, see drainer.ts `pruneWhileIdle`), and trims events. Returns the
   * number of readings deleted.
   */
  prune(maxRows = Infinity): number {
    if (this.sinks.size === 0) return 0
    const passed = this.minCursor()
    const before = this.now() - this.limits.dedupWindowMs
    return this.db.transaction(() => {
      let cut = this.pruneCut(passed, before)
      // Ids are a contiguous range (deletes are oldest-first), so the first maxRows end here.
      if (cut !== null && Number.isFinite(maxRows)) cut = Math.min(cut, (this.st.idRange.get() as { lo: number }).lo + maxRows - 1)
      const n = cut === null ? 0 : this.deleteUpTo(cut)
      this.st.pruneEvents.run(this.limits.maxEvents)
      return n
    })()
  }

  /**
   * Deletes every row with id <= `cut` and returns how many. Oldest-first: rows are deleted as a
   * prefix, so count and bytes stay exact. Only the rows being deleted are counted: each row is
   * scanned once in its life, not at every prune. Inside a transaction.
   */
  private deleteUpTo(cut: number): number {
    const c = this.st.countUpTo.get(cut) as { n: number; b: number }
    this.st.deleteUpTo.run(cut)
    this.rows -= c.n
    this.bytes -= c.b
    return c.n
  }

  /** The largest id ≤ `passed` whose reading arrived before `before`; null when nothing may go. */
  private pruneCut(passed: number, before: number): number | null {
    const r = this.st.idRange.get() as { lo: number | null; hi: number | null }
    if (r.lo === null || r.hi === null || r.lo > passed) return null
    const firstYoung = this.firstReceivedAtOrAfter(before)
    const cut = Math.min(passed, firstYoung === null ? r.hi : firstYoung - 1)
    return cut >= r.lo ? cut : null
  }

  /**
   * FERRY_BUFFER_MAX_AGE: removes the undelivered readings received before now − `maxAgeMs`, counted
   * per device in `expired` (not as drops). Receive times do not decrease with the id, so they are a
   * prefix of the ids: it is deleted whole, delivered rows in it too, and ids stay contiguous. Runs
   * only when some undelivered reading is that old (older delivered ones are prune's). One transaction.
   */
  expire(): { total: number; byDevice: Record<string, number> } {
    const none = { total: 0, byDevice: {} }
    if (!this.limits.maxAgeMs) return none
    const r = this.st.idRange.get() as { lo: number | null; hi: number | null }
    if (r.lo === null || r.hi === null) return none
    const firstYoung = this.firstReceivedAtOrAfter(this.now() - this.limits.maxAgeMs)
    const cut = firstYoung === null ? r.hi : firstYoung - 1
    const passed = this.minCursor()
    if (cut <= passed || cut < r.lo) return none
    return this.undoable(() =>
      this.db.transaction(() => {
        const perDevice = this.st.liveByDevice.all(passed, cut) as Array<{ device: string; n: number }>
        this.deleteUpTo(cut)
        for (const d of perDevice) this.st.addExpired.run(d.device, d.n)
        return { total: perDevice.reduce((a, d) => a + d.n, 0), byDevice: Object.fromEntries(perDevice.map((d) => [d.device, d.n])) }
      })(),
    )
  }

  /**
   * Readings some active sink has not passed (all of them with no sink), from the id range, and their
   * payload bytes estimated from the average payload held. What counts against the limits once
   * delivered rows have made room.
   */
  private undelivered(): { rows: number; bytes: number } {
    const r = this.st.idRange.get() as { lo: number | null; hi: number | null }
    if (r.hi === null || r.lo === null) return { rows: 0, bytes: 0 }
    const rows = Math.max(0, r.hi - Math.max(this.minCursor(), r.lo - 1))
    return { rows, bytes: this.rows > 0 ? Math.round((rows * this.bytes) / this.rows) : 0 }
  }

  /**
   * Backpressure's probe: whether `readings` more (of the average payload size) fit now without
   * deleting an undelivered reading. An estimate; the commit itself decides exactly.
   */
  hasRoomFor(readings: number): boolean {
    const u = this.undelivered()
    const avg = this.rows > 0 ? this.bytes / this.rows : 0
    return u.rows + readings <= this.limits.maxRows && u.bytes + readings * avg <= this.limits.maxBytes
  }

  /** Readings committed per second, recently (an EWMA kept per commit; see runway.ts). */
  ingestPerS(): number {
    return this.rate.perS(this.now())
  }


  /** Readings after the sink's cursor, from the id range (ids are contiguous: deletes are oldest-first). */
  backlogEstimate(sink: string): number {
    const r = this.st.idRange.get() as { lo: number | null; hi: number | null }
    if (r.hi === null || r.lo === null) return 0
    return Math.max(0, r.hi - Math.max(this.cursor(sink), r.lo - 1))
  }

  /** Rows and bytes currently held. */
  size(): { rows: number; bytes: number } {
    return { rows: this.rows, bytes: this.bytes }
  }

  /** Dead letters held (requeued ones included) and their bytes, against their own bound (dead-letter-store.ts). */
  deadLetterSize(): { rows: number; bytes: number } {
    return this.deadLetters.size()
  }

  /** `fn` hears, after each commit that discarded dead letters, how many per device and reason (metrics, log). */
  onDeadLettersDiscarded(fn: (d: readonly DiscardCount[]) => void): void {
    this.deadLetters.onDiscard = fn
  }

  /**
   * Commits a throw-away write of `bytes` and removes it again; throws what a real commit would throw
   * (e.g. SQLITE_FULL). Ingest uses it to learn when a full disk has space again.
   */
  probeWrite(bytes: number): void {
    this.db.transaction(() => {
      this.setMeta('disk_probe', 'x'.repeat(bytes))
      this.setMeta('disk_probe', Date.now())
    })()
  }

  setMeta(key: string, value: unknown): void {
    this.st.setMeta.run(key, JSON.stringify(value))
  }

  getMeta<T>(key: string): T | undefined {
    const r = this.st.getMeta.get(key) as { value: string } | undefined
    return r ? (JSON.parse(r.value) as T) : undefined
  }
}

/** A `readAfter` row: id, device id, boot, seq, ts_us, received_at, pot, switch, led. */
type RawReading = [number, number, number, number, number, number, number, number, number | null]

/**
 * Whether a reading's raw bytes must be stored beside its columns: unless the payload holds nothing
 * but the fields (`fieldsOnly`) and the device's `ts` can be read back from the point time, the JSON
 * rebuilt from the columns (the `readings` view) would say less than what the device sent.
 * Migration 7 and docs/buffer-storage.md.
 */
export function keepsRawPayload(it: ReadingIn, tsUs: number): boolean {
  return !it.fieldsOnly || it.tsMs === undefined || Math.floor(tsUs / 1000) !== it.tsMs
}

/** Device `ts` when plausible, else the receive time; in microseconds. */
export function pointTimeUs(tsMs: number | undefined, receivedAt: number): number {
  return (plausible(tsMs, receivedAt) ? tsMs : receivedAt) * 1000
}

const plausible = (tsMs: number | undefined, receivedAt: number): tsMs is number =>
  tsMs !== undefined && tsMs >= PLAUSIBLE_FROM_MS && tsMs <= receivedAt + FUTURE_TOLERANCE_MS

/** Replicas of a share group: at most ferry-gateway and ferry-gateway-1 … 9. */
export const REPLICA_SLOTS = 10

/**
 * The point time of a reading stored by one of several replicas (docs/scale-out.md#point-times). A
 * device resends whatever no replica confirmed, possibly to another replica, and both copies reach
 * the sink; InfluxDB overwrites a point with the same series and time, so the copies must get the
 * same time on whichever replica stores them, and different readings must never share one:
 * - device time set: `ts` ms + `seq` mod 1000 µs, the same on every replica (two readings of one
 *   device in one millisecond differ in seq; 1000 of them would be needed to collide);
 * - no device time: the replica's own clock (receive time, strictly increasing per device), in the
 *   microseconds ≡ replica number (mod 10), so two replicas never pick the same one. A resend of such
 *   a reading to another replica is a second point (docs/scale-out.md says so).
 */
export function sharedPointTime(it: { tsMs?: number | undefined; seq: number; receivedAt: number }, lastUs: number, replica: number): number {
  if (plausible(it.tsMs, it.receivedAt)) return it.tsMs * 1000 + (it.seq % 1000)
  const floor = Math.max(it.receivedAt * 1000, lastUs + 1)
  return floor + ((replica - (floor % REPLICA_SLOTS) + REPLICA_SLOTS) % REPLICA_SLOTS)
}
