// Sinks that leave FERRY_SINKS stop holding readings, and come back where they can (sinks.ts), with
// the ring buffer and its status queries on real SQLite.
import t from 'tap'
import pino from 'pino'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import { tempDir } from '../../../test/helpers/tmp.js'
import { openBuffer } from './open.js'
import { RingBuffer } from './ring-buffer.js'
import { logSinkChanges } from './sinks.js'
import { queryStatus, readingCounts } from './status.js'
import type { BufferLimits, ReadingIn } from './types.js'

const reading = (seq: number, receivedAt: number): ReadingIn => ({
  type: 'reading', topic: 'sensors/dev1/telemetry', device: 'dev1', boot: 1, seq, receivedAt, pot: seq % 4096, switch: 0, led: null, payload: Buffer.from(`{"seq":${seq}}`),
})

const LIMITS: BufferLimits = { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 600_000, maxEvents: 100 }

/** Delivers everything `sink` has not had yet (a sink that accepts all). */
function drain(buf: RingBuffer, sink: string): number {
  let n = 0
  for (let batch = buf.read(sink, 100); batch.length > 0; batch = buf.read(sink, 100)) {
    buf.settle(sink, batch, { accepted: batch.map((r) => r.id), rejected: [] })
    n += batch.length
  }
  return n
}

/** An in-memory buffer on a clock the test moves (`clock.now`), with `sinks` configured and readings 1..n stored. */
function memoryBuffer(limits: Partial<BufferLimits>, sinks: string[], n: number) {
  const clock = { now: 1_000_000 }
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, { ...LIMITS, ...limits }, () => clock.now)
  buf.configureSinks(sinks)
  buf.ingest(Array.from({ length: n }, (_, i) => reading(i + 1, clock.now)))
  return { db, buf, clock }
}

const ids = (buf: RingBuffer) => buf.db.prepare('SELECT min(id) AS lo, max(id) AS hi FROM readings').get() as { lo: number | null; hi: number | null }

t.test('the issue: a file sink left in sink_state while InfluxDB takes 2,500 readings through a 1,000-row buffer drops nothing', async (t) => {
  let now = 1_000_000
  const path = join(tempDir(t), 'buffer.db')
  const first = openBuffer(path)
  t.same(new RingBuffer(first.db, LIMITS, () => now).configureSinks(['file']), [{ sink: 'file', change: 'added', backlog: 0 }], 'the first start, with the default file sink')
  first.db.close()

  now += 60_000
  const { db } = openBuffer(path)
  t.teardown(() => db.close())
  const buf = new RingBuffer(db, LIMITS, () => now)
  t.same(buf.configureSinks(['influxdb']), [
    { sink: 'file', change: 'retired', cursor: 0, undelivered: 0 },
    { sink: 'influxdb', change: 'added', backlog: 0 },
  ])
  let dropped = 0
  let delivered = 0
  for (let seq = 1; seq <= 2500; seq += 50) {
    dropped += buf.ingest(Array.from({ length: 50 }, (_, i) => reading(seq + i, now))).dropped
    delivered += drain(buf, 'influxdb')
  }
  t.equal(dropped, 0, 'nothing counted as dropped')
  t.equal(delivered, 2500, 'InfluxDB got every reading')
  const s = queryStatus(db)
  t.same(s.dropped, { total: 0, byDevice: {} })
  t.same(s.sinks.map((k) => [k.name, k.rows]), [['influxdb', 0]], 'only the configured sink has a backlog')
  t.same(s.retiredSinks, [{ name: 'file', retiredAt: 1_060_000, cursor: 0, sentTotal: 0, rejectedTotal: 0, lastOkAt: null }], 'the retired one is listed with since-when')
  t.equal(buf.size().rows, 1000, 'the ring bound removed delivered rows')
  t.equal(readingCounts(db).backlog, 0, 'the backlog is that of the configured sinks only')
})

t.test('prune ignores a retired sink; a restart keeps it retired', async (t) => {
  let now = 1_000_000
  const path = join(tempDir(t), 'buffer.db')
  const a = openBuffer(path)
  const buf = new RingBuffer(a.db, { ...LIMITS, dedupWindowMs: 1000 }, () => now)
  buf.configureSinks(['a', 'b'])
  buf.ingest(Array.from({ length: 10 }, (_, i) => reading(i + 1, now)))
  drain(buf, 'a')
  now += 5000
  t.equal(buf.prune(), 0, 'b has none of them')
  t.same(buf.configureSinks(['a']).map((c) => c.change), ['retired'])
  t.equal(buf.prune(), 10, 'with b retired, what a has passed may go')
  a.db.close()

  const again = openBuffer(path)
  t.teardown(() => again.db.close())
  const restarted = new RingBuffer(again.db, { ...LIMITS, dedupWindowMs: 1000 }, () => now)
  restarted.ingest([reading(11, now)])
  drain(restarted, 'a')
  now += 5000
  t.equal(restarted.prune(), 1, 'b still does not count after a restart')
  t.same(restarted.configureSinks(['a']), [], 'nothing changes when the same sinks are configured')
})

t.test('added back: from its cursor when every reading after it is still buffered, else from the oldest buffered one', async (t) => {
  const { db, buf, clock } = memoryBuffer({ maxRows: 100 }, ['influxdb', 'file'], 30)
  const now = clock.now
  drain(buf, 'influxdb')
  drain(buf, 'file')
  t.same(buf.configureSinks(['influxdb']), [{ sink: 'file', change: 'retired', cursor: 30, undelivered: 0 }])
  buf.ingest(Array.from({ length: 40 }, (_, i) => reading(31 + i, now)))
  drain(buf, 'influxdb')

  t.same(buf.configureSinks(['influxdb', 'file']), [
    { sink: 'file', change: 'resumed', retiredAt: now, from: 'cursor', cursor: 30, previousCursor: 30, missed: 0, backlog: 40 },
  ])
  t.same(buf.read('file', 100).map((r) => r.seq), Array.from({ length: 40 }, (_, i) => 31 + i), 'exactly what it missed, once')
  t.same(queryStatus(db).retiredSinks, [])

  t.equal(buf.configureSinks(['influxdb'])[0]!.change, 'retired')
  // 150 more through a 100-row ring: influxdb takes each group, so what goes is delivered to it; the
  // readings after the file cursor (30) up to id 120 leave the buffer.
  for (let seq = 71; seq <= 220; seq += 10) {
    t.equal(buf.ingest(Array.from({ length: 10 }, (_, i) => reading(seq + i, now))).dropped, 0)
    drain(buf, 'influxdb')
  }
  t.same(ids(buf), { lo: 121, hi: 220 })
  t.same(buf.configureSinks(['influxdb', 'file']), [
    { sink: 'file', change: 'resumed', retiredAt: now, from: 'oldest', cursor: 120, previousCursor: 30, missed: 90, backlog: 100 },
  ])
  t.equal(buf.cursor('file'), 120)
  t.equal(buf.backlogEstimate('file'), 100)
  t.same(buf.read('file', 1).map((r) => r.seq), [121], 'from the oldest buffered reading')
})

t.test('added back to an empty buffer: nothing to send, what it missed is counted from the ids given', async (t) => {
  const { buf, clock } = memoryBuffer({ dedupWindowMs: 0 }, ['a', 'b'], 5)
  drain(buf, 'a')
  buf.configureSinks(['a'])
  clock.now += 1
  buf.prune()
  t.same(buf.size().rows, 0)
  t.same(buf.configureSinks(['a', 'b']), [{ sink: 'b', change: 'resumed', retiredAt: 1_000_000, from: 'oldest', cursor: 5, previousCursor: 0, missed: 5, backlog: 0 }])
  buf.ingest([reading(6, clock.now)])
  t.same(buf.read('b', 10).map((r) => r.seq), [6])
})

t.test('FERRY_SINKS=none retires every sink: readings stay until the ring bound drops them', async (t) => {
  const { db, buf, clock } = memoryBuffer({ maxRows: 10 }, ['a'], 10)
  drain(buf, 'a')
  t.same(buf.configureSinks([]).map((c) => [c.sink, c.change]), [['a', 'retired']])
  t.equal(buf.ingest(Array.from({ length: 5 }, (_, i) => reading(11 + i, clock.now))).dropped, 5, 'with no sink configured, nothing counts as delivered')
  t.equal(buf.prune(), 0, 'and nothing is pruned')
  t.equal(readingCounts(db).backlog, 15, 'every row id counts')
})

t.test('each change is logged at INFO with the numbers', async (t) => {
  const lines: Array<{ level: number; msg: string; [k: string]: unknown }> = []
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }))
  logSinkChanges(log, [
    { sink: 'influxdb', change: 'added', backlog: 7 },
    { sink: 'file', change: 'retired', cursor: 30, undelivered: 4 },
    { sink: 'a', change: 'resumed', retiredAt: 0, from: 'cursor', cursor: 30, previousCursor: 30, missed: 0, backlog: 40 },
    { sink: 'b', change: 'resumed', retiredAt: 0, from: 'oldest', cursor: 120, previousCursor: 30, missed: 90, backlog: 100 },
  ])
  t.ok(lines.every((l) => l.level === 30), 'INFO')
  t.match(lines[0], { sink: 'influxdb', backlog: 7, msg: /new sink influxdb: it starts from the oldest buffered reading/ })
  t.match(lines[1], { sink: 'file', cursor: 30, undelivered: 4, msg: /sink file is no longer in FERRY_SINKS: retired/ })
  t.match(lines[2], { sink: 'a', from: 'cursor', cursor: 30, backlog: 40, retiredAt: '1970-01-01T00:00:00.000Z', msg: /resumes from its cursor \(40 to send\)/ })
  t.match(lines[3], { sink: 'b', from: 'oldest', previousCursor: 30, cursor: 120, missed: 90, msg: /90 readings after its cursor left the buffer .* resumes from the oldest buffered reading \(100 to send\)/ })
})
