import t from 'tap'
import { DeviceOutbox } from './ring.js'

const order = (a: number, b: number) => a - b

t.test('drops the oldest queued entry when full and counts it', async (t) => {
  const outbox = new DeviceOutbox<number>(3)
  t.same([1, 2, 3].flatMap((n) => outbox.push(n)), [])
  t.same(outbox.push(4), [1])
  t.same(outbox.push(5), [2])
  t.same(outbox.queuedItems(), [3, 4, 5])
  t.equal(outbox.dropped, 2)
  t.equal(outbox.pending, 3)
})

t.test('an entry leaves only when acknowledged, and in-flight entries are never dropped', async (t) => {
  const outbox = new DeviceOutbox<number>(2)
  outbox.push(1)
  outbox.push(2)
  t.equal(outbox.take(), 1)
  t.equal(outbox.inflight, 1)
  t.equal(outbox.pending, 2)
  t.same(outbox.push(3), [], 'room: 1 is in flight, not queued')
  t.same(outbox.push(4), [2], 'the oldest queued goes, not the in-flight one')
  t.ok(outbox.ack(1))
  t.notOk(outbox.ack(1), 'a second ack for the same entry is ignored')
  t.equal(outbox.pending, 2)
  t.same(outbox.queuedItems(), [3, 4])
})

t.test('a publish that failed for good goes back to the front, in order', async (t) => {
  const outbox = new DeviceOutbox<number>(10)
  for (const n of [1, 2, 3, 4]) outbox.push(n)
  outbox.take()
  outbox.take()
  t.ok(outbox.requeue(2, order))
  t.ok(outbox.requeue(1, order))
  t.same(outbox.queuedItems(), [1, 2, 3, 4])
  t.equal(outbox.inflight, 0)
})

t.test('refuses a capacity below one', async (t) => {
  t.throws(() => new DeviceOutbox(0), RangeError)
})
