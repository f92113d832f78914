// `ferry dlq` as a user runs it, on a buffer file a drainer left behind: list what a sink refused,
// requeue it (exit codes 0, 1 for a bad id, 2 for bad usage), and the next drain delivers it in order,
// with its original point time (the device's ts), also as the timestamp a real sink writes.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { silentLogger } from '../../common/src/logger.js'
import { openBuffer, RingBuffer } from '../../gateway/src/buffer/index.js'
import { Drainer } from '../../gateway/src/drain/drainer.js'
import { toIngestItem } from '../../gateway/src/ingest/handlers/index.js'
import { createFileSink } from '../../gateway/src/sinks/file/file.js'
import type { BufferedReading, Sink, WriteResult } from '../../gateway/src/sinks/types.js'
import { tempDir } from '../helpers/tmp.js'
import { waitUntil } from '../helpers/wait.js'

const ROOT = join(import.meta.dirname, '..', '..')
const ferry = (args: string[]) =>
  spawnSync(process.execPath, ['--import=tsx', join(ROOT, 'cli/main.ts'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME } })

const LIMITS = { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 600_000, maxEvents: 100 }
/** The device's clock: reading `seq` was taken at T0 + seq seconds. */
const T0 = Date.UTC(2026, 0, 1)
const payload = (seq: number) => `{"seq":${seq},"boot":1,"ts":${T0 + seq * 1000},"pot":${seq},"switch":0}`

/** Opens the buffer file, drains it to `sink`, closes it; returns the sink's cursor. */
async function drainTo(path: string, sink: Sink, prepare?: (buf: RingBuffer) => void): Promise<number> {
  const { db } = openBuffer(path)
  const buf = new RingBuffer(db, LIMITS)
  prepare?.(buf)
  const d = new Drainer({ sink, buffer: buf, log: silentLogger, retryMinMs: 5, retryMaxMs: 20, retryAfterCapMs: 50, progressEveryMs: 10 })
  d.start()
  try {
    await waitUntil(() => buf.backlogEstimate(sink.name) === 0, `the ${sink.name} sink is drained`, 10_000)
  } finally {
    await d.stop()
  }
  const cursor = buf.cursor(sink.name)
  db.close()
  return cursor
}

/** Drains to a sink named `lab` that answers with `answer`; returns what it received and the point time (µs) of each. */
async function drain(path: string, answer: (b: readonly BufferedReading[]) => WriteResult, prepare?: (buf: RingBuffer) => void) {
  const received: string[] = []
  const times: Record<string, number> = {}
  const sink: Sink = {
    name: 'lab',
    maxBatch: 100,
    async write(batch) {
      received.push(...batch.map((r) => `${r.device}/${r.seq}#${r.id}`))
      for (const r of batch) times[`${r.device}/${r.seq}`] = r.tsUs
      return answer(batch)
    },
    async close() {},
  }
  const cursor = await drainTo(path, sink, prepare)
  return { received, cursor, times }
}

t.test('ferry dlq list and requeue on a real buffer file; the requeued reading is drained, in order', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  // A gateway stored dev1's readings 1..5 and its drainer met a sink that refused reading 3.
  const first = await drain(
    path,
    (b) => ({ accepted: b.filter((r) => r.seq !== 3).map((r) => r.id), retryable: [], rejected: b.filter((r) => r.seq === 3).map((r) => ({ id: r.id, reason: 'field type conflict' })) }),
    (buf) => buf.ingest([1, 2, 3, 4, 5].map((s) => toIngestItem('sensors/dev1/telemetry', Buffer.from(payload(s)), Date.now(), 2048))),
  )
  t.same([first.received, first.cursor], [['dev1/1#1', 'dev1/2#2', 'dev1/3#3', 'dev1/4#4', 'dev1/5#5'], 5])
  t.equal(first.times['dev1/3'], (T0 + 3000) * 1000, "the refused reading had the device's ts as its point time")

  const list = ferry(['dlq', 'list', '--db', path])
  t.equal(list.status, 0, list.stderr)
  t.match(list.stdout, new RegExp(`^1\\t\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\tsink:lab\\tsensors/dev1/telemetry\\tfield type conflict\\t${payload(3).replace(/[{}]/g, '\\$&')}\\n$`))
  const listed = ferry(['dlq', 'list', '--db', path, '--json'])
  t.match(JSON.parse(listed.stdout), [{ id: 1, readingId: 3, tsUs: (T0 + 3000) * 1000 }], 'list --json shows the point time the requeue keeps')

  const usage = ferry(['dlq', 'requeue', 'one', '--db', path])
  t.equal(usage.status, 2, 'a non-numeric id is bad usage')
  t.match(usage.stderr, /requeue needs one or more numeric dead-letter ids/)
  const missing = ferry(['dlq', 'requeue', '7', '--db', path])
  t.equal(missing.status, 1, 'an id that is no dead letter is a failure')
  t.equal(missing.stderr, 'dead letter 7: not found or already requeued\n')
  t.equal(missing.stdout, 'requeued 0 of 1\n')

  const requeue = ferry(['dlq', 'requeue', '1', '--db', path])
  t.equal(requeue.status, 0, requeue.stderr)
  t.equal(requeue.stdout, 'requeued 1 of 1\n')
  t.equal(ferry(['dlq', 'list', '--db', path]).stdout, '', 'nothing left to list')
  const status = JSON.parse(ferry(['status', '--db', path, '--json']).stdout) as { sinks: Array<{ name: string; rows: number }>; deadLetters: { total: number } }
  t.match(status, { sinks: [{ name: 'lab', rows: 1 }], deadLetters: { total: 0 } }, 'ferry status: one reading waits for the sink')

  const second = await drain(path, (b) => ({ accepted: b.map((r) => r.id), retryable: [], rejected: [] }))
  t.same([second.received, second.cursor], [['dev1/3#6'], 6], 'the requeued reading is delivered next, as the newest row')
  t.equal(second.times['dev1/3'], (T0 + 3000) * 1000, 'with its original point time, not the time of the requeue')

  // A real sink writes that time: the file sink, new here, gets the buffer from its oldest row.
  const file = join(tempDir(t), 'telemetry.lp')
  await drainTo(path, createFileSink({ FERRY_FILE_PATH: file, FERRY_FILE_MAX_BYTES: 1_000_000, FERRY_FILE_KEEP: 0, FERRY_FILE_BATCH_SIZE: 100 }, { log: silentLogger }))
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n')
  t.same(lines.map((l) => /seq=(\d+)i/.exec(l)![1]), ['1', '2', '4', '5', '3'], 'the refused copy is skipped; the requeued one comes last')
  t.match(lines[4], new RegExp(` ${BigInt(T0 + 3000) * 1_000_000n}$`), "its line protocol timestamp is the device's ts, in ns")
})
