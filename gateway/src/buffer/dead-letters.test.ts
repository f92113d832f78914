import t from 'tap'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { tempDir } from '../../../test/helpers/tmp.js'
import { listDeadLetters, requeueDeadLetters, type Revalidate } from './dead-letters.js'
import { migrations } from './migrations.js'
import { openBuffer } from './open.js'
import { RingBuffer } from './ring-buffer.js'
import { queryStatus } from './status.js'
import type { BufferLimits, ReadingIn } from './types.js'

const reading = (seq: number, device = 'dev1'): ReadingIn => ({
  type: 'reading', topic: `sensors/${device}/telemetry`, device, boot: 1, seq, receivedAt: Date.now(), pot: seq, switch: 0, led: null,
  payload: Buffer.from(JSON.stringify({ seq, boot: 1, pot: seq, switch: 0 })),
})

/** Stands in for ingest's validation (the buffer does not import ingest): a JSON reading, or dead. */
const revalidate: Revalidate = (topic, payload, receivedAt) => {
  const device = /^sensors\/([^/]+)\/telemetry$/.exec(topic)?.[1]
  const v = JSON.parse(payload.toString('utf8')) as { seq: number; boot: number; pot: number; ts?: number }
  if (!device || !(v.pot >= 0 && v.pot <= 4095)) return { type: 'dead', topic, device: device ?? null, reason: '"pot" must be an integer 0..4095', payload, receivedAt }
  return { type: 'reading', topic, device, boot: v.boot, seq: v.seq, ...(v.ts === undefined ? {} : { tsMs: v.ts }), receivedAt, pot: v.pot, switch: 0, led: null, payload }
}

/** A buffer in a real file, with sinks `a` and `b`: `a` takes readings 1..5 but refuses 3, `b` has taken nothing yet. */
function refusedByA(tt: { teardown(fn: () => unknown): void }, limits: Partial<BufferLimits> = {}) {
  const { db } = openBuffer(join(tempDir(tt), 'buffer.db'))
  tt.teardown(() => db.close())
  const buf = new RingBuffer(db, { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 60_000, maxEvents: 100, ...limits })
  buf.ensureSink('a')
  buf.ensureSink('b')
  buf.ingest([1, 2, 3, 4, 5].map((s) => reading(s)))
  const batch = buf.read('a', 100)
  buf.settle('a', batch, { accepted: batch.filter((r) => r.seq !== 3).map((r) => r.id), rejected: [{ id: batch[2]!.id, reason: 'field type conflict' }] })
  const [dl] = listDeadLetters(db)
  return { db, buf, dl: dl! }
}

const ids = (db: RingBuffer['db']) => (db.prepare('SELECT id FROM readings ORDER BY id').all() as Array<{ id: number }>).map((r) => r.id)
const rowsAfter = (db: RingBuffer['db'], cursor: number) => (db.prepare('SELECT count(*) AS n FROM readings WHERE id > ?').get(cursor) as { n: number }).n

t.test('listDeadLetters: newest first, by source, requeued ones only on request, limited', async (t) => {
  const { db, buf, dl } = refusedByA(t)
  buf.ingest([
    { type: 'dead', topic: 'sensors/dev1/telemetry', device: 'dev1', reason: 'not JSON', payload: Buffer.from('{'), receivedAt: 1000 },
    { type: 'dead', topic: 'sensors/dev2/bogus', device: 'dev2', reason: 'unknown topic', payload: Buffer.from('x'), receivedAt: 2000 },
  ])
  t.match(dl, { id: 1, source: 'sink:a', topic: 'sensors/dev1/telemetry', device: 'dev1', readingId: 3, reason: 'field type conflict', requeuedAt: null })
  t.same(JSON.parse(dl.payload), { seq: 3, boot: 1, pot: 3, switch: 0 }, 'the raw payload, as text')
  t.same(listDeadLetters(db).map((d) => d.id), [3, 2, 1])
  t.same(listDeadLetters(db, { source: 'ingest' }).map((d) => d.reason), ['unknown topic', 'not JSON'])
  t.same(listDeadLetters(db, { limit: 1 }).map((d) => d.id), [3])
  requeueDeadLetters(buf, [1], revalidate)
  t.same(listDeadLetters(db).map((d) => d.id), [3, 2], 'a requeued one is no longer listed')
  t.ok(listDeadLetters(db, { includeRequeued: true }).find((d) => d.id === 1)?.requeuedAt, 'unless asked for, with its time')
})

t.test('requeue of a reading a sink refused while the buffer still holds it: appended, ids contiguous, backlog exact', async (t) => {
  const { db, buf, dl } = refusedByA(t)
  t.same(requeueDeadLetters(buf, [dl.id], revalidate), [{ id: dl.id, requeued: true }])
  const held = ids(db)
  t.same(held, [1, 2, 3, 4, 5, 6], 'a new row at the end; the held copy keeps its id (no hole)')
  for (const sink of ['a', 'b']) {
    t.equal(buf.backlogEstimate(sink), rowsAfter(db, buf.cursor(sink)), `backlogEstimate(${sink}) is the exact count`)
  }
  t.same(queryStatus(db).sinks.map((s) => [s.name, s.rows]), [['a', 1], ['b', 6]], "ferry status agrees with the gateway's estimate")
  t.same(buf.size().rows, held.length, 'the in-memory row count stays exact')
  t.same(buf.read('a', 100).map((r) => [r.id, r.seq]), [[6, 3]], 'the sink that refused it gets it again')
  t.same(buf.read('b', 100).map((r) => r.seq), [1, 2, 4, 5, 3], 'a sink behind gets it once, in its new place')
  t.match(buf.read('b', 100)[4], { device: 'dev1', boot: 1, seq: 3, pot: 3 })
  t.match(buf.ingest([reading(3)]), { stored: 0, duplicates: 1, dead: 0, events: 0, dropped: 0, duplicateReadings: [{ seq: 3 }] }, 'a broker redelivery is still recognised')
  t.same(requeueDeadLetters(buf, [dl.id], revalidate), [{ id: dl.id, requeued: false, reason: 'not found or already requeued' }], 'requeued once only')
})

t.test('requeue of an ingest dead letter appends it behind everything every sink holds', async (t) => {
  const { db, buf } = refusedByA(t)
  buf.ingest([{ type: 'dead', topic: 'sensors/dev2/telemetry', device: 'dev2', reason: 'payload too large', payload: Buffer.from('{"seq":9,"boot":2,"pot":99}'), receivedAt: 1 }])
  const [dl] = listDeadLetters(db, { source: 'ingest' })
  t.same(requeueDeadLetters(buf, [dl!.id], revalidate), [{ id: dl!.id, requeued: true }])
  t.same(ids(db), [1, 2, 3, 4, 5, 6])
  t.same(buf.read('a', 100).map((r) => [r.device, r.seq]), [['dev2', 9]])
  t.same(buf.read('b', 100).map((r) => r.seq), [1, 2, 3, 4, 5, 9])
  t.equal(queryStatus(db).deadLetters.total, 1, 'only the sink one is left')
})

t.test('requeue leaves a dead letter that still fails validation, or is unknown, as it is', async (t) => {
  const { db, buf } = refusedByA(t)
  buf.ingest([{ type: 'dead', topic: 'sensors/dev1/telemetry', device: 'dev1', reason: 'pot', payload: Buffer.from('{"seq":7,"boot":1,"pot":5000}'), receivedAt: 1 }])
  t.same(requeueDeadLetters(buf, [2, 42], revalidate), [
    { id: 2, requeued: false, reason: 'still invalid: "pot" must be an integer 0..4095' },
    { id: 42, requeued: false, reason: 'not found or already requeued' },
  ])
  t.same(ids(db), [1, 2, 3, 4, 5], 'nothing stored')
  t.equal(listDeadLetters(db).length, 2, 'both still listed')
})

t.test('the ring bound removes a retired copy without counting it as a drop', async (t) => {
  const { db, buf, dl } = refusedByA(t, { maxRows: 6 })
  requeueDeadLetters(buf, [dl.id], revalidate)
  // ids 1..6 with 3 retired; three more readings push out ids 1..3, all undelivered to sink b.
  const out = buf.ingest([6, 7, 8].map((s) => reading(s)))
  t.equal(out.dropped, 2, 'readings 1 and 2 were dropped; the retired copy of 3 lives on as id 6')
  t.same(queryStatus(db).dropped, { total: 2, byDevice: { dev1: 2 } })
  t.same(ids(db), [4, 5, 6, 7, 8, 9])
  t.same(buf.read('b', 100).map((r) => r.seq), [4, 5, 3, 6, 7, 8])
})

/** Point time (µs) of each live reading of dev1, by seq. */
const pointTimes = (db: RingBuffer['db']) =>
  Object.fromEntries((db.prepare("SELECT seq, ts_us AS tsUs FROM readings WHERE device = 'dev1' AND seq >= 0").all() as Array<{ seq: number; tsUs: number }>).map((r) => [r.seq, r.tsUs]))

t.test('a requeued reading keeps the point time a sink refused, also once pruned; the device clock does not go back', async (t) => {
  let now = Date.UTC(2026, 4, 1)
  const { db } = openBuffer(join(tempDir(t), 'buffer.db'))
  t.teardown(() => db.close())
  const buf = new RingBuffer(db, { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 1000, maxEvents: 100 }, () => now)
  buf.configureSinks(['a'])
  buf.ingest([1, 2, 3].map((s) => ({ ...reading(s), receivedAt: now + s })))
  const before = pointTimes(db)
  const batch = buf.read('a', 100)
  buf.settle('a', batch, { accepted: [batch[0]!.id, batch[2]!.id], rejected: [{ id: batch[1]!.id, reason: 'field type conflict' }] })
  const [dl] = listDeadLetters(db)
  t.equal(dl!.tsUs, before[2], 'the dead letter keeps the point time of the refused reading')
  now += 60_000
  t.equal(buf.prune(), 3, 'the refused reading is gone from the buffer')
  buf.ingest([{ ...reading(4), receivedAt: now }])

  t.same(requeueDeadLetters(buf, [dl!.id], revalidate, () => now + 1), [{ id: dl!.id, requeued: true }])
  const after = pointTimes(db)
  t.equal(after[2], before[2], 'its original point time, not the time of the requeue')
  t.same(buf.read('a', 100).map((r) => [r.seq, r.tsUs]), [[4, after[4]], [2, before[2]]], 'the sink receives it behind what it holds, with that time')
  buf.ingest([{ ...reading(5), receivedAt: now + 2 }])
  t.ok(pointTimes(db)[5]! > after[4]!, 'later readings still get later point times')
  t.match(db.prepare("SELECT last_reading FROM devices WHERE device = 'dev1'").get(), { last_reading: /"seq":5/ })
})

t.test('a requeued dead letter from ingest gets the device ts, else the time it first arrived, made unique', async (t) => {
  const arrived = Date.UTC(2026, 4, 1, 12)
  const { db } = openBuffer(join(tempDir(t), 'buffer.db'))
  t.teardown(() => db.close())
  const buf = new RingBuffer(db, { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 60_000, maxEvents: 100 })
  buf.ensureSink('a')
  const dead = (seq: number, extra: string) =>
    ({ type: 'dead', topic: 'sensors/dev1/telemetry', device: 'dev1', reason: 'payload too large', payload: Buffer.from(`{"seq":${seq},"boot":1,"pot":1${extra}}`), receivedAt: arrived }) as const
  buf.ingest([dead(1, `,"ts":${arrived - 5000}`), dead(2, ''), dead(3, ',"ts":1000')])
  // A reading that arrived in the same millisecond holds that point time already.
  buf.ingest([{ ...reading(4), receivedAt: arrived }])
  t.equal(pointTimes(db)[4], arrived * 1000)
  t.same(listDeadLetters(db).map((d) => d.tsUs), [null, null, null], 'no point time yet: ingest never gave them one')

  const results = requeueDeadLetters(buf, [1, 2, 3], revalidate, () => arrived + 3_600_000)
  t.ok(results.every((r) => r.requeued))
  const p = pointTimes(db)
  t.equal(p[1], (arrived - 5000) * 1000, 'the device ts')
  t.equal(p[2], arrived * 1000 + 1, 'the original receive time, 1 µs on: point times stay unique per device')
  t.equal(p[3], arrived * 1000 + 2, 'an implausible device ts (before 2020) falls back to the receive time too')
  t.same(buf.read('a', 100).map((r) => [r.seq, r.tsUs]), [[4, p[4]], [1, p[1]], [2, p[2]], [3, p[3]]])
})

t.test('migration 4: dead letters of readings still held get their point time; a file not migrated yet still lists', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  const old = new Database(path)
  for (const m of migrations.slice(0, 3)) old.exec(m)
  old.pragma('user_version = 3')
  old.exec(`INSERT INTO readings (device, boot, seq, ts_us, received_at, pot, switch, led, payload) VALUES ('dev1', 1, 3, 1234567, 1, 3, 0, NULL, '{}');
    INSERT INTO sink_state (name, cursor) VALUES ('a', 1);
    INSERT INTO dead_letters (at, source, topic, device, reading_id, reason, payload) VALUES
      (2, 'sink:a', 'sensors/dev1/telemetry', 'dev1', 1, 'refused', '{}'),
      (3, 'sink:a', 'sensors/dev1/telemetry', 'dev1', 99, 'refused, since pruned', '{}'),
      (4, 'ingest', 'sensors/dev1/telemetry', 'dev1', NULL, 'not JSON', '{')`)
  old.close()
  const ro = openBuffer(path, { readonly: true }).db
  t.same(listDeadLetters(ro).map((d) => [d.id, d.tsUs]), [[3, null], [2, null], [1, null]], 'ferry dlq list on a file the gateway has not migrated')
  t.same([queryStatus(ro).sinks.map((s) => s.name), queryStatus(ro).retiredSinks], [['a'], []], 'ferry status too')
  ro.close()
  const { db } = openBuffer(path)
  t.same(listDeadLetters(db).map((d) => [d.id, d.tsUs]), [[3, null], [2, null], [1, 1234567]])
  db.close()
})
