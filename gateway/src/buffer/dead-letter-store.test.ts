// The dead letters' own bound (dead-letter-store.ts) on a real SQLite buffer: the total cap (oldest
// first deleted, counted), the share per device (over it: counted, not stored), bounded payloads,
// rollbacks, requeues from another connection, and what status shows.
import t from 'tap'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { hasCode } from '../../../common/src/errors.js'
import { tempDir } from '../../../test/helpers/tmp.js'
import { bufferConfigSchema, bufferLimits, type BufferConfig } from './config.js'
import type { DeadLetterLimits, DiscardCount } from './dead-letter-store.js'
import { listDeadLetters, requeueDeadLetters, type Revalidate } from './dead-letters.js'
import { migrations } from './migrations.js'
import { openBuffer } from './open.js'
import { RingBuffer } from './ring-buffer.js'
import { queryStatus } from './status.js'
import type { BufferLimits, DeadIn, ReadingIn } from './types.js'

const dead = (device: string | null, bytes = 10, reason = 'not JSON'): DeadIn => ({
  type: 'dead', topic: `sensors/${device ?? 'BAD'}/telemetry`, device, reason, payload: Buffer.alloc(bytes, 0x61), receivedAt: 1000,
})
const reading = (device: string, seq: number): ReadingIn => ({
  type: 'reading', topic: `sensors/${device}/telemetry`, device, boot: 1, seq, receivedAt: 1000, pot: seq, switch: 0, led: null, payload: Buffer.from(`{"seq":${seq}}`),
})
/** Bytes one `dead(device, bytes)` counts: payload, reason and topic. */
const size = (device: string, bytes = 10) => bytes + 'not JSON'.length + `sensors/${device}/telemetry`.length

const DL: DeadLetterLimits = { maxRows: 100, maxBytes: 1e6, deviceMaxRows: 5, deviceMaxBytes: 1e6, maxPayloadBytes: 100 }

function bounded(tt: { teardown(fn: () => unknown): void }, dl: Partial<DeadLetterLimits> = {}, limits: Partial<BufferLimits> = {}) {
  const path = join(tempDir(tt), 'buffer.db')
  const { db } = openBuffer(path)
  tt.teardown(() => db.close())
  const clock = { now: 1_700_000_000_000 }
  const lim: BufferLimits = { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 60_000, maxEvents: 100, deadLetters: { ...DL, ...dl }, ...limits }
  const buf = new RingBuffer(db, lim, () => clock.now)
  const heard: DiscardCount[][] = []
  buf.onDeadLettersDiscarded((d) => heard.push([...d]))
  /** What the table holds, counted by SQL, against what the buffer keeps in memory. */
  const exact = () => db.prepare('SELECT count(*) AS rows, coalesce(sum(length(payload) + length(CAST(reason AS BLOB)) + coalesce(length(CAST(topic AS BLOB)), 0)), 0) AS bytes FROM dead_letters').get() as { rows: number; bytes: number }
  const devices = () => (db.prepare("SELECT coalesce(device, '-') AS d FROM dead_letters ORDER BY id").all() as Array<{ d: string }>).map((r) => r.d)
  return { path, db, buf, lim, clock, heard, exact, devices }
}

t.test('a device over its share: the rest is counted per device, not stored; other devices are stored', async (t) => {
  const { db, buf, heard, exact, devices } = bounded(t)
  const batch = Array.from({ length: 8 }, () => dead('flood'))
  batch.splice(2, 0, dead('dev2'))
  batch.splice(6, 0, dead('dev2'), dead(null))
  const out = buf.ingest(batch)
  t.equal(out.dead, 11, 'every dead item is dead-lettered (stored or counted)')
  t.same(devices(), ['flood', 'flood', 'dev2', 'flood', 'flood', 'flood', 'dev2', '-'], 'the first 5 of flood, every one of the others')
  t.same(heard, [[{ device: 'flood', reason: 'over-share', count: 3 }]], 'reported once, after the commit')
  const s = queryStatus(db, Date.now(), buf)
  t.same(s.deadLetters.discarded, { total: 3, byDevice: { flood: 3 }, byReason: { 'over-share': 3 } })
  t.same(s.deadLetters.held, exact(), 'the bytes kept in memory are those of the table')
  t.same(s.deadLetters.held, { rows: 8, bytes: 5 * size('flood') + 2 * size('dev2') + size('BAD') })
  t.same(queryStatus(db).deadLetters.held, s.deadLetters.held, 'ferry status (no live counts) agrees')

  buf.ingest([dead('flood'), dead('flood'), dead('dev2')])
  t.same(queryStatus(db).deadLetters.discarded.byDevice, { flood: 5 }, 'counts add up')
  t.equal(devices().filter((d) => d === 'dev2').length, 3)

  // A restart reads the counts from the file: flood is still full.
  const again = new RingBuffer(db, buf.limits)
  again.ingest([dead('flood')])
  t.same(queryStatus(db).deadLetters.discarded, { total: 6, byDevice: { flood: 6 }, byReason: { 'over-share': 6 } }, 'the share holds across a restart')
})

t.test("a device's share in bytes holds too", async (t) => {
  const { buf, devices, exact } = bounded(t, { deviceMaxRows: 1000, deviceMaxBytes: 3 * size('dev1', 50) + 10 })
  buf.ingest(Array.from({ length: 6 }, () => dead('dev1', 50)))
  t.same(devices(), ['dev1', 'dev1', 'dev1'])
  t.ok(exact().bytes <= 3 * size('dev1', 50) + 10)
})

t.test('past the total cap the oldest dead letters are deleted and counted per device as evicted', async (t) => {
  const { db, buf, heard, exact, devices } = bounded(t, { maxRows: 10, deviceMaxRows: 10 })
  buf.ingest([1, 2, 3, 4].map(() => dead('dev1')))
  buf.ingest([1, 2, 3, 4].map(() => dead('dev2')))
  t.same(heard, [], 'nothing discarded yet')
  buf.ingest([1, 2, 3, 4].map(() => dead('dev3')))
  t.same(devices(), ['dev1', 'dev1', 'dev2', 'dev2', 'dev2', 'dev2', 'dev3', 'dev3', 'dev3', 'dev3'], 'the two oldest went')
  t.same((db.prepare('SELECT min(id) AS lo, max(id) AS hi FROM dead_letters').get()), { lo: 3, hi: 12 }, 'a prefix of the ids')
  t.same(heard, [[{ device: 'dev1', reason: 'evicted', count: 2 }]])
  t.same(queryStatus(db).deadLetters.discarded, { total: 2, byDevice: { dev1: 2 }, byReason: { evicted: 2 } })
  t.same(buf.deadLetterSize(), exact())
  t.same(buf.deadLetterSize().rows, 10)
})

t.test('the total cap in bytes: never more than FERRY_DEADLETTER_MAX_BYTES held after a commit', async (t) => {
  const cap = 5 * size('dev1', 80)
  const { buf, exact } = bounded(t, { maxBytes: cap, deviceMaxBytes: cap })
  for (let i = 0; i < 4; i++) {
    buf.ingest(['dev1', 'dev2', 'dev3'].map((d) => dead(d, 80)))
    t.ok(exact().bytes <= cap, `commit ${i + 1}: ${exact().bytes} <= ${cap}`)
  }
  t.equal(exact().rows, 5)
  t.same(buf.deadLetterSize(), exact())
})

t.test('an oversized payload keeps only its first FERRY_INGEST_MAX_PAYLOAD_BYTES bytes and cannot be requeued; reason and topic are cut to 1 KiB', async (t) => {
  const { db, buf, exact } = bounded(t, { deviceMaxBytes: 1e6 })
  const huge = Buffer.from(`{"seq":1,"boot":1,"pot":1,"switch":0,"pad":"${'x'.repeat(65_000)}"}`)
  buf.ingest([{ ...dead('dev1'), reason: `payload is ${huge.length} bytes, more than FERRY_INGEST_MAX_PAYLOAD_BYTES=100`, payload: huge }])
  buf.ingest([{ ...dead('dev1'), reason: 'é'.repeat(5000), topic: `sensors/dev1/${'t'.repeat(3000)}` }])
  const [long, cut] = listDeadLetters(db)
  t.equal(Buffer.byteLength(cut!.payload), 100, 'the first 100 bytes')
  t.equal(cut!.payload, huge.subarray(0, 100).toString('utf8'))
  t.equal(cut!.truncatedFrom, huge.length, 'with the length received')
  t.equal(long!.truncatedFrom, null, 'a payload within the limit is kept whole')
  t.equal(Buffer.byteLength(long!.reason), 1024, 'a reason keeps at most 1024 bytes ...')
  t.ok('é'.repeat(5000).startsWith(long!.reason), '... of whole characters')
  t.ok(Buffer.byteLength(long!.topic!) <= 1024, 'so does a topic')
  t.ok(exact().bytes < 100 + 4 * 1024 + 200, `both rows are small (${exact().bytes} bytes)`)
  t.same(buf.deadLetterSize(), exact())
  const revalidate: Revalidate = () => {
    throw new Error('a dead letter cut short is never revalidated')
  }
  t.same(requeueDeadLetters(buf, [cut!.id], revalidate), [{ id: cut!.id, requeued: false, reason: `only the first 100 of its ${huge.length} bytes were kept` }])
})

t.test('without limits (ferry dlq, older callers) nothing is cut or refused', async (t) => {
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, { maxRows: 10, maxBytes: 1e9, dedupWindowMs: 0, maxEvents: 100 })
  buf.ingest(Array.from({ length: 30 }, () => dead('dev1', 5000)))
  t.equal(listDeadLetters(db).length, 30)
  t.equal(listDeadLetters(db)[0]!.payload.length, 5000)
  t.same(queryStatus(db).deadLetters.limits, null)
  db.close()
})

t.test('a refused group commit (backpressure) leaves neither dead letters nor counts behind', async (t) => {
  const { db, buf, heard, exact } = bounded(t, { deviceMaxRows: 2 }, { maxRows: 1, onFull: 'backpressure' })
  buf.ensureSink('a')
  buf.ingest([reading('dev1', 1)])
  let refused = false
  try {
    buf.ingest([dead('flood'), dead('flood'), dead('flood'), reading('dev1', 2)])
  } catch (err) {
    refused = hasCode(err, 'FERRY_ERR_BUFFER_BACKPRESSURE')
  }
  t.ok(refused, 'refused whole')
  t.same(exact(), { rows: 0, bytes: 0 })
  t.same(buf.deadLetterSize(), exact(), 'the counts in memory were put back')
  t.same(queryStatus(db).deadLetters.discarded.total, 0, 'no discard counted')
  t.same(heard, [], 'none reported')
  buf.ingest([dead('flood'), dead('flood'), dead('flood')])
  t.equal(exact().rows, 2, "flood's share is whole again: 2 stored")
  t.same(heard, [[{ device: 'flood', reason: 'over-share', count: 1 }]])
})

t.test("a requeue in another process frees the device's share for the gateway within a second; requeued rows count only against the total", async (t) => {
  const { path, db, buf, clock, heard, exact, devices } = bounded(t, { maxRows: 3, deviceMaxRows: 2 })
  buf.ingest([1, 2, 3].map((seq) => ({ ...dead('flood'), reason: 'pot', payload: Buffer.from(`{"seq":${seq},"boot":1,"pot":1}`) })))
  t.same(devices(), ['flood', 'flood'])
  // `ferry dlq requeue` on its own connection and RingBuffer (no limits), as the CLI does.
  const cli = new Database(path)
  const other = new RingBuffer(cli, { maxRows: 1e9, maxBytes: 1e9, dedupWindowMs: 0, maxEvents: 100 })
  const revalidate: Revalidate = (topic, payload, receivedAt) => {
    const v = JSON.parse(payload.toString()) as { seq: number }
    return { ...reading('flood', v.seq), topic, payload, receivedAt }
  }
  t.same(requeueDeadLetters(other, [1, 2], revalidate).map((r) => r.requeued), [true, true])
  cli.close()
  clock.now += 1000
  buf.ingest([{ ...dead('flood'), reason: 'pot', payload: Buffer.from('{"seq":4}') }])
  t.same(devices(), ['flood', 'flood', 'flood'], 'stored: the share counts dead letters not requeued')
  t.same(buf.deadLetterSize(), exact(), 'requeued rows still count against the total')
  buf.ingest([dead('dev2'), dead('dev2')])
  t.same(devices(), ['flood', 'dev2', 'dev2'], 'the two oldest (requeued) rows went for the total cap')
  t.same(queryStatus(db).deadLetters.discarded.byReason, { 'over-share': 1 }, 'a requeued row deleted is not counted as evicted')
  t.same(heard.flat(), [{ device: 'flood', reason: 'over-share', count: 1 }])
})

t.test('readings a sink refused are dead letters under the same bound; the cursor moves on either way', async (t) => {
  const { db, buf, heard } = bounded(t, { deviceMaxRows: 2 })
  buf.ensureSink('a')
  buf.ingest([1, 2, 3, 4].map((s) => reading('dev1', s)))
  const batch = buf.read('a', 10)
  const r = buf.settle('a', batch, { accepted: [], rejected: batch.map((b) => ({ id: b.id, reason: 'field type conflict' })) })
  t.same(r, { advanced: 4, accepted: 0, rejected: 4 }, 'the sink refused all four')
  t.equal(buf.cursor('a'), batch[3]!.id)
  t.same(listDeadLetters(db).map((d) => d.readingId), [2, 1], 'the first two are kept, with their reading ids')
  t.same(heard, [[{ device: 'dev1', reason: 'over-share', count: 2 }]])
})

t.test('ferry status on a file the gateway has not migrated yet (no dead_letter_discards table)', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  const old = new Database(path)
  for (const m of migrations.slice(0, 5)) old.exec(m)
  old.pragma('user_version = 5')
  old.exec("INSERT INTO dead_letters (at, source, topic, device, reading_id, reason, payload) VALUES (1, 'ingest', 'sensors/dev1/telemetry', 'dev1', NULL, 'not JSON', '{')")
  old.close()
  const ro = openBuffer(path, { readonly: true }).db
  t.match(queryStatus(ro).deadLetters, { total: 1, held: { rows: 1, bytes: 1 + 8 + 22 }, limits: null, discarded: { total: 0, byDevice: {}, byReason: {} } })
  t.same(listDeadLetters(ro)[0]!.truncatedFrom, null)
  ro.close()
  const { db } = openBuffer(path)
  t.same(db.prepare('SELECT * FROM dead_letter_discards').all(), [], 'migration 6 adds the counters')
  db.close()
})

/** The buffer settings with their defaults, as the schema gives them. */
function settings(over: Partial<BufferConfig> = {}): BufferConfig & { FERRY_INGEST_BATCH_MAX: number; FERRY_INGEST_MAX_PAYLOAD_BYTES: number } {
  const defaults = Object.fromEntries(Object.entries(bufferConfigSchema.properties).map(([k, v]) => [k, (v as { default?: unknown }).default])) as unknown as BufferConfig
  return { ...defaults, FERRY_INGEST_BATCH_MAX: 1024, FERRY_INGEST_MAX_PAYLOAD_BYTES: 2048, ...over }
}

t.test('the settings: a share of each cap per device, and a share that could not hold one dead letter is refused', async (t) => {
  t.same(bufferLimits(settings()).deadLetters, { maxRows: 10_000, maxBytes: 8_388_608, deviceMaxRows: 1000, deviceMaxBytes: 838_860, maxPayloadBytes: 2048 }, 'the defaults')
  t.match(bufferLimits(settings({ FERRY_DEADLETTER_MAX_ROWS: 5, FERRY_DEADLETTER_DEVICE_SHARE: 10 })).deadLetters, { deviceMaxRows: 1 }, 'at least one row')
  let err: unknown
  try {
    bufferLimits(settings({ FERRY_DEADLETTER_MAX_BYTES: 40_000, FERRY_DEADLETTER_DEVICE_SHARE: 10 }))
  } catch (e) {
    err = e
  }
  t.ok(hasCode(err, 'FERRY_ERR_CONFIG'), 'FERRY_ERR_CONFIG')
  t.match((err as Error).message, /FERRY_DEADLETTER_MAX_BYTES \(40000\) x FERRY_DEADLETTER_DEVICE_SHARE \(10%\) = 4000 bytes, must hold one dead letter of FERRY_INGEST_MAX_PAYLOAD_BYTES \+ 2048 \(4096\)/)
})
