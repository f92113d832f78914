import t from 'tap'
import { openBuffer, RingBuffer, queryStatus, type ReadingIn } from '../buffer/index.js'
import { Drainer, type DrainEvent } from './drainer.js'
import type { BufferedReading, Sink, WriteResult } from '../sinks/types.js'
import { Writable } from 'node:stream'
import { errors as undiciErrors } from 'undici'
import { createLogger, silentLogger } from '../../../common/src/logger.js'
import { FerryError } from '../../../common/src/errors.js'

function buffer() {
  const { db } = openBuffer(':memory:')
  return new RingBuffer(db, { maxRows: 1e6, maxBytes: 1e9, dedupWindowMs: 0, maxEvents: 1000 })
}

function readings(n: number, device = 'dev1', from = 1): ReadingIn[] {
  return Array.from({ length: n }, (_, i) => ({
    type: 'reading' as const,
    topic: `sensors/${device}/telemetry`,
    device,
    boot: 1,
    seq: from + i,
    receivedAt: Date.now() - 1000, // older than the (zero) dedupe window, so prune may delete it
    pot: i,
    switch: 0 as const,
    led: null,
    payload: Buffer.from(`{"seq":${from + i}}`),
  }))
}

/** A sink whose answers a test scripts; records every batch it was given. */
function scriptedSink(name: string, answer: (batch: readonly BufferedReading[], call: number) => WriteResult | Promise<WriteResult>, maxBatch = 100) {
  const calls: number[][] = []
  const sink: Sink & { calls: number[][]; closed: number } = {
    name,
    maxBatch,
    calls,
    closed: 0,
    async write(batch) {
      calls.push(batch.map((r) => r.id))
      return answer(batch, calls.length)
    },
    async close() {
      sink.closed++
    },
  }
  return sink
}

const acceptAll = (b: readonly BufferedReading[]): WriteResult => ({ accepted: b.map((r) => r.id), retryable: [], rejected: [] })

function drainer(t: { teardown(fn: () => unknown): void }, sink: Sink, buf: RingBuffer, events: DrainEvent[] = []) {
  const d = new Drainer({ sink, buffer: buf, log: silentLogger, retryMinMs: 5, retryMaxMs: 20, retryAfterCapMs: 50, progressEveryMs: 10, onEvent: (e) => events.push(e) })
  t.teardown(() => d.stop())
  d.start()
  return d
}

async function until(cond: () => boolean, what: string) {
  const deadline = Date.now() + 10_000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

t.test('delivers everything oldest first in batches and moves the cursor to the end', async (t) => {
  const buf = buffer()
  buf.ingest(readings(250))
  const sink = scriptedSink('a', acceptAll)
  drainer(t, sink, buf)
  await until(() => buf.cursor('a') === 250, 'cursor at 250')
  t.same(sink.calls.flat(), Array.from({ length: 250 }, (_, i) => i + 1))
  t.same(sink.calls.map((c) => c.length), [100, 100, 50])
})

t.test('keeps the batch and retries when the sink answers retryable, without losing or duplicating', async (t) => {
  const buf = buffer()
  buf.ingest(readings(10))
  const sink = scriptedSink('a', (b, call) => (call <= 3 ? { accepted: [], retryable: b.map((r) => r.id), rejected: [], errorClass: 'http_503' } : acceptAll(b)))
  const events: DrainEvent[] = []
  drainer(t, sink, buf, events)
  await until(() => buf.cursor('a') === 10, 'delivered after retries')
  t.equal(sink.calls.length, 4)
  t.same(sink.calls[3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  t.equal(events.filter((e) => e.type === 'error').length, 3)
  t.equal(queryStatus(buf.db).sinks[0]!.sentTotal, 10)
})

t.test('retries when the sink throws (network error)', async (t) => {
  const buf = buffer()
  buf.ingest(readings(3))
  const sink = scriptedSink('a', (b, call) => {
    if (call < 3) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    return acceptAll(b)
  })
  drainer(t, sink, buf)
  await until(() => buf.cursor('a') === 3, 'delivered')
  t.equal(sink.calls.length, 3)
})

t.test('waits for Retry-After (capped) before the next attempt', async (t) => {
  const buf = buffer()
  buf.ingest(readings(1))
  const at: number[] = []
  const sink = scriptedSink('a', (b, call) => {
    at.push(Date.now())
    return call === 1 ? { accepted: [], retryable: [b[0]!.id], rejected: [], retryAfterMs: 10_000, errorClass: 'http_429' } : acceptAll(b)
  })
  drainer(t, sink, buf)
  await until(() => buf.cursor('a') === 1, 'delivered')
  const gap = at[1]! - at[0]!
  t.ok(gap >= 50, `waited at least the 50 ms cap (${gap} ms)`)
  t.ok(gap < 5000, 'the 10 s Retry-After was capped')
})

t.test('dead-letters exactly the rows the sink rejects and delivers the rest', async (t) => {
  const buf = buffer()
  buf.ingest(readings(100))
  const sink = scriptedSink('a', (b) => ({
    accepted: b.filter((r) => r.seq !== 37).map((r) => r.id),
    retryable: [],
    rejected: b.filter((r) => r.seq === 37).map((r) => ({ id: r.id, reason: 'field type conflict' })),
  }))
  drainer(t, sink, buf)
  await until(() => buf.cursor('a') === 100, 'settled')
  const dl = buf.db.prepare('SELECT source, reading_id AS id, reason FROM dead_letters').all()
  t.same(dl, [{ source: 'sink:a', id: 37, reason: 'field type conflict' }])
  const s = queryStatus(buf.db).sinks[0]!
  t.equal(s.sentTotal, 99)
  t.equal(s.rejectedTotal, 1)
})

t.test('401/403 stops that sink with an alert and keeps its backlog; another sink is not held back', async (t) => {
  const buf = buffer()
  buf.ingest(readings(50))
  const bad = scriptedSink('bad', (b) => ({ accepted: [], retryable: b.map((r) => r.id), rejected: [], authError: 'token refused (401); set FERRY_INFLUX_TOKEN' }))
  const good = scriptedSink('good', acceptAll)
  const badDrainer = drainer(t, bad, buf)
  drainer(t, good, buf)
  await until(() => buf.cursor('good') === 50 && badDrainer.state === 'stopped-auth', 'good delivered, bad stopped')
  buf.ingest(readings(10, 'dev1', 51))
  await until(() => buf.cursor('good') === 60, 'good keeps delivering new readings')
  t.equal(bad.calls.length, 1, 'the refused sink is not retried')
  t.equal(buf.cursor('bad'), 0)
  const s = queryStatus(buf.db).sinks.find((x) => x.name === 'bad')!
  t.equal(s.rows, 60, 'its backlog is intact')
  t.equal(s.lastErrorCode, 'auth')
  t.match(s.lastError, /FERRY_INFLUX_TOKEN/)
})

t.test('a sink that hangs on one batch does not hold back another', async (t) => {
  const buf = buffer()
  buf.ingest(readings(20))
  const slow = scriptedSink('slow', () => new Promise<WriteResult>(() => {}))
  const fast = scriptedSink('fast', acceptAll)
  drainer(t, fast, buf)
  const d = new Drainer({ sink: slow, buffer: buf, log: silentLogger, retryMinMs: 5, retryMaxMs: 20, retryAfterCapMs: 50, progressEveryMs: 10 })
  d.start()
  await until(() => buf.cursor('fast') === 20, 'fast delivered')
  t.equal(buf.cursor('slow'), 0)
  await d.stop() // aborting interrupts even a write that never answers
  t.equal(d.state, 'stopped')
})

t.test('the drainer survives a sink that returns garbage', async (t) => {
  const buf = buffer()
  buf.ingest(readings(5))
  const sink = scriptedSink('a', (b, call) => (call === 1 ? ({ accepted: [999], retryable: [], rejected: [] } as WriteResult) : call === 2 ? (undefined as unknown as WriteResult) : acceptAll(b)))
  drainer(t, sink, buf)
  await until(() => buf.cursor('a') === 5, 'eventually delivered')
  t.ok(sink.calls.length >= 3)
})

t.test('rows are deleted only when every sink has passed them', async (t) => {
  const buf = buffer()
  buf.ensureSink('a')
  buf.ensureSink('b')
  buf.ingest(readings(10))
  const batch = buf.read('a', 10)
  buf.settle('a', batch, acceptAll(batch))
  t.equal(buf.prune(), 0, 'b has not passed them')
  buf.settle('b', batch.slice(0, 4), acceptAll(batch.slice(0, 4)))
  t.equal(buf.prune(), 4)
  t.equal(buf.size().rows, 6)
})

t.test('reports replay progress (rows left, rate, ETA) in the log and for ferry status', async (t) => {
  const buf = buffer()
  buf.ingest(readings(200))
  // A sink that takes ~5 ms a batch, so the 10 ms progress interval falls inside the replay.
  const sink = scriptedSink('a', (b) => new Promise((resolve) => setTimeout(() => resolve(acceptAll(b)), 5)), 10)
  const lines: Array<Record<string, unknown>> = []
  const log = silentLogger.child({})
  log.info = ((obj: Record<string, unknown>, msg: string) => lines.push({ ...obj, msg })) as unknown as typeof log.info
  const d = new Drainer({ sink, buffer: buf, log: { child: () => log } as unknown as typeof silentLogger, retryMinMs: 5, retryMaxMs: 20, retryAfterCapMs: 50, progressEveryMs: 10 })
  t.teardown(() => d.stop())
  d.start()
  await until(() => buf.cursor('a') === 200, 'drained')
  const progress = lines.filter((l) => l.msg === 'draining backlog')
  t.ok(progress.length >= 1, 'a progress line was logged')
  const p = progress[0]!
  t.ok((p.rowsLeft as number) > 0 && (p.rowsLeft as number) < 200, `rows left ${String(p.rowsLeft)}`)
  t.ok((p.ratePerS as number) > 0, 'a rate')
  t.type(p.etaS, 'number', 'an ETA')
  t.ok(buf.getMeta('progress:a'), 'stored for ferry status')
})

/**
 * Drains 3 readings through a sink whose first write throws `thrown`, with a logger that keeps its
 * lines. Resolves once all 3 are delivered, with the error events and the log lines about the failure.
 */
async function drainAfterThrow(t: { teardown(fn: () => unknown): void }, thrown: () => never) {
  const buf = buffer()
  buf.ingest(readings(3))
  const sink = scriptedSink('a', (b, call) => (call === 1 ? thrown() : acceptAll(b)))
  const lines: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  const events: DrainEvent[] = []
  const d = new Drainer({ sink, buffer: buf, log: createLogger({ level: 'debug', destination }), retryMinMs: 5, retryMaxMs: 20, retryAfterCapMs: 50, progressEveryMs: 10, onEvent: (e) => events.push(e) })
  t.teardown(() => d.stop())
  d.start()
  await until(() => buf.cursor('a') === 3, 'delivered after the retry')
  return {
    errors: events.filter((e) => e.type === 'error'),
    failed: lines.filter((l) => /sink (write failed|threw)/.test(String(l.msg))),
    calls: sink.calls.length,
  }
}

t.test('a sink exception with a network cause is class network, logged as a warning; the data is retried', async (t) => {
  // How the HTTP sinks throw: a FERRY_ERR_SINK error whose cause is undici's.
  const r = await drainAfterThrow(t, () => {
    throw new FerryError('FERRY_ERR_SINK', 'InfluxDB request POST /write failed', { cause: new undiciErrors.ConnectTimeoutError() })
  })
  t.match(r.errors, [{ errorClass: 'network', message: /InfluxDB request/ }])
  t.equal(r.failed.length, 1)
  t.match(r.failed, [{ level: 40, errorClass: 'network' }], 'one WARN line, no ERROR')
  t.equal(r.calls, 2, 'the same batch was sent again and delivered')
})

t.test('any other sink exception is class error (a bug), logged at ERROR with the stack; the data is retried', async (t) => {
  const r = await drainAfterThrow(t, () => {
    throw new TypeError("Cannot read properties of undefined (reading 'id')") // a bug in the sink
  })
  t.match(r.errors, [{ errorClass: 'error', message: /Cannot read properties of undefined/ }])
  t.equal(r.failed.length, 1)
  t.match(r.failed, [{ level: 50, errorClass: 'error', err: { type: 'TypeError', stack: /drainer\.test\.ts/ } }], 'one ERROR line with the stack')
  t.equal(r.calls, 2, 'the same batch was sent again and delivered')
})
