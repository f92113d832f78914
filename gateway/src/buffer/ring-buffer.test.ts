import t from 'tap'
import { openBuffer } from './open.js'
import { RingBuffer } from './ring-buffer.js'
import { queryStatus } from './status.js'
import type { ReadingIn } from './types.js'

const reading = (seq: number, receivedAt: number, device = 'dev1'): ReadingIn => ({
  type: 'reading', topic: `sensors/${device}/telemetry`, device, boot: 1, seq, receivedAt, pot: seq, switch: 0, led: null, payload: Buffer.from(`{"seq":${seq}}`),
})

t.test('prune deletes only what every sink passed and the dedupe window no longer needs; counts stay exact', async (t) => {
  let now = 1_000_000
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 1000, maxEvents: 100 }, () => now)
  buf.ensureSink('a')
  buf.ensureSink('b')
  buf.ingest(Array.from({ length: 10 }, (_, i) => reading(i + 1, now + i)))
  const all = buf.read('a', 100)
  buf.settle('a', all, { accepted: all.map((r) => r.id), rejected: [] })
  buf.settle('b', all.slice(0, 8), { accepted: all.slice(0, 8).map((r) => r.id), rejected: [] })
  now += 1005 // readings 1..5 (received at +0..+4) are older than the window
  t.equal(buf.prune(), 5)
  t.same(buf.size(), { rows: 5, bytes: queryStatus(db).buffered.bytes })
  now += 100 // all older than the window now, but sink b has passed only 8
  t.equal(buf.prune(), 3)
  t.equal(buf.size().rows, 2)
  t.same((db.prepare('SELECT seq FROM readings ORDER BY id').all() as Array<{ seq: number }>).map((r) => r.seq), [9, 10])
  t.equal(buf.prune(), 0, 'nothing more may go')
})

t.test('a redelivered reading is recognised while it is still in the buffer', async (t) => {
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 60_000, maxEvents: 100 })
  const first = buf.ingest([reading(1, Date.now()), reading(2, Date.now())])
  const again = buf.ingest([reading(2, Date.now()), reading(3, Date.now())])
  t.same([first.stored, first.duplicates, again.stored, again.duplicates], [2, 0, 1, 1])
})

t.test('the event history keeps at most FERRY_BUFFER_MAX_EVENTS, the newest, with no sink to prune it', async (t) => {
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 60_000, maxEvents: 100 })
  const status = (i: number) => ({ type: 'event', topic: 'sensors/dev1/status', device: 'dev1', kind: 'status', payload: Buffer.from(i % 2 ? 'online' : 'offline'), receivedAt: i }) as const
  for (let i = 0; i < 5; i++) buf.ingest(Array.from({ length: 60 }, (_, j) => status(i * 60 + j)))
  t.same(db.prepare('SELECT count(*) AS n, min(at) AS oldest FROM events').get(), { n: 100, oldest: 200 })
})

t.test('share group point times: device time agrees on every replica; the replica clock never collides across replicas', async (t) => {
  const { sharedPointTime, REPLICA_SLOTS } = await import('./ring-buffer.js')
  const at = Date.UTC(2026, 10, 30, 12)
  const r = { tsMs: at - 5, seq: 1234, receivedAt: at }
  t.equal(sharedPointTime(r, 0, 1), (at - 5) * 1000 + 234, 'device ms plus seq mod 1000 µs')
  t.equal(sharedPointTime(r, (at + 60_000) * 1000, 3), sharedPointTime(r, 0, 1), 'the same on another replica, whatever its clock says')
  t.not(sharedPointTime({ ...r, seq: 1235 }, 0, 1), sharedPointTime(r, 0, 1), 'two readings in one millisecond differ')
  // No device time (clock not set): receive time, in the replica's own residue class.
  const seen = new Map<number, number>()
  for (const replica of [1, 2, 3]) {
    let last = 0
    for (let i = 0; i < 50; i++) {
      const p = sharedPointTime({ tsMs: 0, seq: i, receivedAt: at }, last, replica)
      t.equal(p % REPLICA_SLOTS, replica)
      if (p <= last) t.fail('strictly increasing per device on one replica')
      if (seen.has(p)) t.fail(`replicas ${seen.get(p)} and ${replica} picked the same point time`)
      seen.set(p, replica)
      last = p
    }
  }
  t.equal(seen.size, 150)
})

t.test('a replica stores the device-time point time even after a later reading (resent readings land on the same point)', async (t) => {
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 1000, maxEvents: 100, replica: 2 })
  const at = Date.UTC(2026, 10, 30, 12)
  const withTs = (seq: number): ReadingIn => ({ ...reading(seq, at + seq), tsMs: at + seq })
  buf.ingest([withTs(5)])
  buf.ingest([withTs(4)]) // a resend that arrives after a later reading
  const times = db.prepare('SELECT seq, ts_us AS ts FROM readings ORDER BY seq').all() as Array<{ seq: number; ts: number }>
  t.same(times, [{ seq: 4, ts: (at + 4) * 1000 + 4 }, { seq: 5, ts: (at + 5) * 1000 + 5 }], 'not moved after the later reading, as a single gateway would')
})
