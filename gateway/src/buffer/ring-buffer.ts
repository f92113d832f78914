import type Database from 'better-sqlite3'
import type { BufferLimits, IngestItem, IngestOutcome, ReadingIn, Settlement, BufferedReading } from './types.js'

/**
 * Smallest reading id received at or after `t`, or null when none was; by binary search over ids in
 * O(log n) primary-key lookups. Receive times do not decrease with the id (ids are given in arrival
 * order), so there is no need for an index on received_at, which would slow every ingest commit.
 * Used by prune (what is older than the dedupe window) and the API (readings since a time).
 */
export function receiveTimeSearch(db: Database.Database): (t: number) => number | null {
  const range = db.prepare('SELECT min(id) AS lo, max(id) AS hi FROM readings')
  const atOrAfter = db.prepare('SELECT id, received_at AS at FROM readings WHERE id >= ? ORDER BY id LIMIT 1')
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

/**
 * The SQLite ring buffer. Every method is synchronous and runs in one transaction (better-sqlite3 can't
 * span an `await`), so a commit is all-or-nothing and the caller acknowledges only after it returns.
 *
 * Deletion order is always oldest-first, which keeps row ids a contiguous range and lets the ring bound
 * remove delivered rows before undelivered ones without a scan. Nothing else deletes a reading: a
 * requeued dead letter whose reading is still held retires the held copy in place (`requeue`).
 */
export class RingBuffer {
  private rows = 0
  private bytes = 0
  private readonly clocks = new Map<string, number>()
  private readonly sinks = new Set<string>()
  private readonly st: ReturnType<RingBuffer['prepare']>
  private readonly ingestTx: (items: readonly IngestItem[]) => IngestOutcome
  private readonly firstReceivedAtOrAfter: (t: number) => number | null

  constructor(
    readonly db: Database.Database,
    readonly limits: BufferLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.st = this.prepare()
    this.firstReceivedAtOrAfter = receiveTimeSearch(db)
    const agg = db.prepare('SELECT count(*) AS n, coalesce(sum(length(payload)), 0) AS b FROM readings').get() as { n: number; b: number }
    this.rows = agg.n
    this.bytes = agg.b
    for (const r of db.prepare('SELECT device, last_ts_us FROM devices WHERE last_ts_us IS NOT NULL').all() as Array<{ device: string; last_ts_us: number }>) {
      this.clocks.set(r.device, r.last_ts_us)
    }
    for (const r of db.prepare('SELECT name FROM sink_state').all() as Array<{ name: string }>) this.sinks.add(r.name)
    this.ingestTx = db.transaction((items: readonly IngestItem[]) => this.ingestItems(items))
  }

  private prepare() {
    const db = this.db
    return {
      insertReading: db.prepare(
        'INSERT OR IGNORE INTO readings (device, boot, seq, ts_us, received_at, pot, switch, led, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      // One row per device per batch: last seen, last reading, and the clock that keeps point times increasing.
      upsertDeviceReading: db.prepare(
        `INSERT INTO devices (device, last_seen, last_reading, last_reading_at, last_ts_us) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (device) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen), last_reading = excluded.last_reading,
           last_reading_at = excluded.last_reading_at, last_ts_us = excluded.last_ts_us`,
      ),
      insertDead: db.prepare('INSERT INTO dead_letters (at, source, topic, device, reading_id, reason, payload) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      insertEvent: db.prepare('INSERT INTO events (at, device, kind, payload) VALUES (?, ?, ?, ?)'),
      touchDevice: db.prepare('INSERT INTO devices (device, last_seen) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)'),
      deviceStatus: db.prepare('UPDATE devices SET online = ?, status_at = ? WHERE device = ?'),
      deviceLed: db.prepare('UPDATE devices SET led_state = ? WHERE device = ?'),
      deviceOta: db.prepare('UPDATE devices SET ota_state = ? WHERE device = ?'),
      oldest: db.prepare(`SELECT id, device, NOT (${LIVE_READING}) AS retired, length(payload) AS b FROM readings ORDER BY id LIMIT ?`),
      deleteUpTo: db.prepare('DELETE FROM readings WHERE id <= ?'),
      addDrops: db.prepare('INSERT INTO drops (device, count) VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET count = count + excluded.count'),
      minCursor: db.prepare('SELECT min(cursor) AS c FROM sink_state'),
      ensureSink: db.prepare('INSERT OR IGNORE INTO sink_state (name, cursor) VALUES (?, ?)'),
      // The raw payload is not read: sinks encode from the parsed columns, and a dead letter fetches
      // its payload by id (payloadOf). Skipping it makes reading a large backlog ~30% cheaper.
      readAfter: db.prepare(
        `SELECT id, device, boot, seq, ts_us AS tsUs, received_at AS receivedAt, pot, switch, led FROM readings WHERE id > ? AND ${LIVE_READING} ORDER BY id LIMIT ?`,
      ),
      payloadOf: db.prepare('SELECT payload FROM readings WHERE id = ?'),
      retire: db.prepare('UPDATE readings SET seq = -id WHERE device = ? AND boot = ? AND seq = ?'),
      cursorOf: db.prepare('SELECT cursor FROM sink_state WHERE name = ?'),
      advance: db.prepare(
        'UPDATE sink_state SET cursor = max(cursor, ?), sent_total = sent_total + ?, rejected_total = rejected_total + ?, last_ok_at = coalesce(?, last_ok_at) WHERE name = ?',
      ),
      sinkError: db.prepare('UPDATE sink_state SET last_error_code = ?, last_error = ?, last_error_at = ? WHERE name = ?'),
      countUpTo: db.prepare('SELECT count(*) AS n, coalesce(sum(length(payload)), 0) AS b FROM readings WHERE id <= ?'),
      pruneEvents: db.prepare('DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?'),
      idRange: db.prepare('SELECT min(id) AS lo, max(id) AS hi FROM readings'),
      setMeta: db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      getMeta: db.prepare('SELECT value FROM meta WHERE key = ?'),
    }
  }

  /** Stores a batch in one transaction. Throws (and stores nothing) if SQLite fails, e.g. SQLITE_FULL. */
  ingest(items: readonly IngestItem[]): IngestOutcome {
    return this.ingestTx(items)
  }

  private ingestItems(items: readonly IngestItem[]): IngestOutcome {
    const out: IngestOutcome = { stored: 0, duplicates: 0, dead: 0, events: 0, dropped: 0 }
    // The newest stored reading per device; `devices` is written once per device per batch.
    const latest = new Map<string, { it: ReadingIn; tsUs: number }>()
    const seen = new Map<string, number>()
    for (const it of items) {
      if (it.type === 'reading') {
        const last = this.clocks.get(it.device) ?? 0
        const tsUs = Math.max(pointTimeUs(it.tsMs, it.receivedAt), last + 1)
        const r = this.st.insertReading.run(it.device, it.boot, it.seq, tsUs, it.receivedAt, it.pot, it.switch, it.led, it.payload)
        seen.set(it.device, it.receivedAt)
        if (r.changes === 1) {
          out.stored++
          this.rows++
          this.bytes += it.payload.length
          this.clocks.set(it.device, tsUs)
          latest.set(it.device, { it, tsUs })
        } else {
          out.duplicates++
        }
      } else if (it.type === 'dead') {
        this.st.insertDead.run(it.receivedAt, 'ingest', it.topic, it.device, null, it.reason, it.payload)
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
    if (this.rows > this.limits.maxRows || this.bytes > this.limits.maxBytes) out.dropped = this.enforceLimits()
    return out
  }

  /**
   * Removes the oldest rows until both limits hold. Rows every sink has passed go first (they are the
   * oldest); any undelivered row removed is a drop, counted per device. Returns the number of drops.
   */
  private enforceLimits(): number {
    const passed = this.minCursor()
    let dropped = 0
    while (this.rows > this.limits.maxRows || this.bytes > this.limits.maxBytes) {
      const excessRows = Math.max(0, this.rows - this.limits.maxRows)
      const chunk = this.st.oldest.all(Math.max(64, Math.min(excessRows, 10_000))) as Array<{ id: number; device: string; retired: 0 | 1; b: number }>
      if (chunk.length === 0) break
      let cut = -1
      let rows = this.rows
      let bytes = this.bytes
      const perDevice = new Map<string, number>()
      for (const r of chunk) {
        if (rows <= this.limits.maxRows && bytes <= this.limits.maxBytes) break
        cut = r.id
        rows--
        bytes -= r.b
        if (r.id > passed && !r.retired) perDevice.set(r.device, (perDevice.get(r.device) ?? 0) + 1)
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

  /** The lowest cursor over all sinks; with no sinks nothing counts as delivered. */
  private minCursor(): number {
    if (this.sinks.size === 0) return 0
    return ((this.st.minCursor.get() as { c: number | null }).c ?? 0)
  }

  /** Registers a sink. A new sink starts at the oldest reading still in the buffer. */
  ensureSink(name: string): void {
    this.st.ensureSink.run(name, 0)
    this.sinks.add(name)
  }

  /** The next readings for a sink, oldest first. */
  read(sink: string, limit: number): BufferedReading[] {
    return this.readFrom(this.cursor(sink), limit)
  }

  /** Readings with id > `afterId`, oldest first (the drainer reads ahead of its cursor while batches are in flight). */
  readFrom(afterId: number, limit: number): BufferedReading[] {
    const rows = this.st.readAfter.all(afterId, limit) as BufferedReading[]
    // Normalised in place: a backlog is read in batches of thousands, and copies cost GC time.
    for (const r of rows) r.switch = r.switch ? 1 : 0
    return rows
  }

  cursor(sink: string): number {
    return ((this.st.cursorOf.get(sink) as { cursor: number } | undefined)?.cursor ?? 0)
  }

  /**
   * Applies a sink's answer in one transaction. The cursor moves over the longest prefix of the batch
   * whose rows were accepted or rejected; rejected rows in that prefix become dead letters with the
   * sink's reason. Rows after the first retryable (or unmentioned) row are sent again later, in order.
   */
  settle = (sink: string, batch: readonly BufferedReading[], result: Settlement): { advanced: number; accepted: number; rejected: number } => {
    return this.db.transaction(() => {
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
          this.st.insertDead.run(now, `sink:${sink}`, `sensors/${row.device}/telemetry`, row.device, row.id, rejected.get(row.id)!, (this.st.payloadOf.get(row.id) as { payload: Buffer } | undefined)?.payload ?? Buffer.alloc(0))
        } else break
        cursor = row.id
      }
      if (cursor >= 0) this.st.advance.run(cursor, nAcc, nRej, nAcc > 0 ? now : null, sink)
      return { advanced: nAcc + nRej, accepted: nAcc, rejected: nRej }
    })()
  }

  /**
   * Stores `item` again, at the end, through the same path as `ingest` (a dead letter being requeued;
   * see dead-letters.ts). A sink-refused reading may still be held (kept for dedupe) under the same
   * (device, boot, seq): that copy is retired in place, not deleted, so ids stay a contiguous range
   * and `backlogEstimate` stays the exact count of rows after a cursor (a retired row among them is
   * skipped when read). One transaction.
   */
  requeue(item: IngestItem): IngestOutcome {
    return this.db.transaction(() => {
      if (item.type === 'reading') this.st.retire.run(item.device, item.boot, item.seq)
      return this.ingestItems([item])
    })()
  }

  /** Records a sink failure for status (code is low-cardinality, e.g. 'http_429', 'auth', 'network'). */
  recordSinkError(sink: string, code: string | null, message: string | null): void {
    this.st.sinkError.run(code, message, code ? this.now() : null, sink)
  }

  /**
   * Deletes readings every sink has passed once they are older than the dedupe window, and trims
   * events. Returns the number of readings deleted.
   */
  prune(): number {
    if (this.sinks.size === 0) return 0
    const passed = this.minCursor()
    const before = this.now() - this.limits.dedupWindowMs
    return this.db.transaction(() => {
      const cut = this.pruneCut(passed, before)
      let n = 0
      if (cut !== null) {
        // Oldest-first: rows are deleted as a prefix, so count and bytes stay exact. Only the rows
        // being deleted are counted: each row is scanned once in its life, not at every prune.
        const c = this.st.countUpTo.get(cut) as { n: number; b: number }
        this.st.deleteUpTo.run(cut)
        this.rows -= c.n
        this.bytes -= c.b
        n = c.n
      }
      this.st.pruneEvents.run(this.limits.maxEvents)
      return n
    })()
  }

  /** The largest id ≤ `passed` whose reading arrived before `before`; null when nothing may go. */
  private pruneCut(passed: number, before: number): number | null {
    const r = this.st.idRange.get() as { lo: number | null; hi: number | null }
    if (r.lo === null || r.hi === null || r.lo > passed) return null
    const firstYoung = this.firstReceivedAtOrAfter(before)
    const cut = Math.min(passed, firstYoung === null ? r.hi : firstYoung - 1)
    return cut >= r.lo ? cut : null
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

/** Device `ts` when plausible, else the receive time; in microseconds. */
export function pointTimeUs(tsMs: number | undefined, receivedAt: number): number {
  const ok = tsMs !== undefined && tsMs >= PLAUSIBLE_FROM_MS && tsMs <= receivedAt + FUTURE_TOLERANCE_MS
  return (ok ? tsMs : receivedAt) * 1000
}
