// What a full buffer does (FERRY_BUFFER_ON_FULL) and what an age limit does (FERRY_BUFFER_MAX_AGE),
// on a real SQLite buffer with a fake clock.
import t from 'tap'
import { hasCode } from '../../../common/src/errors.js'
import { openBuffer } from './open.js'
import { RingBuffer } from './ring-buffer.js'
import { queryStatus } from './status.js'
import type { BufferLimits, EventIn, ReadingIn } from './types.js'

const reading = (device: string, seq: number, receivedAt: number, tsMs?: number): ReadingIn => ({
  type: 'reading', topic: `sensors/${device}/telemetry`, device, boot: 1, seq, receivedAt, pot: seq, switch: 0, led: null, payload: Buffer.from(`{"seq":${seq}}`), ...(tsMs === undefined ? {} : { tsMs }),
})
const event = (device: string, at: number): EventIn => ({ type: 'event', topic: `sensors/${device}/status`, device, kind: 'status', payload: Buffer.from('online'), receivedAt: at })

function ring(limits: Partial<BufferLimits>, clock: { now: number }) {
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, { maxRows: 10, maxBytes: 1e9, dedupWindowMs: 60_000, maxEvents: 100, ...limits }, () => clock.now)
  buf.ensureSink('a')
  const seqs = () => (db.prepare('SELECT seq FROM readings ORDER BY id').all() as Array<{ seq: number }>).map((r) => r.seq)
  const exact = () => db.prepare('SELECT count(*) AS rows, coalesce(sum(length(payload)), 0) AS bytes FROM readings').get() as { rows: number; bytes: number }
  const deliver = (n: number) => {
    const batch = buf.read('a', n)
    buf.settle('a', batch, { accepted: batch.map((r) => r.id), rejected: [] })
  }
  return { db, buf, seqs, exact, deliver }
}

const refused = (fn: () => unknown) => {
  try {
    fn()
  } catch (err) {
    return hasCode(err, 'FERRY_ERR_BUFFER_BACKPRESSURE')
  }
  return false
}

t.test('backpressure refuses a group that does not fit and keeps every undelivered reading', async (t) => {
  const clock = { now: 1_700_000_000_000 }
  const { db, buf, seqs, exact, deliver } = ring({ onFull: 'backpressure' }, clock)
  buf.ingest(Array.from({ length: 10 }, (_, i) => reading('dev1', i + 1, clock.now)))
  t.same(seqs(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  t.notOk(buf.hasRoomFor(1), 'full: no room for one more')

  const eventsBefore = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n
  t.ok(refused(() => buf.ingest([event('dev1', clock.now), reading('dev1', 11, clock.now)])), 'the group is refused with FERRY_ERR_BUFFER_BACKPRESSURE')
  t.same(seqs(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'every undelivered reading is still there')
  t.equal((db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n, eventsBefore, 'nothing of the refused group was stored, events included')
  t.same(buf.size(), exact(), 'the counts kept in memory are those of the database')
  t.same(queryStatus(db).dropped, { total: 0, byDevice: {} }, 'no drops')

  // Delivered readings make room, as many as needed and no more.
  deliver(4)
  t.ok(buf.hasRoomFor(4))
  t.notOk(buf.hasRoomFor(5))
  const out = buf.ingest([reading('dev1', 11, clock.now), reading('dev1', 12, clock.now), reading('dev1', 13, clock.now)])
  t.same([out.stored, out.dropped], [3, 0])
  t.same(seqs(), [4, 5, 6, 7, 8, 9, 10, 11, 12, 13], 'three delivered readings made room')
  t.ok(refused(() => buf.ingest([reading('dev1', 14, clock.now), reading('dev1', 15, clock.now)])), 'two more need an undelivered reading: refused whole')
  t.same(seqs(), [4, 5, 6, 7, 8, 9, 10, 11, 12, 13])
  t.same(buf.size(), exact())
  t.equal(buf.backlogEstimate('a'), 9, 'the backlog is exact (ids stayed contiguous)')
  t.same(queryStatus(db).dropped.total, 0)
})

t.test('backpressure also holds the byte limit, and a refused group leaves no trace in the point-time clock', async (t) => {
  const clock = { now: 1_700_000_000_000 }
  // Each payload is 10 bytes ({"seq":NN} for NN >= 10): room for 5.
  const { buf, seqs, exact } = ring({ onFull: 'backpressure', maxRows: 1000, maxBytes: 50 }, clock)
  buf.ingest([10, 11, 12, 13, 14].map((seq) => reading('dev1', seq, clock.now)))
  t.ok(refused(() => buf.ingest([reading('dev1', 15, clock.now, clock.now + 5 * 60_000)])), 'a sixth payload is over the byte limit')
  t.same(buf.size(), exact())
  // Room again (delivered), and a reading stamped one second on: its point time is its own, not one
  // after the refused reading's five minutes ahead.
  const batch = buf.read('a', 1)
  buf.settle('a', batch, { accepted: [batch[0]!.id], rejected: [] })
  buf.ingest([reading('dev1', 16, clock.now, clock.now + 1000)])
  t.same(seqs(), [11, 12, 13, 14, 16])
  const ts = buf.read('a', 10).at(-1)!.tsUs
  t.equal(ts, (clock.now + 1000) * 1000)
})

t.test('drop-oldest (the default) still drops and counts, as before', async (t) => {
  const clock = { now: 1_700_000_000_000 }
  const { db, buf, seqs } = ring({}, clock)
  buf.ingest(Array.from({ length: 12 }, (_, i) => reading('dev1', i + 1, clock.now)))
  t.same(seqs(), [3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
  t.same(queryStatus(db).dropped, { total: 2, byDevice: { dev1: 2 } })
})

t.test('the age limit expires undelivered readings by receive time, per device, apart from drops', async (t) => {
  const t0 = 1_700_000_000_000
  const clock = { now: t0 }
  const { db, buf, seqs, exact, deliver } = ring({ maxRows: 1000, maxAgeMs: 1000 }, clock)
  buf.ingest([reading('dev1', 1, t0), reading('dev1', 2, t0), reading('dev1', 3, t0)])
  buf.ingest([reading('dev2', 1, t0 + 100), reading('dev2', 2, t0 + 100)])
  buf.ingest([reading('dev1', 4, t0 + 2000)])
  deliver(2) // dev1 seq 1 and 2 are delivered: old, but not expired
  t.same(buf.expire(), { total: 0, byDevice: {} }, 'nothing is older than the limit yet')

  clock.now = t0 + 1500 // the first five were received more than 1 s ago
  t.same(buf.expire(), { total: 3, byDevice: { dev1: 1, dev2: 2 } }, 'the undelivered old ones, per device')
  t.same(seqs(), [4], 'the young reading stays')
  t.same(buf.size(), exact())
  const s = queryStatus(db)
  t.same(s.expired, { total: 3, byDevice: { dev1: 1, dev2: 2 } })
  t.same(s.dropped, { total: 0, byDevice: {} }, 'expiry is not a drop')
  t.equal(buf.backlogEstimate('a'), 1, 'the sink behind the expired rows has one reading left to send')
  t.same(buf.read('a', 10).map((r) => [r.device, r.seq]), [['dev1', 4]])
  t.same(buf.expire(), { total: 0, byDevice: {} }, 'counted once')

  clock.now = t0 + 5000
  buf.ingest([reading('dev2', 3, clock.now)])
  t.same(buf.expire(), { total: 1, byDevice: { dev1: 1 } })
  t.same(queryStatus(db).expired, { total: 4, byDevice: { dev1: 2, dev2: 2 } }, 'counts add up')
})

t.test('the age limit leaves delivered readings to prune, and is off when unset', async (t) => {
  const t0 = 1_700_000_000_000
  const clock = { now: t0 }
  const aged = ring({ maxRows: 1000, maxAgeMs: 1000 }, clock)
  aged.buf.ingest([reading('dev1', 1, t0), reading('dev1', 2, t0)])
  aged.deliver(2)
  clock.now = t0 + 10_000
  t.same(aged.buf.expire(), { total: 0, byDevice: {} })
  t.same(aged.seqs(), [1, 2], 'delivered readings stay for the dedupe window')

  const off = ring({ maxRows: 1000 }, clock)
  off.buf.ingest([reading('dev1', 1, t0)])
  t.same(off.buf.expire(), { total: 0, byDevice: {} })
  t.same(off.seqs(), [1])
})
