import t from 'tap'
import { openBuffer, RingBuffer, queryStatus, type ReadingIn } from '../buffer/index.js'
import { Drainer, PRUNE_CHUNK, type DrainEvent, type DrainTimers } from './drainer.js'
import type { BufferedReading, Sink, WriteResult } from '../sinks/types.js'
import { Writable } from 'node:stream'
import { getEventListeners } from 'node:events'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { tempDir } from '../../../test/helpers/tmp.js'
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

t.test('a sink whose write endpoint does not exist (404) stops as stopped-endpoint, not as an auth failure', async (t) => {
  const buf = buffer()
  buf.ingest(readings(5))
  const sink = scriptedSink('v3', (b) => ({ accepted: [], retryable: b.map((r) => r.id), rejected: [], authError: 'no /api/v3/write_lp (404); set FERRY_INFLUX_VERSION=2', stopCode: 'FERRY_ERR_SINK_ENDPOINT' }))
  const d = drainer(t, sink, buf)
  await until(() => d.state === 'stopped-endpoint', 'stopped')
  t.equal(sink.calls.length, 1, 'not retried')
  const s = queryStatus(buf.db).sinks[0]!
  t.equal(s.rows, 5, 'its backlog is intact')
  t.equal(s.lastErrorCode, 'endpoint')
  t.match(s.lastError, /FERRY_INFLUX_VERSION/)
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

/**
 * A compressed clock for the drainer's waits: a timer fires on the next turn of the event loop and
 * moves `now` on by its delay, so an idle drainer's one-second polls run thousands of times a second.
 */
function compressedClock() {
  const clock = {
    now: 0,
    fired: 0,
    timers: {
      setTimeout(fn: () => void, ms: number) {
        return setImmediate(() => {
          clock.now += ms
          clock.fired++
          fn()
        })
      },
      clearTimeout(handle: unknown) {
        clearImmediate(handle as NodeJS.Immediate)
      },
    } satisfies DrainTimers,
  }
  return clock
}

t.test('soak: a day of idling and draining leaves no abort listeners behind and no MaxListenersExceededWarning', async (t) => {
  const warnings: Error[] = []
  const onWarning = (w: Error) => warnings.push(w)
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const buf = buffer()
  const clock = compressedClock()
  let signal: AbortSignal | undefined
  const duringWrites: number[] = []
  const refused = new Set<number>()
  // Some batches are answered 503 once, so the retry path (p-retry's wait on the signal) runs too.
  const sink: Sink = {
    name: 'soak',
    maxBatch: 20,
    async resume(s) {
      signal = s
    },
    async write(batch, s) {
      await null // the drainer's own listener for this write is added once write() has returned its promise
      duringWrites.push(getEventListeners(s, 'abort').length)
      const first = batch[0]!.id
      if (first % 7 !== 0 || refused.has(first)) return acceptAll(batch)
      refused.add(first)
      return { accepted: [], retryable: batch.map((r) => r.id), rejected: [], errorClass: 'http_503' }
    },
    async close() {},
  }
  const d = new Drainer({ sink, buffer: buf, log: silentLogger, retryMinMs: 1, retryMaxMs: 2, retryAfterCapMs: 2, progressEveryMs: 10, timers: clock.timers })
  t.teardown(() => d.stop())
  d.start()
  await until(() => signal !== undefined, 'resumed')
  const HOUR = 3_600_000
  const perHour: number[] = []
  let seq = 1
  for (let hour = 1; hour <= 24; hour++) {
    // Readings arrive every ten simulated minutes; the drainer idles in between.
    for (let tenth = 1; tenth <= 6; tenth++) {
      await until(() => clock.now >= (hour - 1) * HOUR + tenth * 600_000, `simulated hour ${hour}`)
      buf.ingest(readings(30, 'dev1', seq))
      seq += 30
      d.notify()
    }
    perHour.push(getEventListeners(signal!, 'abort').length)
    if (perHour.at(-1)! > 2) break // leaking: the rest of the day would only be slower (each add scans the listeners)
  }
  await until(() => buf.cursor('soak') === seq - 1, 'everything delivered')
  t.ok(clock.fired >= 80_000, `the drainer waited ${clock.fired} times (a simulated day of 1-second idle polls)`)
  t.ok(refused.size > 0, `${refused.size} batches were retried`)
  t.ok(Math.max(...perHour) <= 2, `abort listeners on the drainer's signal, hour by hour, stay flat: ${perHour.join(',')}`)
  t.ok(Math.max(...duringWrites) <= 2, `at most ${Math.max(...duringWrites)} listeners while a write is in flight`)
  t.same(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message), [], 'no MaxListenersExceededWarning')
})

/** The error better-sqlite3 throws when another connection holds the write lock past the busy timeout. */
const locked = () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })

t.test('a loop that throws outside the sink shows as failed, is recorded, starts again after a back-off and recovers', async (t) => {
  const buf = buffer()
  buf.ingest(readings(30))
  const settle = buf.settle.bind(buf)
  let failing = 3
  buf.settle = (...args) => {
    if (failing > 0) {
      failing--
      throw locked()
    }
    return settle(...args)
  }
  const sink = scriptedSink('a', acceptAll, 10)
  const events: DrainEvent[] = []
  const d = drainer(t, sink, buf, events)
  await until(() => d.state === 'failed', 'failed')
  t.match(d.lastError, { class: 'failed', message: 'SQLITE_BUSY: database is locked' })
  t.equal(queryStatus(buf.db).sinks[0]!.lastErrorCode, 'failed', 'recorded for ferry status')
  await until(() => buf.cursor('a') === 30 && d.state === 'idle', 'recovered and delivered')
  t.equal(d.lastError, undefined, 'the failure is cleared')
  t.equal(queryStatus(buf.db).sinks[0]!.lastErrorCode, null)
  t.match(events.filter((e) => e.type === 'error'), [{ errorClass: 'failed' }, { errorClass: 'failed' }, { errorClass: 'failed' }], 'failed three times')
  t.equal(events.filter((e) => e.type === 'state' && e.state === 'failed').length, 1, 'and stayed failed in between (no flapping to sending)')
  t.same([...new Set(sink.calls.flat())].sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i + 1), 'every reading was sent (a batch whose settle failed is sent again)')
})

t.test('failed while another connection holds the write lock (database is locked); recovers when it is released', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  const { db } = openBuffer(path)
  db.pragma('busy_timeout = 20') // 5 s in the gateway; short here
  const buf = new RingBuffer(db, { maxRows: 1e6, maxBytes: 1e9, dedupWindowMs: 0, maxEvents: 1000 })
  t.teardown(() => db.close())
  buf.ingest(readings(5))
  const sink = scriptedSink('a', acceptAll)
  const d = drainer(t, sink, buf)
  await until(() => buf.cursor('a') === 5 && d.state === 'idle', 'delivered')
  const other = new Database(path)
  t.teardown(() => other.close())
  other.exec('BEGIN IMMEDIATE')
  await until(() => d.state === 'failed', 'failed while the lock is held')
  t.match(d.lastError, { class: 'failed', message: /SQLITE_BUSY: database is locked/ })
  other.exec('COMMIT')
  buf.ingest(readings(5, 'dev1', 6))
  await until(() => buf.cursor('a') === 10 && d.state === 'idle', 'recovered and delivered')
  t.equal(d.lastError, undefined)
})

t.test('delivered readings are deleted once the backlog is sent, not while it drains, in chunks of PRUNE_CHUNK', async (t) => {
  const buf = buffer()
  const total = PRUNE_CHUNK * 2 + 500
  for (let from = 1; from <= total; from += 10_000) buf.ingest(readings(Math.min(10_000, total - from + 1), 'dev1', from))
  const held: number[] = []
  const sink = scriptedSink('a', (b) => {
    held.push(buf.size().rows)
    return acceptAll(b)
  }, 5_000)
  const chunks: number[] = []
  const prune = buf.prune.bind(buf)
  buf.prune = (maxRows?: number) => {
    const n = prune(maxRows)
    chunks.push(n)
    return n
  }
  drainer(t, sink, buf)
  await until(() => buf.size().rows === 0, 'every delivered reading deleted')
  t.equal(held.length, Math.ceil(total / 5_000))
  t.ok(held.every((n) => n === total), 'nothing deleted while the backlog was being sent')
  t.same(chunks.slice(0, 3), [PRUNE_CHUNK, PRUNE_CHUNK, 500], 'then deleted in chunks, one transaction each')
  t.equal(buf.cursor('a'), total)
})

t.test('new readings stop the idle pruning: they are sent first', async (t) => {
  const buf = buffer()
  buf.ingest(readings(PRUNE_CHUNK * 3))
  const order: string[] = []
  const sink = scriptedSink('a', (b) => {
    if (b.some((r) => r.device === 'dev2')) order.push('send new')
    return acceptAll(b)
  }, 10_000)
  const d = drainer(t, sink, buf)
  const prune = buf.prune.bind(buf)
  buf.prune = (maxRows?: number) => {
    const n = prune(maxRows)
    if (n > 0) order.push(`prune ${n}`)
    // New readings arrive while the first chunk is deleted.
    if (n > 0 && order.length === 1) {
      buf.ingest(readings(3, 'dev2'))
      d.notify()
    }
    return n
  }
  await until(() => buf.size().rows === 0, 'everything delivered and deleted')
  t.same(order.slice(0, 2), [`prune ${PRUNE_CHUNK}`, 'send new'], 'one chunk deleted, then the new readings sent before the next chunk')
  t.equal(buf.cursor('a'), PRUNE_CHUNK * 3 + 3)
})
