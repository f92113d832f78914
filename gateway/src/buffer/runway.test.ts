// The runway arithmetic: the ingest rate (EWMA), free room over rate, drain ETAs, and the same
// figures through queryStatus from a running buffer and, as `ferry status` reads them, from `meta`.
import t from 'tap'
import { openBuffer } from './open.js'
import { RingBuffer } from './ring-buffer.js'
import { drainEtaS, IngestRate, META_BUFFER_LIMITS, META_INGEST_PAUSED, rateAt, runway } from './runway.js'
import { queryStatus } from './status.js'
import type { ReadingIn } from './types.js'

const near = (actual: number, expected: number, within: number) => Math.abs(actual - expected) <= within

t.test('the ingest rate follows a steady rate, reports the average while young, and decays when ingest stops', async (t) => {
  const t0 = 1_000_000
  const rate = new IngestRate(t0)
  t.equal(rate.perS(t0), 0, 'nothing committed: 0')
  // 10 readings a second, as commits of 1 every 100 ms.
  let now = t0
  for (let i = 0; i < 100; i++) rate.add(1, (now += 100))
  t.ok(near(rate.perS(now), 10, 0.5), `after 10 s already about 10/s, not still climbing from 0 (${rate.perS(now)})`)
  for (let i = 0; i < 6000; i++) rate.add(1, (now += 100))
  t.ok(near(rate.perS(now), 10, 0.3), `steady at 10/s (${rate.perS(now)})`)
  // Bursts count the same as a steady trickle: 50 every 5 s is also 10/s.
  for (let i = 0; i < 120; i++) rate.add(50, (now += 5000))
  t.ok(near(rate.perS(now), 10, 0.5), `bursty 10/s (${rate.perS(now)})`)
  const snap = rate.snapshot(now)
  now += 10 * 60_000
  t.ok(near(rate.perS(now), 10 * Math.exp(-2), 0.05), 'two time constants (10 min) after the last commit, e^-2 of it')
  t.ok(near(rateAt(snap, now), rate.perS(now), rate.perS(now) * 0.02), 'a stored snapshot decays as the live rate (within the start-up correction it froze)')
  now += 50 * 60_000
  t.equal(rate.perS(now), 0, 'under one reading per time constant reads as 0')
  t.equal(rateAt(snap, now), 0)
  t.equal(rateAt(undefined, now), 0)
})

t.test('runway: free room over the ingest rate, the tighter of rows and bytes; null with no ingest', async (t) => {
  const limits = { maxRows: 1000, maxBytes: 1_000_000, onFull: 'drop-oldest' as const }
  // 200 held (100 bytes each on average), 100 of them undelivered, 10 readings/s.
  t.same(runway(limits, { rows: 200, bytes: 20_000 }, 100, 10), { onFull: 'drop-oldest', ingestPerS: 10, freeRows: 900, freeBytes: 990_000, seconds: 90 }, 'rows run out first: 900 / 10')
  t.equal(runway({ ...limits, maxBytes: 20_000 }, { rows: 200, bytes: 20_000 }, 100, 10).seconds, 10, 'bytes run out first: (20,000 − 10,000) / (10/s × 100 B)')
  t.equal(runway(limits, { rows: 200, bytes: 20_000 }, 100, 0).seconds, null, 'nothing comes in: no runway figure')
  t.same(runway(limits, { rows: 1200, bytes: 120_000 }, 1000, 10), { onFull: 'drop-oldest', ingestPerS: 10, freeRows: 0, freeBytes: 900_000, seconds: 0 }, 'full of undelivered readings: 0')
  t.equal(runway({ maxRows: 10, maxBytes: 10_000 }, { rows: 0, bytes: 0 }, 0, 2).seconds, 5, 'an empty buffer (no average payload yet) is bounded by rows')
})

t.test('drain ETA: backlog over send rate minus ingest rate', async (t) => {
  t.equal(drainEtaS(0, null, 5), 0, 'no backlog')
  t.equal(drainEtaS(900, 100, 10), 10)
  t.equal(drainEtaS(900, null, 0), null, 'no send rate (failing, or not reported yet)')
  t.equal(drainEtaS(900, 10, 10), null, 'sends no faster than readings come in: never')
})

t.test('status shows the same runway live and, for `ferry status`, from what the gateway left in meta', async (t) => {
  const t0 = 1_700_000_000_000
  let now = t0
  const { db } = openBuffer(':memory:')
  const limits = { maxRows: 10_000, maxBytes: 1e9, dedupWindowMs: 60_000, maxEvents: 100, onFull: 'backpressure' as const }
  const buf = new RingBuffer(db, limits, () => now)
  buf.ensureSink('a')
  buf.setMeta(META_BUFFER_LIMITS, limits)
  const r = (seq: number): ReadingIn => ({ type: 'reading', topic: 'sensors/dev1/telemetry', device: 'dev1', boot: 1, seq, receivedAt: now, pot: 1, switch: 0, led: null, payload: Buffer.from('{}') })
  // 20 readings a second for two minutes, in commits of 10.
  let seq = 0
  for (let i = 0; i < 240; i++) {
    now += 500
    buf.ingest(Array.from({ length: 10 }, () => r(++seq)))
  }
  const live = queryStatus(db, now, buf)
  t.ok(near(live.runway!.ingestPerS, 20, 0.5), `live rate about 20/s (${live.runway!.ingestPerS})`)
  t.equal(live.runway!.freeRows, 10_000 - 2400)
  t.ok(near(live.runway!.seconds!, 7600 / 20, 10), `runway about 380 s (${live.runway!.seconds})`)
  t.equal(live.runway!.onFull, 'backpressure')
  const stored = queryStatus(db, now)
  t.ok(near(stored.runway!.seconds!, live.runway!.seconds!, 10), `from meta (written at most 1 s ago) about the same (${stored.runway!.seconds})`)

  // A sink that reported 120/s drains 2400 at (120 − 20)/s.
  buf.setMeta('progress:a', { rowsLeft: 2400, ratePerS: 120, etaS: 20, at: now })
  t.ok(near(queryStatus(db, now, buf).sinks[0]!.drainEtaS!, 24, 1))
  buf.recordSinkError('a', 'network', 'ECONNREFUSED')
  t.equal(queryStatus(db, now, buf).sinks[0]!.drainEtaS, null, 'a failing sink has no ETA')

  buf.setMeta(META_INGEST_PAUSED, { reason: 'backpressure', code: 'FERRY_ERR_BUFFER_BACKPRESSURE', since: now, error: 'full' })
  t.equal(queryStatus(db, now, buf).runway!.seconds, 0, 'paused by backpressure: no runway left')
  now += 60 * 60_000
  buf.setMeta(META_INGEST_PAUSED, null)
  t.equal(queryStatus(db, now, buf).runway!.seconds, null, 'an hour without a commit: no rate, no figure')
  t.equal(queryStatus(db, now).runway!.seconds, null, 'the same from meta')
})
