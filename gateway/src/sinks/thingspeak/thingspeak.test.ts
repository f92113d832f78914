// ThingSpeak sink against the fake ThingSpeak (the service cannot run here). Time is virtual: the
// sink's clock and sleep and the fake's clock are one counter, so the 15-second rule is checked
// exactly and the tests never wait.
import t, { type Test } from 'tap'
import { loadEnv } from '../../../../common/src/config/env.js'
import { sinkContract, makeRows, assertSettlement, type Delivered } from '../../../../test/sink-contract.js'
import type { BufferedReading } from '../types.js'
import { thingspeakConfigSchema, type ThingSpeakConfig } from './config.js'
import { createThingSpeakSink } from './thingspeak.js'
import { startFakeThingSpeak, type FakeThingSpeak, type FakeThingSpeakOptions, type TsEntry } from '../../../../test/fakes/thingspeak.js'

const signal = () => new AbortController().signal
const cfg = (env: Record<string, string>): ThingSpeakConfig => loadEnv<ThingSpeakConfig>(thingspeakConfigSchema, { env, dotenvPath: '/nonexistent' })

/** Virtual time shared by the sink and the fake. */
function virtualClock(start = Date.UTC(2026, 5, 1)) {
  let now = start
  return {
    now: () => now,
    sleep: async (ms: number, s: AbortSignal) => {
      s.throwIfAborted()
      now += Math.max(0, ms)
    },
    advance: (ms: number) => { now += ms },
  }
}

const CH = { id: '1001', writeKey: 'WRITEKEY0000AAAA', readKey: 'READKEY00000BBBB' }

async function setup(t: Test, env: Record<string, string> = {}, fake: Partial<FakeThingSpeakOptions> = {}) {
  const clock = virtualClock()
  const f = await startFakeThingSpeak(t, { channels: [CH], now: clock.now, ...fake })
  const sink = createThingSpeakSink(cfg({
    FERRY_THINGSPEAK_URL: f.url,
    FERRY_THINGSPEAK_CHANNEL_ID: CH.id,
    FERRY_THINGSPEAK_WRITE_KEY: CH.writeKey,
    FERRY_THINGSPEAK_READ_KEY: CH.readKey,
    ...env,
  }), { now: clock.now, sleep: clock.sleep })
  t.teardown(() => sink.close())
  return { f, sink, clock }
}

function delivered(feed: TsEntry[]): Delivered[] {
  return feed.map((e) => ({
    device: e.status as string,
    pot: Number(e.field1),
    switch: Number(e.field2),
    led: e.field3 === undefined ? null : Number(e.field3),
    timeMs: Date.parse(e.created_at),
  }))
}

/** Asserts bulk calls to each channel were at least `interval` apart and none was refused with 429. */
function assertSpacing(t: Test, f: FakeThingSpeak, channelId: string, interval: number): void {
  const calls = f.bulkCalls(channelId)
  for (let i = 1; i < calls.length; i++) {
    const gap = (calls[i] as { at: number }).at - (calls[i - 1] as { at: number }).at
    t.ok(gap >= interval, `call ${i} came ${gap} ms after the previous one (≥ ${interval})`)
  }
  t.notOk(calls.some((c) => c.status === 429), 'ThingSpeak never had to answer 429')
}

sinkContract(t, async (t) => {
  const { f, sink } = await setup(t)
  return { sink, delivered: async () => delivered(f.feed(CH.id)) }
}, { timeResolutionMs: 1000 })

t.test('no bulk call is sent faster than the configured interval', async (t) => {
  const { f, sink } = await setup(t, { FERRY_THINGSPEAK_INTERVAL_MS: '20000' }, { intervalMs: 20_000 })
  for (let i = 0; i < 6; i++) {
    const rows = makeRows(3, { firstId: 1 + 3 * i, startUs: Date.UTC(2026, 0, 1) * 1000 + i * 180e6 })
    t.same((await sink.write(rows, signal())).accepted, rows.map((r) => r.id))
  }
  t.equal(f.bulkCalls(CH.id).length, 6)
  assertSpacing(t, f, CH.id, 20_000)
  t.equal(f.feed(CH.id).length, 18)
})

t.test('control: the fake refuses calls closer than its interval with 429', async (t) => {
  const { f, sink, clock } = await setup(t, { FERRY_THINGSPEAK_INTERVAL_MS: '15000' }, { intervalMs: 60_000 })
  await sink.write(makeRows(1), signal())
  clock.advance(1)
  const r = await sink.write(makeRows(1, { firstId: 2, startUs: Date.UTC(2026, 0, 2) * 1000 }), signal())
  t.equal(r.errorClass, 'http_429')
  t.equal(f.bulkCalls(CH.id)[1]?.status, 429)
})

t.test('aggregates each device per window: last pot, max switch, last LED; created_at = last reading, unique per channel', async (t) => {
  const { f, sink } = await setup(t, { FERRY_THINGSPEAK_WINDOW_MS: '30000' })
  // Two devices, one reading per second each, for 60 s: two windows of 30 s per device.
  const t0 = Date.UTC(2026, 0, 1, 12, 0, 0) * 1000
  const rows: BufferedReading[] = []
  let id = 1
  for (let s = 0; s < 60; s++) {
    for (const device of ['dev1', 'dev2']) {
      rows.push({
        id: id++, device, boot: 1, seq: s + 1, tsUs: t0 + s * 1e6 + 250_000, receivedAt: 0,
        pot: device === 'dev1' ? 1000 + s : 2000 + s,
        switch: (device === 'dev1' && s === 7) || (device === 'dev2' && s === 44) ? 1 : 0,
        led: device === 'dev1' && s < 20 ? s : null,
        payload: '{}',
      })
    }
  }
  const r = await sink.write(rows, signal())
  t.same(r.accepted, rows.map((x) => x.id))
  const sec = (s: number) => new Date(t0 / 1000 + s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
  const body = f.bulkCalls(CH.id)[0]?.body as { updates: Record<string, unknown>[] }
  t.same(body.updates, [
    { created_at: sec(29), field1: 1029, field2: 1, field3: 19, status: 'dev1' },
    { created_at: sec(30), field1: 2029, field2: 0, status: 'dev2' }, // same last second as dev1: moved 1 s later
    { created_at: sec(59), field1: 1059, field2: 0, status: 'dev1' },
    { created_at: sec(60), field1: 2059, field2: 1, status: 'dev2' },
  ])
  t.equal(f.feed(CH.id).length, 4, '120 readings became 4 messages')
})

t.test('at most MAX_ENTRIES entries per call; the rest follows in later calls', async (t) => {
  const { f, sink } = await setup(t, { FERRY_THINGSPEAK_MAX_ENTRIES: '10' }, { maxEntries: 10 })
  const rows = makeRows(25)
  const first = await sink.write(rows, signal())
  t.same(first.accepted, rows.slice(0, 10).map((x) => x.id))
  t.same(first.retryable, rows.slice(10).map((x) => x.id))
  t.notOk(first.errorClass, 'not a failure: the cap is ours')
  const second = await sink.write(rows.slice(10), signal())
  const third = await sink.write(rows.slice(20), signal())
  t.same([...second.accepted, ...third.accepted], rows.slice(10).map((x) => x.id))
  t.ok(f.bulkCalls(CH.id).every((c) => (c.body as { updates: unknown[] }).updates.length <= 10))
  t.same(delivered(f.feed(CH.id)).map((d) => d.pot), rows.map((r) => r.pot))
  assertSpacing(t, f, CH.id, 15_000)
})

t.test('429 with Retry-After: every row kept, pause passed on; without it, one interval', async (t) => {
  const { f, sink } = await setup(t)
  f.fail({ status: 429, headers: { 'retry-after': '40' } })
  const rows = makeRows(4)
  const r = await sink.write(rows, signal())
  t.same(r.retryable, rows.map((x) => x.id))
  t.same(r.accepted, [])
  t.equal(r.retryAfterMs, 40_000)
  t.equal(r.errorClass, 'http_429')
  f.fail({ status: 429 })
  t.equal((await sink.write(rows, signal())).retryAfterMs, 15_000)
  t.same((await sink.write(rows, signal())).accepted, rows.map((x) => x.id))
  t.equal(f.feed(CH.id).length, 4)
})

t.test('503 and 500 keep every row', async (t) => {
  const { f, sink } = await setup(t)
  f.fail({ status: 503, body: 'Service Unavailable', headers: { 'retry-after': '5' } })
  f.fail({ status: 500, body: 'oops' })
  const rows = makeRows(3)
  const a = await sink.write(rows, signal())
  t.match(a, { retryable: [1, 2, 3], accepted: [], errorClass: 'http_503', retryAfterMs: 5000 })
  const b = await sink.write(rows, signal())
  t.match(b, { retryable: [1, 2, 3], accepted: [], errorClass: 'http_5xx' })
  t.same(f.feed(CH.id), [])
})

t.test('a dropped connection makes write throw; nothing is settled or stored', async (t) => {
  const { f, sink } = await setup(t)
  f.hangUp()
  await t.rejects(sink.write(makeRows(3), signal()), { code: 'FERRY_ERR_SINK', message: /ThingSpeak request POST .*bulk_update\.json failed/ })
  t.same(f.feed(CH.id), [])
  t.same((await sink.write(makeRows(3), signal())).accepted, [1, 2, 3], 'delivered on the retry')
})

t.test('401 with a wrong write key: authError naming the setting, nothing accepted', async (t) => {
  const { f, sink } = await setup(t, { FERRY_THINGSPEAK_WRITE_KEY: 'WRONGKEY' })
  const rows = makeRows(5)
  const r = await sink.write(rows, signal())
  t.same(r.accepted, [])
  t.same(r.retryable, rows.map((x) => x.id))
  t.equal(r.errorClass, 'http_401')
  t.match(r.authError, /ThingSpeak refused the write key for channel 1001: error_auth_required: Authorization Required.*FERRY_THINGSPEAK_WRITE_KEY/)
  t.same(f.feed(CH.id), [])
})

t.test('402 quota spent: class quota_exhausted, long pause, data kept', async (t) => {
  const { f, sink } = await setup(t, { FERRY_THINGSPEAK_QUOTA_RETRY_MS: '600000' }, { quota: 2 })
  const rows = makeRows(5)
  const r = await sink.write(rows, signal())
  t.same(r.accepted, [])
  t.same(r.retryable, rows.map((x) => x.id))
  t.equal(r.errorClass, 'quota_exhausted')
  t.equal(r.retryAfterMs, 600_000)
  t.match(r.errorMessage, /quota is spent \(402\)/)
  t.notOk(r.authError)
  f.setQuota(100)
  t.same((await sink.write(rows, signal())).accepted, rows.map((x) => x.id), 'delivered once the quota is renewed')
})

t.test('400 on one bad entry in a batch of 100: exactly that row rejected with the server message, 99 accepted', async (t) => {
  const { f, sink } = await setup(t, {}, { duplicates: 'reject' })
  const rows = makeRows(100)
  // The channel already holds an entry at row 42's second (written by something else): ThingSpeak
  // refuses a repeated created_at (in this fake's 'reject' mode) for the whole bulk call.
  const clash = new Date(Math.floor((rows[41] as BufferedReading).tsUs / 1e6) * 1000).toISOString()
  f.seed(CH.id, [{ created_at: clash, field1: 1, status: 'other' }])
  const r = await sink.write(rows, signal())
  t.same(r.rejected.map((x) => x.id), [42])
  t.match(r.rejected[0]?.reason, /^ThingSpeak 400: error_bad_request: Bad Request: created_at .* already exists/)
  t.same(r.accepted, rows.filter((x) => x.id !== 42).map((x) => x.id))
  t.equal(f.feed(CH.id).length, 100, '99 new entries plus the one that was there')
  assertSpacing(t, f, CH.id, 15_000)
})

t.test('413 (entry cap lower than configured): split until it fits, all delivered once', async (t) => {
  const { f, sink } = await setup(t, { FERRY_THINGSPEAK_MAX_ENTRIES: '100' }, { maxEntries: 30 })
  const rows = makeRows(100)
  const r = await sink.write(rows, signal())
  t.same(r.accepted, rows.map((x) => x.id))
  t.same(r.rejected, [])
  t.equal(f.feed(CH.id).length, 100)
  t.ok(f.bulkCalls(CH.id).some((c) => c.status === 413), 'the server did answer 413')
  assertSpacing(t, f, CH.id, 15_000)
})

t.test('resume skips what the channel already holds after a crash', async (t) => {
  const { f, sink: before, clock } = await setup(t)
  const rows = makeRows(10)
  // Before the crash: the first 6 rows were delivered but the cursor was not saved.
  await before.write(rows.slice(0, 6), signal())
  t.equal(f.feed(CH.id).length, 6)
  const callsBefore = f.bulkCalls().length

  clock.advance(60_000) // the restart takes a minute
  const after = createThingSpeakSink(cfg({ FERRY_THINGSPEAK_URL: f.url, FERRY_THINGSPEAK_CHANNEL_ID: CH.id, FERRY_THINGSPEAK_WRITE_KEY: CH.writeKey, FERRY_THINGSPEAK_READ_KEY: CH.readKey }), clock)
  t.teardown(() => after.close())
  await after.resume(signal())
  const r = await after.write(rows, signal())
  t.same(r.accepted, rows.map((x) => x.id), 'the whole replayed batch counts as delivered')
  t.same(delivered(f.feed(CH.id)).map((d) => d.pot), rows.map((x) => x.pot), 'each reading once, in order')
  const sent = f.bulkCalls().slice(callsBefore)
  t.equal(sent.length, 1)
  t.equal((sent[0]?.body as { updates: unknown[] }).updates.length, 4, 'only the 4 missing entries were sent')
})

for (const noAccessStatus of [200, 400] as const) {
  t.test(`a private channel without its read key (last.json ${noAccessStatus} "-1") stops the sink naming FERRY_THINGSPEAK_READ_KEY; nothing is sent`, async (t) => {
    const clock = virtualClock()
    const f = await startFakeThingSpeak(t, { channels: [CH], now: clock.now, noAccessStatus })
    f.seed(CH.id, [{ created_at: '2025-12-31T00:00:00Z', field1: 1, status: 'dev1' }])
    const noKey = createThingSpeakSink(cfg({ FERRY_THINGSPEAK_URL: f.url, FERRY_THINGSPEAK_CHANNEL_ID: CH.id, FERRY_THINGSPEAK_WRITE_KEY: CH.writeKey }), clock)
    t.teardown(() => noKey.close())
    await noKey.resume(signal())
    t.equal(f.requests.find((r) => r.path.endsWith('/feeds/last.json'))?.status, noAccessStatus, 'the read was refused')
    const rows = makeRows(3)
    const r = await noKey.write(rows, signal())
    assertSettlement(t, rows, r)
    t.same(r.retryable, rows.map((x) => x.id), 'every reading stays buffered')
    t.equal(r.errorClass, 'read_refused')
    t.notOk(r.stopCode, 'a refused key: FERRY_ERR_SINK_AUTH, the default stop code')
    t.match(r.authError, /ThingSpeak refused to read channel 1001 .*FERRY_THINGSPEAK_READ_KEY is not set.*FERRY_THINGSPEAK_ON_UNREADABLE=continue.*sent again/)
    t.equal(f.bulkCalls().length, 0, 'nothing was sent that a restart could not recognise')
  })
}

t.test('a wrong read key, or a mapped channel without one, names the setting to fix', async (t) => {
  const clock = virtualClock()
  const f = await startFakeThingSpeak(t, { channels: [CH, { id: '2002', writeKey: 'KEYDEV2', readKey: 'READDEV2' }], now: clock.now })
  const wrong = createThingSpeakSink(cfg({ FERRY_THINGSPEAK_URL: f.url, FERRY_THINGSPEAK_CHANNEL_ID: CH.id, FERRY_THINGSPEAK_WRITE_KEY: CH.writeKey, FERRY_THINGSPEAK_READ_KEY: 'WRONG' }), clock)
  t.teardown(() => wrong.close())
  await wrong.resume(signal())
  t.match((await wrong.write(makeRows(1), signal())).authError, /FERRY_THINGSPEAK_READ_KEY is not its Read API key/)
  const mapped = createThingSpeakSink(cfg({ FERRY_THINGSPEAK_URL: f.url, FERRY_THINGSPEAK_CHANNELS: 'dev1=2002:KEYDEV2' }), clock)
  t.teardown(() => mapped.close())
  await mapped.resume(signal())
  t.match((await mapped.write(makeRows(1), signal())).authError, /channel 2002 .*its read key in FERRY_THINGSPEAK_CHANNELS .*is not set/)
})

t.test('FERRY_THINGSPEAK_ON_UNREADABLE=continue delivers without the read key and skips nothing', async (t) => {
  const { f } = await setup(t, {})
  const rows = makeRows(2)
  f.seed(CH.id, [{ created_at: new Date(Math.floor((rows[1] as BufferedReading).tsUs / 1e6) * 1000).toISOString(), field1: 1, status: 'dev2' }])
  const noKey = createThingSpeakSink(cfg({ FERRY_THINGSPEAK_URL: f.url, FERRY_THINGSPEAK_CHANNEL_ID: CH.id, FERRY_THINGSPEAK_WRITE_KEY: CH.writeKey, FERRY_THINGSPEAK_ON_UNREADABLE: 'continue' }))
  t.teardown(() => noKey.close())
  await noKey.resume(signal())
  t.same((await noKey.write(rows, signal())).accepted, [1, 2])
  t.equal((f.bulkCalls(CH.id)[0]?.body as { updates: unknown[] }).updates.length, 2, 'nothing was skipped (it could not be known)')
})

t.test('"-1" from an empty channel is not a refusal: feeds.json tells them apart, and the sink delivers', async (t) => {
  const clock = virtualClock()
  const f = await startFakeThingSpeak(t, { channels: [CH, { id: '3003', writeKey: 'KEYPUBLIC' }], now: clock.now })
  const envs: Record<string, string>[] = [
    { FERRY_THINGSPEAK_CHANNEL_ID: CH.id, FERRY_THINGSPEAK_WRITE_KEY: CH.writeKey, FERRY_THINGSPEAK_READ_KEY: CH.readKey },
    { FERRY_THINGSPEAK_CHANNEL_ID: '3003', FERRY_THINGSPEAK_WRITE_KEY: 'KEYPUBLIC' },
  ]
  for (const env of envs) {
    const sink = createThingSpeakSink(cfg({ FERRY_THINGSPEAK_URL: f.url, ...env }), clock)
    t.teardown(() => sink.close())
    await sink.resume(signal())
    t.equal(f.requests.filter((r) => r.path === `/channels/${env.FERRY_THINGSPEAK_CHANNEL_ID}/feeds/last.json`).at(-1)?.status, 200, 'last.json answered 200')
    const rows = makeRows(2)
    const r = await sink.write(rows, signal())
    t.notOk(r.authError, `channel ${env.FERRY_THINGSPEAK_CHANNEL_ID} is empty, not refused`)
    t.same(r.accepted, [1, 2])
  }
})

t.test('one channel per device, with the default channel for the rest', async (t) => {
  const clock = virtualClock()
  const f = await startFakeThingSpeak(t, { channels: [CH, { id: '2002', writeKey: 'KEYDEV2' }], now: clock.now })
  const sink = createThingSpeakSink(cfg({
    FERRY_THINGSPEAK_URL: f.url,
    FERRY_THINGSPEAK_CHANNEL_ID: CH.id,
    FERRY_THINGSPEAK_WRITE_KEY: CH.writeKey,
    FERRY_THINGSPEAK_CHANNELS: 'dev2=2002:KEYDEV2',
  }), clock)
  t.teardown(() => sink.close())
  const rows = makeRows(6, { devices: ['dev1', 'dev2', 'dev3'] })
  t.same((await sink.write(rows, signal())).accepted, rows.map((x) => x.id))
  t.same(f.feed('2002').map((e) => e.status), ['dev2', 'dev2'])
  t.same(f.feed(CH.id).map((e) => e.status), ['dev1', 'dev3', 'dev1', 'dev3'])
})

t.test('a device with no channel is dead-lettered with a reason; the others are delivered', async (t) => {
  const clock = virtualClock()
  const f = await startFakeThingSpeak(t, { channels: [{ id: '2002', writeKey: 'KEYDEV2' }], now: clock.now })
  const sink = createThingSpeakSink(cfg({ FERRY_THINGSPEAK_URL: f.url, FERRY_THINGSPEAK_CHANNELS: 'dev2=2002:KEYDEV2' }), clock)
  t.teardown(() => sink.close())
  const rows = makeRows(4)
  const r = await sink.write(rows, signal())
  t.same(r.accepted, [2, 4])
  t.match(r.rejected, [{ id: 1, reason: /no ThingSpeak channel for device dev1/ }, { id: 3 }])
})

t.test('config problems are reported by name', async (t) => {
  t.throws(() => createThingSpeakSink(cfg({})), { code: 'FERRY_ERR_CONFIG', message: /FERRY_THINGSPEAK_CHANNEL_ID/ })
  t.throws(() => createThingSpeakSink(cfg({ FERRY_THINGSPEAK_CHANNEL_ID: '5' })), { code: 'FERRY_ERR_CONFIG', message: /FERRY_THINGSPEAK_WRITE_KEY/ })
  t.throws(() => cfg({ FERRY_THINGSPEAK_CHANNELS: 'dev1=abc' }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_THINGSPEAK_CHANNELS/ })
  t.throws(() => cfg({ FERRY_THINGSPEAK_WINDOW_MS: '1500' }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_THINGSPEAK_WINDOW_MS/ })
  t.throws(() => cfg({ FERRY_THINGSPEAK_MAX_ENTRIES: '20000' }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_THINGSPEAK_MAX_ENTRIES/ })
})

t.test('FERRY_THINGSPEAK_WRITERS=2: two replicas writing one channel together stay within its interval', async (t) => {
  const clock = virtualClock()
  const f = await startFakeThingSpeak(t, { channels: [CH], now: clock.now, intervalMs: 15_000 })
  const replicas = [0, 1].map(() => {
    const sink = createThingSpeakSink(cfg({ FERRY_THINGSPEAK_URL: f.url, FERRY_THINGSPEAK_CHANNEL_ID: CH.id, FERRY_THINGSPEAK_WRITE_KEY: CH.writeKey, FERRY_THINGSPEAK_READ_KEY: CH.readKey, FERRY_THINGSPEAK_WRITERS: '2' }), clock)
    t.teardown(() => sink.close())
    return sink
  })
  // Turn by turn, as two drainers on one shared clock: each replica's own spacing (2 x 15 s), offset
  // by half of it, leaves 15 s between any two calls to the channel.
  let firstId = 1
  for (let round = 0; round < 4; round++) {
    for (const sink of replicas) {
      const rows = makeRows(2, { firstId, startUs: Date.UTC(2026, 0, 1) * 1000 + firstId * 60e6 })
      firstId += 2
      t.same((await sink.write(rows, signal())).accepted, rows.map((r) => r.id))
      if (round === 0 && sink === replicas[0]) clock.advance(15_000)
    }
  }
  t.equal(f.bulkCalls(CH.id).length, 8)
  assertSpacing(t, f, CH.id, 15_000)
  for (const sink of replicas) {
    const own = f.bulkCalls(CH.id).filter((_, i) => i % 2 === replicas.indexOf(sink))
    for (let i = 1; i < own.length; i++) t.ok(own[i]!.at - own[i - 1]!.at >= 30_000, 'each replica waits twice the interval')
  }
})

t.test('FERRY_THINGSPEAK_WRITERS=2: a restarted replica skips nothing by the channel\'s last entry (another replica may have written it)', async (t) => {
  const { f, sink: other, clock } = await setup(t)
  const mine = makeRows(3, { firstId: 1, startUs: Date.UTC(2026, 0, 1) * 1000 })
  const theirs = makeRows(1, { firstId: 1, startUs: Date.UTC(2026, 0, 2) * 1000 })
  await other.write(theirs, signal()) // the other replica wrote a later entry
  clock.advance(60_000)
  const restarted = createThingSpeakSink(cfg({ FERRY_THINGSPEAK_URL: f.url, FERRY_THINGSPEAK_CHANNEL_ID: CH.id, FERRY_THINGSPEAK_WRITE_KEY: CH.writeKey, FERRY_THINGSPEAK_READ_KEY: CH.readKey, FERRY_THINGSPEAK_WRITERS: '2' }), clock)
  t.teardown(() => restarted.close())
  await restarted.resume(signal())
  t.same((await restarted.write(mine, signal())).accepted, mine.map((r) => r.id))
  t.equal(f.feed(CH.id).length, 4, 'its own three readings reached the channel, older than the other replica\'s entry')
})
