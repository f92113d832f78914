import t from 'tap'
import { OfflineBuffer } from './ring.js'

const order = (a: number, b: number) => a - b

t.test('drops the oldest queued entry when full and counts it', async (t) => {
  const b = new OfflineBuffer<number>(3)
  t.same([1, 2, 3].flatMap((n) => b.push(n)), [])
  t.same(b.push(4), [1])
  t.same(b.push(5), [2])
  t.same(b.queuedItems(), [3, 4, 5])
  t.equal(b.dropped, 2)
  t.equal(b.pending, 3)
})

t.test('an entry leaves only when acknowledged, and in-flight entries are never dropped', async (t) => {
  const b = new OfflineBuffer<number>(2)
  b.push(1)
  b.push(2)
  t.equal(b.take(), 1)
  t.equal(b.inflight, 1)
  t.equal(b.pending, 2)
  t.same(b.push(3), [], 'room: 1 is in flight, not queued')
  t.same(b.push(4), [2], 'the oldest queued goes, not the in-flight one')
  t.ok(b.ack(1))
  t.notOk(b.ack(1), 'a second ack for the same entry is ignored')
  t.equal(b.pending, 2)
  t.same(b.queuedItems(), [3, 4])
})

t.test('a publish that failed for good goes back to the front, in order', async (t) => {
  const b = new OfflineBuffer<number>(10)
  for (const n of [1, 2, 3, 4]) b.push(n)
  b.take()
  b.take()
  t.ok(b.requeue(2, order))
  t.ok(b.requeue(1, order))
  t.same(b.queuedItems(), [1, 2, 3, 4])
  t.equal(b.inflight, 0)
})

t.test('refuses a capacity below one', async (t) => {
  t.throws(() => new OfflineBuffer(0), RangeError)
})
