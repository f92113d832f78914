// When readings are confirmed to devices: at commit, or once every sink has them (confirmer.ts).
// Real RingBuffer on an in-memory SQLite database; the publish function records what devices hear.
import t from 'tap'
import { openBuffer } from '../buffer/open.js'
import { RingBuffer } from '../buffer/ring-buffer.js'
import type { DeadIn, IngestItem, ReadingIn } from '../buffer/types.js'
import type { Confirmation } from './confirmations.js'
import { confirmMode, createConfirmer } from './confirmer.js'

const reading = (seq: number, device = 'dev1'): ReadingIn => ({
  type: 'reading', topic: `sensors/${device}/telemetry`, device, boot: 1, seq, receivedAt: 1_000_000 + seq, pot: seq, switch: 0, led: null, payload: Buffer.from(`{"seq":${seq}}`),
})
const dead = (seq: number): DeadIn => ({ type: 'dead', topic: 'sensors/dev1/telemetry', device: 'dev1', reason: 'pot out of range', payload: Buffer.from('{}'), receivedAt: 1, reading: { boot: 1, seq } })

function setup(mode: 'commit' | 'delivery', sinks = ['a', 'b']) {
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 3_600_000, maxEvents: 100 })
  for (const s of sinks) buf.ensureSink(s)
  const heard: Confirmation[] = []
  const confirmer = createConfirmer(mode, buf, (c) => heard.push(c))
  const commit = (items: IngestItem[]) => confirmer.committed(items, buf.ingest(items))
  const deliver = (sink: string, n: number) => {
    const rows = buf.read(sink, n)
    buf.settle(sink, rows, { accepted: rows.map((r) => r.id), rejected: [] })
    confirmer.settled()
  }
  const seqs = () => heard.flatMap((c) => c.seqs)
  return { buf, heard, commit, deliver, seqs }
}

t.test('confirmMode: auto is delivery in a share group, commit otherwise; FERRY_INGEST_CONFIRM=false is never', async (t) => {
  t.equal(confirmMode({ FERRY_INGEST_CONFIRM: true, FERRY_INGEST_CONFIRM_AFTER: 'auto' }), 'commit')
  t.equal(confirmMode({ FERRY_INGEST_CONFIRM: true, FERRY_INGEST_CONFIRM_AFTER: 'auto', FERRY_MQTT_SHARE_GROUP: 'site' }), 'delivery')
  t.equal(confirmMode({ FERRY_INGEST_CONFIRM: true, FERRY_INGEST_CONFIRM_AFTER: 'commit', FERRY_MQTT_SHARE_GROUP: 'site' }), 'commit')
  t.equal(confirmMode({ FERRY_INGEST_CONFIRM: true, FERRY_INGEST_CONFIRM_AFTER: 'delivery' }), 'delivery')
  t.equal(confirmMode({ FERRY_INGEST_CONFIRM: false, FERRY_INGEST_CONFIRM_AFTER: 'delivery' }), null)
})

t.test('commit: everything a group held is confirmed at once', async (t) => {
  const { commit, seqs } = setup('commit')
  commit([reading(1), reading(2), dead(3)])
  t.same(seqs(), [[1, 3]])
})

t.test('delivery: nothing at commit; confirmed only when the slowest sink has taken it', async (t) => {
  const { commit, deliver, seqs } = setup('delivery')
  commit([1, 2, 3, 4, 5].map((s) => reading(s)))
  t.same(seqs(), [], 'committed is not enough')
  deliver('a', 5)
  t.same(seqs(), [], 'one of two sinks is not enough')
  deliver('b', 3)
  t.same(seqs(), [[1, 3]], 'what both sinks have')
  deliver('b', 10)
  t.same(seqs(), [[1, 3], [4, 5]], 'each reading confirmed once as the cursor moves')
})

t.test('delivery: dead-lettered telemetry is confirmed at commit (no sink will take it)', async (t) => {
  const { commit, seqs } = setup('delivery')
  commit([reading(1), dead(2)])
  t.same(seqs(), [[2, 2]])
})

t.test('delivery: a resend of a delivered reading is confirmed again at once; of an undelivered one, at its delivery', async (t) => {
  const { commit, deliver, seqs, heard } = setup('delivery', ['a'])
  commit([reading(1), reading(2)])
  deliver('a', 1)
  t.same(seqs(), [[1, 1]])
  heard.length = 0
  commit([reading(1), reading(2)]) // both resent: 1's confirmation was lost, 2 is not delivered yet
  t.same(seqs(), [[1, 1]], 'the delivered one again, now')
  deliver('a', 10)
  t.same(seqs(), [[1, 1], [2, 2]], 'the other once delivered')
})

t.test('delivery: readings delivered before a restart are not confirmed again unasked; resends are', async (t) => {
  const { buf, commit, deliver } = setup('delivery', ['a'])
  commit([reading(1), reading(2)])
  deliver('a', 10)
  const heard: Confirmation[] = []
  const restarted = createConfirmer('delivery', buf, (c) => heard.push(c))
  restarted.settled()
  t.same(heard, [], 'starts from the cursor: no flood of old confirmations')
  restarted.committed([reading(2)], buf.ingest([reading(2)]))
  t.same(heard.flatMap((c) => c.seqs), [[2, 2]])
})

t.test('delivery with no sink configured confirms nothing (nothing is ever delivered)', async (t) => {
  const { commit, seqs } = setup('delivery', [])
  commit([reading(1)])
  t.same(seqs(), [])
})
