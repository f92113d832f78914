import t from 'tap'
import type { IngestItem } from '../buffer/index.js'
import { committedKeys, confirmationsOf, encodeConfirmation, MAX_RANGES, toRanges } from './confirmations.js'

/** What a commit-time confirmer publishes for a committed group. */
const confirmationsFor = (items: Parameters<typeof committedKeys>[0]) => confirmationsOf(committedKeys(items))
import { handleTelemetry } from './handlers/telemetry.js'

const reading = (device: string, boot: number, seq: number): IngestItem =>
  handleTelemetry(`sensors/${device}/telemetry`, device, Buffer.from(JSON.stringify({ seq, boot, pot: 1, switch: 0 })), 0, 2048)

t.test('ranges are inclusive, merged, sorted, duplicates collapsed', async (t) => {
  t.same(toRanges([]), [])
  t.same(toRanges([5]), [[5, 5]])
  t.same(toRanges([3, 1, 2, 2, 7, 9, 8, 20]), [[1, 3], [7, 9], [20, 20]])
  t.same(toRanges([10, 2]), [[2, 2], [10, 10]], 'numeric, not lexicographic, order')
})

t.test('one message per device and boot, naming exactly the committed readings', async (t) => {
  const items: IngestItem[] = [
    reading('a', 7, 1),
    reading('a', 7, 2),
    reading('b', 3, 10),
    reading('a', 7, 4), // 3 was lost on the way: the range must not cover it
    reading('a', 8, 1), // device a rebooted within the group
    reading('a', 7, 2), // a redelivery of a stored reading is confirmed again
    { type: 'event', topic: 'sensors/a/status', device: 'a', kind: 'status', payload: Buffer.from('online'), receivedAt: 0 },
  ]
  t.same(confirmationsFor(items), [
    { device: 'a', boot: 7, seqs: [[1, 2], [4, 4]] },
    { device: 'b', boot: 3, seqs: [[10, 10]] },
    { device: 'a', boot: 8, seqs: [[1, 1]] },
  ])
})

t.test('dead-lettered telemetry is confirmed only when it names its boot and seq', async (t) => {
  const bad = (body: object): IngestItem => handleTelemetry('sensors/a/telemetry', 'a', Buffer.from(JSON.stringify(body)), 0, 2048)
  const items = [bad({ seq: 5, boot: 1, pot: 99999, switch: 0 }), bad({ seq: -1, boot: 1, pot: 1, switch: 0 }), bad({ boot: 1 })]
  t.ok(items.every((i) => i.type === 'dead'), 'all three are dead letters')
  t.same(confirmationsFor(items), [{ device: 'a', boot: 1, seqs: [[5, 5]] }], 'only the one with a valid boot and seq')
  const unknownDevice: IngestItem = { type: 'dead', topic: 'x', device: null, reason: 'r', payload: Buffer.alloc(0), receivedAt: 0, reading: { boot: 1, seq: 1 } }
  t.same(confirmationsFor([unknownDevice]), [], 'no device, nobody to tell')
})

t.test(`more than ${MAX_RANGES} ranges are split over several messages`, async (t) => {
  const items = Array.from({ length: MAX_RANGES + 3 }, (_, i) => reading('a', 1, i * 2))
  const out = confirmationsFor(items)
  t.equal(out.length, 2)
  t.equal(out[0]!.seqs.length, MAX_RANGES)
  t.same(out[1]!.seqs, [[64, 64], [66, 66], [68, 68]])
})

t.test('the payload is the documented JSON', async (t) => {
  t.equal(encodeConfirmation({ device: 'a', boot: 7, seqs: [[1, 100], [200, 204]] }), '{"boot":7,"seqs":[[1,100],[200,204]]}')
})
