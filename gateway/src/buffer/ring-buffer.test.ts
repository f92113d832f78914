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
