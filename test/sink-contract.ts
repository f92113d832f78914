/**
 * The suite every sink runs (MQTT.js `abstract_store`, Telegraf `buffer_suite_test`): the same
 * claims against InfluxDB (a real influxd), ThingSpeak (its fake) and the file sink. Each sink's own
 * test file runs `sinkContract(t, factory)` and then adds its failure modes.
 *
 * The factory builds a fresh sink and destination for each claim and tells the suite how to read
 * back what the destination holds, reduced to what every destination can store: device, pot,
 * switch, led and the point time (at the destination's time resolution).
 */
import type { Test } from 'tap'
import type { BufferedReading, Sink, WriteResult } from '../gateway/src/sinks/types.js'

/** One reading as the destination holds it. */
export interface Delivered {
  device: string
  pot: number
  switch: number
  /** null when the destination holds no LED value for the point. */
  led: number | null
  /** Point time in ms, floored to the destination's resolution. */
  timeMs: number
}

export interface ContractTarget {
  sink: Sink
  /** What the destination holds now, oldest first. */
  delivered(): Promise<Delivered[]>
}

export interface ContractOptions {
  /** Time resolution of the destination (ThingSpeak keeps whole seconds). Default 1 ms. */
  timeResolutionMs?: number
  /**
   * Whether re-sending an accepted batch leaves the destination unchanged. True for InfluxDB
   * (overwrite) and ThingSpeak (the sink skips what the channel holds); false for an append-only file.
   */
  idempotentReplay?: boolean
}

/** First point time used by `makeRows`: 2026-01-01T00:00:00.000123Z, µs part included on purpose. */
export const CONTRACT_START_US = Date.UTC(2026, 0, 1) * 1000 + 123

/**
 * Readings for tests: ids from `firstId`, devices round-robin, one per `spacingMs` (default 60 s,
 * so each reading falls in its own ThingSpeak aggregation window), strictly increasing times.
 */
export function makeRows(n: number, opts: { firstId?: number; devices?: string[]; startUs?: number; spacingMs?: number } = {}): BufferedReading[] {
  const devices = opts.devices ?? ['dev1', 'dev2']
  const first = opts.firstId ?? 1
  const start = opts.startUs ?? CONTRACT_START_US
  const spacingUs = (opts.spacingMs ?? 60_000) * 1000
  return Array.from({ length: n }, (_, i) => {
    const device = devices[i % devices.length] as string
    const seq = Math.floor(i / devices.length) + 1
    const tsUs = start + i * spacingUs
    return {
      id: first + i,
      device,
      boot: 1,
      seq,
      tsUs,
      receivedAt: Math.floor(tsUs / 1000),
      pot: (i * 37) % 4096,
      switch: (i % 2) as 0 | 1,
      led: i % 3 === 0 ? null : (i * 7) % 101,
      payload: '{}',
    }
  })
}

/** What a destination should hold for `rows`. */
export function expected(rows: readonly BufferedReading[], resolutionMs = 1): Delivered[] {
  return rows.map((r) => ({
    device: r.device,
    pot: r.pot,
    switch: r.switch,
    led: r.led,
    timeMs: Math.floor(r.tsUs / 1000 / resolutionMs) * resolutionMs,
  }))
}

/**
 * The settlement rule every sink's result must keep, whatever the server answered: each row of the
 * batch is in exactly one of accepted, rejected and retryable (so nothing is counted as delivered
 * twice, or both delivered and dead-lettered), and the settled rows (accepted or rejected) come before
 * every retryable one, as the drainer's single cursor needs.
 */
export function assertSettlement(t: Test, batch: readonly BufferedReading[], r: WriteResult): void {
  const where = new Map<number, string[]>()
  const mark = (id: number, list: string) => where.set(id, [...(where.get(id) ?? []), list])
  for (const id of r.accepted) mark(id, 'accepted')
  for (const x of r.rejected) mark(x.id, 'rejected')
  for (const id of r.retryable) mark(id, 'retryable')
  const wrong = batch.filter((row) => (where.get(row.id) ?? []).length !== 1).map((row) => `${row.id}: ${(where.get(row.id) ?? ['none']).join('+')}`)
  t.same(wrong, [], 'every row is in exactly one list')
  t.same([...where.keys()].filter((id) => !batch.some((row) => row.id === id)), [], 'no id outside the batch')
  const firstRetryable = batch.findIndex((row) => r.retryable.includes(row.id))
  if (firstRetryable >= 0) t.same(batch.slice(firstRetryable).filter((row) => !r.retryable.includes(row.id)).map((row) => row.id), [], 'settled rows form a prefix')
}

/** Runs the shared claims as subtests of `t`. */
export function sinkContract(t: Test, factory: (t: Test) => Promise<ContractTarget>, opts: ContractOptions = {}): void {
  const res = opts.timeResolutionMs ?? 1
  const signal = () => new AbortController().signal

  t.test('contract: delivers a batch in order and accepts exactly its ids', async (t) => {
    const { sink, delivered } = await factory(t)
    const rows = makeRows(10)
    const r = await sink.write(rows, signal())
    assertSettlement(t, rows, r)
    t.same(r.accepted, rows.map((x) => x.id), 'accepted ids are the batch, in order')
    t.same(r.rejected, [])
    t.same(r.retryable, [])
    t.notOk(r.authError)
    t.same(await delivered(), expected(rows, res))
  })

  t.test('contract: consecutive batches land after each other', async (t) => {
    const { sink, delivered } = await factory(t)
    const a = makeRows(6)
    const b = makeRows(6, { firstId: 7, startUs: CONTRACT_START_US + 6 * 60_000_000 })
    t.same((await sink.write(a, signal())).accepted, a.map((x) => x.id))
    t.same((await sink.write(b, signal())).accepted, b.map((x) => x.id))
    t.same(await delivered(), expected([...a, ...b], res))
  })

  t.test('contract: an empty batch settles nothing and sends nothing', async (t) => {
    const { sink, delivered } = await factory(t)
    const r = await sink.write([], signal())
    t.same(r.accepted, [])
    t.same(r.rejected, [])
    t.same(r.retryable, [])
    t.same(await delivered(), [])
  })

  if (opts.idempotentReplay ?? true) {
    t.test('contract: re-sending an accepted batch leaves the destination unchanged', async (t) => {
      const { sink, delivered } = await factory(t)
      const rows = makeRows(8)
      await sink.write(rows, signal())
      const before = await delivered()
      const again = await sink.write(rows, signal())
      t.same(again.accepted, rows.map((x) => x.id), 'the replay is accepted, so the drainer moves on')
      t.same(await delivered(), before, 'no duplicates, no changes')
    })
  }

  t.test('contract: a write with an aborted signal rejects and delivers nothing', async (t) => {
    const { sink, delivered } = await factory(t)
    const ac = new AbortController()
    ac.abort(new Error('stopping'))
    await t.rejects(sink.write(makeRows(3), ac.signal))
    t.same(await delivered(), [])
  })

  t.test('contract: maxBatch is a positive integer and the name is set', async (t) => {
    const { sink } = await factory(t)
    t.ok(Number.isInteger(sink.maxBatch) && sink.maxBatch > 0, `maxBatch ${sink.maxBatch}`)
    t.match(sink.name, /^[a-z]+$/)
  })

  t.test('contract: close is idempotent', async (t) => {
    const { sink } = await factory(t)
    await sink.write(makeRows(2), signal())
    await sink.close()
    await sink.close()
    t.pass('closed twice')
  })
}
