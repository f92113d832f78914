// InfluxDB sink against the fake server: the 2.x and 3 APIs (which cannot run here), and the
// answers a local influxd will not give on demand (429/503 with Retry-After, 500, a proxy's 200,
// garbage, a dropped connection), plus TLS with a private CA and the per-version request shape.
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { loadEnv } from '../../../../common/src/config/env.js'
import { makePki } from '../../../../test/helpers/pki.js'
import { sinkContract, makeRows, assertSettlement, type Delivered } from '../../../../test/sink-contract.js'
import type { BufferedReading } from '../types.js'
import { influxConfigSchema, type InfluxConfig } from './config.js'
import { createInfluxSink } from './influxdb.js'
import { startFakeInflux, type FakeInflux, type FakeInfluxOptions } from '../../../../test/fakes/influxdb.js'

const signal = () => new AbortController().signal
const cfg = (env: Record<string, string>): InfluxConfig => loadEnv<InfluxConfig>(influxConfigSchema, { env, dotenvPath: '/nonexistent' })

const ENV: Record<1 | 2 | 3, Record<string, string>> = {
  1: { FERRY_INFLUX_VERSION: '1', FERRY_INFLUX_DB: 'ferry' },
  2: { FERRY_INFLUX_VERSION: '2', FERRY_INFLUX_ORG: 'acme', FERRY_INFLUX_BUCKET: 'sensors', FERRY_INFLUX_TOKEN: 'tok-2' },
  3: { FERRY_INFLUX_VERSION: '3', FERRY_INFLUX_DB: 'ferry', FERRY_INFLUX_TOKEN: 'tok-3' },
}
const FAKE: Record<1 | 2 | 3, FakeInfluxOptions> = {
  1: { version: 1 },
  2: { version: 2, org: 'acme', bucket: 'sensors', token: 'tok-2' },
  3: { version: 3, token: 'tok-3' },
}

function delivered(f: FakeInflux): Delivered[] {
  return f.points().map((p) => ({
    device: p.tags.device as string,
    pot: p.fields.pot as number,
    switch: p.fields.switch as number,
    led: (p.fields.led as number | undefined) ?? null,
    timeMs: Number(BigInt(p.ns) / 1_000_000n),
  }))
}

async function setup(t: Test, version: 1 | 2 | 3, env: Record<string, string> = {}, fake: Partial<FakeInfluxOptions> = {}) {
  const f = await startFakeInflux(t, { ...FAKE[version], ...fake })
  const sink = createInfluxSink(cfg({ FERRY_INFLUX_URL: f.url, ...ENV[version], ...env }))
  t.teardown(() => sink.close())
  return { f, sink }
}

/** 100 rows without led, except the one at `bad`, whose led will conflict with a float-typed led. */
function batchWithOneConflict(bad: number): BufferedReading[] {
  return makeRows(100, { spacingMs: 1000 }).map((r, i) => ({ ...r, led: i === bad ? 5 : null }))
}

for (const version of [2, 3] as const) {
  t.test(`v${version} contract`, async (t) => {
    sinkContract(t, async (t) => {
      const { f, sink } = await setup(t, version)
      return { sink, delivered: async () => delivered(f) }
    })
  })
}

t.test('request shape per version: path, query, auth scheme, gzip', async (t) => {
  const cases: { v: 1 | 2 | 3; env: Record<string, string>; fake: Partial<FakeInfluxOptions>; path: string; query: Record<string, string>; auth: string }[] = [
    { v: 1, env: { FERRY_INFLUX_USER: 'u1', FERRY_INFLUX_PASSWORD: 'p1' }, fake: { user: 'u1', password: 'p1' }, path: '/write', query: { db: 'ferry', precision: 'n' }, auth: `Basic ${Buffer.from('u1:p1').toString('base64')}` },
    { v: 2, env: {}, fake: {}, path: '/api/v2/write', query: { org: 'acme', bucket: 'sensors', precision: 'ns' }, auth: 'Token tok-2' },
    { v: 3, env: {}, fake: {}, path: '/api/v3/write_lp', query: { db: 'ferry', precision: 'nanosecond', accept_partial: 'true' }, auth: 'Bearer tok-3' },
  ]
  for (const c of cases) {
    const { f, sink } = await setup(t, c.v, c.env, c.fake)
    const rows = makeRows(2)
    t.same((await sink.write(rows, signal())).accepted, [1, 2], `v${c.v} accepted`)
    const req = f.writes()[0]
    t.equal(req?.path, c.path)
    t.same(req?.query, c.query)
    t.equal(req?.headers.authorization, c.auth)
    t.equal(req?.headers['content-encoding'], 'gzip')
    t.match(req?.text, /^telemetry,device=dev1 pot=0i,switch=0i,seq=1i,boot=1i 1767225600000123000\ntelemetry,device=dev2 /)
  }
})

t.test('bodies are really gzip and reuse one keep-alive connection', async (t) => {
  const { f, sink } = await setup(t, 2)
  for (let i = 0; i < 4; i++) await sink.write(makeRows(3, { firstId: 1 + 3 * i, startUs: 1_767_225_600_000_000 + i * 1e9 }), signal())
  t.equal(f.writes().length, 4)
  t.equal(f.connectionCount, 1, 'four writes over one connection')
  t.equal(f.points().length, 12)
  t.ok(f.writes().every((w) => w.headers['content-encoding'] === 'gzip' && w.text.startsWith('telemetry,')), 'every body was gzip and decoded to line protocol')
})

t.test('v2 422 partial write on one bad row of 100: exactly that row rejected, 99 accepted', async (t) => {
  const { f, sink } = await setup(t, 2)
  f.setFieldType('telemetry', 'led', 'float')
  const rows = batchWithOneConflict(63)
  const r = await sink.write(rows, signal())
  t.same(r.rejected.map((x) => x.id), [rows[63]?.id])
  t.match(r.rejected[0]?.reason, /^InfluxDB 422: unprocessable entity: failure writing points to database: partial write: field type conflict: input field "led"/)
  t.same(r.accepted, rows.filter((_, i) => i !== 63).map((x) => x.id))
  t.equal(f.points().length, 99)
  t.ok(f.writes()[0]?.status === 422, 'the first answer was a real 422 partial write')
})

t.test('v3 accept_partial=true: 400 partial write, bad row rejected, the rest accepted once', async (t) => {
  const { f, sink } = await setup(t, 3)
  f.setFieldType('telemetry', 'led', 'float')
  const rows = batchWithOneConflict(0)
  const r = await sink.write(rows, signal())
  assertSettlement(t, rows, r)
  t.same(r.rejected.map((x) => x.id), [1])
  t.match(r.rejected[0]?.reason, /^InfluxDB 400: partial write of line protocol occurred \(line 1: invalid field value in line protocol for field 'led'/)
  t.same(r.accepted, rows.slice(1).map((x) => x.id))
  t.equal(f.points().length, 99)
  t.equal(f.writes().length, 1, 'the lines the answer named were mapped to rows: nothing re-sent')
})

t.test('v3 accept_partial=false: the whole batch is refused, bisect still isolates the row', async (t) => {
  const { f, sink } = await setup(t, 3, { FERRY_INFLUX_ACCEPT_PARTIAL: 'false' })
  f.setFieldType('telemetry', 'led', 'float')
  const rows = batchWithOneConflict(99)
  const r = await sink.write(rows, signal())
  t.equal(f.writes()[0]?.query.accept_partial, 'false')
  t.same(r.rejected.map((x) => x.id), [100])
  t.match(r.rejected[0]?.reason, /line protocol parsing error/)
  t.same(r.accepted, rows.slice(0, 99).map((x) => x.id))
  t.equal(f.points().length, 99)
})

t.test('429 with Retry-After seconds keeps every row and passes the pause on', async (t) => {
  const { f, sink } = await setup(t, 2)
  f.fail({ status: 429, headers: { 'retry-after': '30', 'content-type': 'application/json' }, body: '{"code":"too many requests","message":"org exceeded write limits"}' })
  const rows = makeRows(10)
  const r = await sink.write(rows, signal())
  t.same(r.accepted, [])
  t.same(r.retryable, rows.map((x) => x.id))
  t.equal(r.retryAfterMs, 30_000)
  t.equal(r.errorClass, 'http_429')
  t.match(r.errorMessage, /too many requests: org exceeded write limits/)
  t.same(f.points(), [])
  t.same((await sink.write(rows, signal())).accepted, rows.map((x) => x.id), 'delivered once the server is back')
  t.equal(f.points().length, 10)
})

t.test('503 with Retry-After as an HTTP date keeps every row', async (t) => {
  const { f, sink } = await setup(t, 3)
  f.fail({ status: 503, headers: { 'retry-after': new Date(Date.now() + 120_000).toUTCString() }, body: 'service unavailable' })
  const rows = makeRows(4)
  const r = await sink.write(rows, signal())
  t.same(r.retryable, rows.map((x) => x.id))
  t.equal(r.errorClass, 'http_503')
  t.ok(r.retryAfterMs !== undefined && r.retryAfterMs > 110_000 && r.retryAfterMs <= 120_000, `retryAfterMs ${r.retryAfterMs}`)
})

t.test('500 keeps every row (retryable, class http_5xx)', async (t) => {
  const { f, sink } = await setup(t, 1)
  f.fail({ status: 500, body: '{"error":"timeout"}' })
  const rows = makeRows(4)
  const r = await sink.write(rows, signal())
  t.same(r.retryable, rows.map((x) => x.id))
  t.equal(r.errorClass, 'http_5xx')
  t.same(r.accepted, [])
})

t.test('v1: a 200 (e.g. a proxy page) is not a write; rows stay retryable', async (t) => {
  const { f, sink } = await setup(t, 1)
  f.fail({ status: 200, body: '<html>welcome to the captive portal</html>' })
  const r = await sink.write(makeRows(3), signal())
  t.same(r.accepted, [])
  t.same(r.retryable, [1, 2, 3])
  t.equal(r.errorClass, 'http_200')
})

t.test('garbage answers never drop rows: 404 page (stops the sink), 302, 405', async (t) => {
  const { f, sink } = await setup(t, 2)
  f.fail({ status: 404, body: '<html>not here</html>' })
  f.fail({ status: 302, headers: { location: 'https://login.example/' } })
  f.fail({ status: 405, body: '' })
  for (const cls of ['endpoint_missing', 'http_3xx', 'http_4xx']) {
    const r = await sink.write(makeRows(2), signal())
    t.same(r.retryable, [1, 2], cls)
    t.same(r.rejected, [])
    t.equal(r.errorClass, cls)
    t.equal(Boolean(r.authError), cls === 'endpoint_missing', 'only the 404 stops the sink')
  }
  t.same((await sink.write(makeRows(2), signal())).accepted, [1, 2])
})

t.test('401 with a wrong token: authError naming the setting, nothing accepted', async (t) => {
  const { f, sink } = await setup(t, 2, { FERRY_INFLUX_TOKEN: 'stale' })
  const rows = makeRows(5)
  const r = await sink.write(rows, signal())
  t.same(r.accepted, [])
  t.same(r.retryable, rows.map((x) => x.id))
  t.match(r.authError, /InfluxDB refused the credentials \(http_401\) at http:\/\/127\.0\.0\.1:\d+: unauthorized: unauthorized access; check FERRY_INFLUX_TOKEN/)
  t.same(f.points(), [])
})

t.test('403 (token without write permission) is an auth error too', async (t) => {
  const { f, sink } = await setup(t, 3)
  f.fail({ status: 403, body: '{"error":"forbidden"}' })
  const r = await sink.write(makeRows(2), signal())
  t.equal(r.errorClass, 'http_403')
  t.ok(r.authError)
  t.same(r.retryable, [1, 2])
})

t.test('413 from the server splits the batch until it fits; all rows delivered once', async (t) => {
  const { f, sink } = await setup(t, 3, { FERRY_INFLUX_GZIP: 'false' }, { maxBodyBytes: 2000 })
  const rows = makeRows(100, { spacingMs: 1000 })
  const r = await sink.write(rows, signal())
  t.same(r.accepted, rows.map((x) => x.id))
  t.same(r.rejected, [])
  t.equal(f.points().length, 100)
  t.ok(f.writes().some((w) => w.status === 413), 'the server did answer 413')
})

t.test('a single row larger than the server accepts is rejected, the rest delivered', async (t) => {
  const { f, sink } = await setup(t, 2, { FERRY_INFLUX_GZIP: 'false' }, { maxBodyBytes: 120 })
  const rows = makeRows(3).map((r, i) => (i === 1 ? { ...r, device: 'd'.repeat(200) } : r))
  const r = await sink.write(rows, signal())
  t.same(r.accepted, [1, 3])
  t.match(r.rejected, [{ id: 2, reason: /larger than the server accepts in one request \(413\)/ }])
  t.equal(f.points().length, 2)
})

t.test('a dropped connection makes write throw; nothing is settled', async (t) => {
  const { f, sink } = await setup(t, 2)
  f.hangUp()
  await t.rejects(sink.write(makeRows(3), signal()), { code: 'FERRY_ERR_SINK', message: /InfluxDB request POST http:\/\/127\.0\.0\.1:\d+\/api\/v2\/write failed/ })
  t.same(f.points(), [])
})

t.test('a dropped connection after progress reports the delivered part and keeps the rest', async (t) => {
  const { f, sink } = await setup(t, 2, { FERRY_INFLUX_GZIP: 'false', FERRY_INFLUX_MAX_BODY_BYTES: '1024' })
  const rows = makeRows(40, { spacingMs: 1000 })
  // First chunk goes through, the second request is dropped.
  let n = 0
  const orig = f.requests.push.bind(f.requests)
  f.requests.push = (...items) => {
    if (++n === 2) f.hangUp()
    return orig(...items)
  }
  const r = await sink.write(rows, signal())
  t.ok(r.accepted.length > 0 && r.accepted.length < 40, `accepted ${r.accepted.length}`)
  t.same([...r.accepted, ...r.retryable], rows.map((x) => x.id), 'accepted prefix, retryable suffix')
  t.equal(r.errorClass, 'network')
  t.equal(f.points().length, r.accepted.length)
})

t.test('the body limit counts bytes, not characters, when the measurement is not ASCII', async (t) => {
  const limit = 1024
  const { f, sink } = await setup(t, 2, { FERRY_INFLUX_GZIP: 'false', FERRY_INFLUX_MAX_BODY_BYTES: String(limit), FERRY_INFLUX_MEASUREMENT: 'é'.repeat(30) })
  const r = await sink.write(makeRows(40), signal())
  t.equal(r.accepted.length, 40)
  t.ok(f.requests.length > 1, `split into ${f.requests.length} requests`)
  const sizes = f.requests.map((q) => Buffer.byteLength(q.text))
  t.ok(sizes.every((b) => b <= limit), `every body within ${limit} bytes: ${sizes.join(', ')}`)
  t.ok(f.requests.some((q) => Buffer.byteLength(q.text) > q.text.length), 'the bodies hold multi-byte characters')
})

t.test('a server behind a private CA is trusted with FERRY_INFLUX_CA, refused without it', async (t) => {
  const pki = await makePki(t, [])
  const tls = { cert: readFileSync(pki.files.serverCert), key: readFileSync(pki.files.serverKey) }
  const f = await startFakeInflux(t, { ...FAKE[2], tls })
  t.match(f.url, /^https:\/\/localhost:/)
  const trusted = createInfluxSink(cfg({ FERRY_INFLUX_URL: f.url, ...ENV[2], FERRY_INFLUX_CA: pki.files.caCert }))
  t.teardown(() => trusted.close())
  t.same((await trusted.write(makeRows(2), signal())).accepted, [1, 2])
  const untrusted = createInfluxSink(cfg({ FERRY_INFLUX_URL: f.url, ...ENV[2] }))
  t.teardown(() => untrusted.close())
  await t.rejects(untrusted.write(makeRows(2), signal()), { code: 'FERRY_ERR_SINK' })
})

// --- Hardening, point 6: answers of real services that made the sink stall or over-count ---

const CREATED_201: { version: 2 | 3; bad: number; reason: RegExp; shape: string }[] = [
  { version: 3, bad: 41, reason: /^InfluxDB 201: partial write of line protocol occurred \(line 42: invalid field value/, shape: '3 Core data[]' },
  { version: 2, bad: 99, reason: /^InfluxDB 201: partial write \(line 100: field type conflict/, shape: 'Cloud Serverless "error parsing line N (1-based)"' },
]
for (const c of CREATED_201) {
  t.test(`v${c.version} answers 201 for a partial write (${c.shape}): the rows it names are dead-lettered, not counted as delivered`, async (t) => {
    const { f, sink } = await setup(t, c.version, {}, { partialWrite: 'created-201' })
    f.setFieldType('telemetry', 'led', 'float')
    const rows = batchWithOneConflict(c.bad)
    const r = await sink.write(rows, signal())
    assertSettlement(t, rows, r)
    t.equal(f.writes()[0]?.status, 201, 'the server did answer 201')
    t.same(r.rejected.map((x) => x.id), [rows[c.bad]?.id])
    t.match(r.rejected[0]?.reason, c.reason)
    t.same(r.accepted, rows.filter((_, i) => i !== c.bad).map((x) => x.id))
    t.equal(f.points().length, 99)
    t.equal(f.writes().length, 1, 'one request: the named line was mapped to its row')
  })
}

t.test('a 201 that names no line is bisected: the refused row is found, the others delivered once', async (t) => {
  const { f, sink } = await setup(t, 3, {}, { partialWrite: 'created-201-opaque' })
  f.setFieldType('telemetry', 'led', 'float')
  const rows = batchWithOneConflict(7)
  const r = await sink.write(rows, signal())
  assertSettlement(t, rows, r)
  t.same(r.rejected.map((x) => x.id), [8])
  t.same(r.accepted, rows.filter((_, i) => i !== 7).map((x) => x.id))
  t.equal(f.points().length, 99)
  t.ok(f.writes().length > 1, 'bisected')
})

t.test('a missing database (1.x 404) or bucket (2.x 404) keeps every row, retried with class target_missing', async (t) => {
  const one = await setup(t, 1, { FERRY_INFLUX_DB: 'nope' })
  const two = await setup(t, 2, { FERRY_INFLUX_BUCKET: 'nope' })
  for (const [{ sink }, hint] of [[one, /CREATE DATABASE/], [two, /FERRY_INFLUX_BUCKET/]] as const) {
    const rows = makeRows(4)
    const r = await sink.write(rows, signal())
    t.same(r.retryable, rows.map((x) => x.id))
    t.same(r.rejected, [])
    t.notOk(r.authError, 'not a stop: it resumes by itself once the database exists')
    t.equal(r.errorClass, 'target_missing')
    t.match(r.errorMessage, hint)
  }
})

t.test('an unknown retention policy (1.x 500) is target_missing and never isolated as a partial write', async (t) => {
  const { f, sink } = await setup(t, 1, { FERRY_INFLUX_RP: 'weekly', FERRY_INFLUX_BISECT_AFTER_500S: '2' })
  const rows = makeRows(8)
  for (let i = 0; i < 4; i++) {
    const r = await sink.write(rows, signal())
    t.same(r.rejected, [], `attempt ${i + 1}: nothing dead-lettered`)
    t.equal(r.errorClass, 'target_missing')
    t.match(r.errorMessage, /retention policy not found: weekly.*FERRY_INFLUX_RP/)
  }
  t.equal(f.writes().length, 4, 'one request per attempt, no bisecting')
})

t.test('1.x max-values-per-tag limit: the batch is kept and retried (server_limit), not bisected into dead letters', async (t) => {
  const { f, sink } = await setup(t, 1, {}, { maxValuesPerTag: 2 })
  const rows = makeRows(30, { devices: ['dev1', 'dev2', 'dev3'], spacingMs: 1000 })
  const r = await sink.write(rows, signal())
  assertSettlement(t, rows, r)
  t.same(r.rejected, [])
  t.same(r.retryable, rows.map((x) => x.id))
  t.equal(r.errorClass, 'server_limit')
  t.match(r.errorMessage, /max-values-per-tag limit exceeded \(2\/2\).*raise the limit/)
  t.equal(f.writes().length, 1, 'no bisecting')
})

t.test('3 column limit (422 partial write): kept and retried as server_limit', async (t) => {
  const { f, sink } = await setup(t, 3, {}, { maxColumnsPerTable: 5 })
  const rows = makeRows(6).map((r, i) => ({ ...r, led: i === 4 ? 9 : null }))
  const r = await sink.write(rows, signal())
  t.equal(f.writes()[0]?.status, 422)
  t.same(r.rejected, [])
  t.same(r.retryable, rows.map((x) => x.id))
  t.equal(r.errorClass, 'server_limit')
  t.match(r.errorMessage, /would exceed number of columns per table limit of 5 columns/)
})

t.test('points beyond the retention period are row errors: those rows dead-lettered, the recent ones delivered', async (t) => {
  const now = Date.parse('2026-01-01T12:00:00Z')
  const { f, sink } = await setup(t, 1, {}, { retentionMs: 3_600_000, now: () => now })
  const rows = makeRows(6, { startUs: (now - 3 * 3_600_000 - 1000) * 1000, spacingMs: 3_600_000 })
  const r = await sink.write(rows, signal())
  assertSettlement(t, rows, r)
  t.same(r.rejected.map((x) => x.id), [1, 2, 3])
  t.match(r.rejected[0]?.reason, /points beyond retention policy/)
  t.same(r.accepted, [4, 5, 6])
  t.equal(f.points().length, 3)
})

t.test('an older 2.x /write answering a partial write with 500: after N identical 500s the refused row is dead-lettered', async (t) => {
  const { f, sink } = await setup(t, 1, { FERRY_INFLUX_BISECT_AFTER_500S: '3' }, { partialWrite: 'legacy-500' })
  f.setFieldType('telemetry', 'led', 'float')
  const rows = batchWithOneConflict(20)
  for (let i = 1; i <= 2; i++) {
    const r = await sink.write(rows, signal())
    t.same(r.retryable, rows.map((x) => x.id), `attempt ${i}: kept`)
    t.equal(r.errorClass, 'http_5xx')
    t.match(r.errorMessage, new RegExp(`partial write: field type conflict.*the same 500 ${i} of 3 times`))
  }
  const r = await sink.write(rows, signal())
  assertSettlement(t, rows, r)
  t.same(r.rejected.map((x) => x.id), [21])
  t.match(r.rejected[0]?.reason, /^InfluxDB 500: internal error: unexpected error writing points to database: partial write: field type conflict.*answered 3 times/)
  t.same(r.accepted, rows.filter((_, i) => i !== 20).map((x) => x.id))
  t.equal(f.points().length, 99)
})

t.test('a 500 that every part of the batch gets is a server fault: probed briefly, every row kept', async (t) => {
  const { f, sink } = await setup(t, 2, { FERRY_INFLUX_BISECT_AFTER_500S: '2' })
  f.fail({ status: 500, body: '{"code":"internal error","message":"unexpected error writing points to database: engine: timeout"}' }, 1000)
  const rows = makeRows(64, { spacingMs: 1000 })
  await sink.write(rows, signal())
  const before = f.writes().length
  const r = await sink.write(rows, signal())
  t.same(r.rejected, [], 'nothing dead-lettered')
  t.same(r.retryable, rows.map((x) => x.id))
  t.match(r.errorMessage, /500 to every part of the batch.*server fault.*engine: timeout/)
  t.ok(f.writes().length - before <= Math.log2(64) + 5, `probing bounded: ${f.writes().length - before} requests (a full bisect would take 127)`)
})

t.test('FERRY_INFLUX_BISECT_AFTER_500S=0 retries a 500 forever, as before', async (t) => {
  const { f, sink } = await setup(t, 1, { FERRY_INFLUX_BISECT_AFTER_500S: '0' }, { partialWrite: 'legacy-500' })
  f.setFieldType('telemetry', 'led', 'float')
  const rows = batchWithOneConflict(3)
  for (let i = 0; i < 6; i++) t.same((await sink.write(rows, signal())).rejected, [])
  t.equal(f.writes().length, 6)
})

t.test('version 3 against InfluxDB Cloud Serverless/Dedicated (no /api/v3/write_lp): 404 stops the sink with FERRY_ERR_SINK_ENDPOINT', async (t) => {
  const f = await startFakeInflux(t, { ...FAKE[2] }) // Cloud Serverless speaks the v2 API only
  const sink = createInfluxSink(cfg({ FERRY_INFLUX_URL: f.url, ...ENV[3], FERRY_INFLUX_TOKEN: 'tok-2' }))
  t.teardown(() => sink.close())
  const rows = makeRows(5)
  const r = await sink.write(rows, signal())
  assertSettlement(t, rows, r)
  t.equal(f.requests[0]?.path, '/api/v3/write_lp')
  t.equal(f.requests[0]?.status, 404)
  t.same(r.retryable, rows.map((x) => x.id))
  t.equal(r.stopCode, 'FERRY_ERR_SINK_ENDPOINT')
  t.equal(r.errorClass, 'endpoint_missing')
  t.match(r.authError, /no write endpoint at POST http:\/\/127\.0\.0\.1:\d+\/api\/v3\/write_lp \(404: not found: path not found.*FERRY_INFLUX_VERSION=2/)
  t.equal(f.writes().length, 1, 'no retries inside write')
})

t.test('config problems are reported by name before anything connects', async (t) => {
  t.throws(() => createInfluxSink(cfg({ FERRY_INFLUX_VERSION: '2', FERRY_INFLUX_TOKEN: 'x' })), { code: 'FERRY_ERR_CONFIG', message: /FERRY_INFLUX_ORG, FERRY_INFLUX_BUCKET/ })
  t.throws(() => createInfluxSink(cfg({ FERRY_INFLUX_USER: 'u' })), { code: 'FERRY_ERR_CONFIG', message: /FERRY_INFLUX_PASSWORD/ })
  t.throws(() => createInfluxSink(cfg({ FERRY_INFLUX_CA: '/nonexistent/ca.pem' })), { code: 'FERRY_ERR_CONFIG', message: /\/nonexistent\/ca\.pem \(FERRY_INFLUX_CA\)/ })
  t.throws(() => cfg({ FERRY_INFLUX_VERSION: '4' }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_INFLUX_VERSION/ })
  t.throws(() => cfg({ FERRY_INFLUX_URL: 'ftp://x' }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_INFLUX_URL/ })
})
