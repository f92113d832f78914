// The gateway HTTP API against a real gateway (real mosquitto, real SQLite), driven with inject().
// Every route: success, 400 on bad input, 401 without the token, 404 for unknown devices, the rate
// limit, and the refusal to build a state-changing API without a token.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import type { MqttClient } from 'mqtt'
import { startTestBroker, type TestBroker } from '../../../test/helpers/mosquitto.js'
import { tempDir } from '../../../test/helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings } from '../../../test/helpers/gateway.js'
import { waitUntil } from '../../../test/helpers/wait.js'
import { loadCoreConfig } from '../core-config.js'
import { startGateway, type Gateway } from '../gateway.js'
import { silentLogger } from '../../../common/src/logger.js'
import { hasCode } from '../../../common/src/errors.js'
import { buildApp, type ApiDeps } from './app.js'
import type { Sink } from '../sinks/types.js'
import { apiMode } from './config.js'

/** What the helpers need from a tap test. */
interface TT {
  teardown(fn: () => unknown): void
}

const TOKEN = 'test-token-0123456789abcdef'
const auth = { authorization: `Bearer ${TOKEN}` }

interface Rig {
  broker: TestBroker
  gw: Gateway
  app: FastifyInstance
  dev: MqttClient
}

/** A broker, a gateway with its buffer (and `sinks`, none by default), the app, and device dev1 that has reported once. */
async function rig(t: TT, deps: Partial<ApiDeps> = {}, sinks: Sink[] = []): Promise<Rig> {
  const broker = await startTestBroker(t)
  const gw = startGateway(loadCoreConfig(gatewayEnv(broker, tempDir(t), { FERRY_DRAIN_RETRY_MIN_MS: '20', FERRY_DRAIN_RETRY_MAX_MS: '100' })), { log: silentLogger, sinks })
  t.teardown(() => gw.stop())
  await waitUntil(() => gw.state.brokerConnected, 'the gateway to connect')
  const app = await buildApp({ gateway: gw, token: TOKEN, ...deps })
  t.teardown(() => app.close())
  const dev = await deviceClient(t, broker, 'dev1')
  await dev.publishAsync('sensors/dev1/status', 'online', { qos: 1, retain: true })
  await publishReadings(dev, 'dev1', 1, 20, { window: 1 })
  await waitUntil(() => (gw.buffer.db.prepare("SELECT count(*) AS n FROM readings WHERE device = 'dev1'").get() as { n: number }).n === 20, '20 readings stored')
  return { broker, gw, app, dev }
}

t.test('GET /healthz is 200 while the database is writable and the broker connected, 503 with reasons otherwise', async (t) => {
  const { broker, gw, app } = await rig(t)
  const ok = await app.inject('/healthz')
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { ok: true, checks: { database: 'ok', broker: 'ok', drainers: 'ok' }, reasons: [] })
  await broker.stop()
  await waitUntil(() => !gw.state.brokerConnected, 'the gateway to notice the broker is gone')
  const down = await app.inject('/healthz')
  t.equal(down.statusCode, 503)
  t.equal(down.json().checks.broker, 'not connected')
  t.match(down.json().reasons, [/broker/])
  gw.state.ingestPaused = { reason: 'disk-full', code: 'FERRY_ERR_BUFFER_FULL_DISK', since: Date.now(), error: 'SQLITE_FULL: database or disk is full' }
  const full = await app.inject('/healthz')
  t.match(full.json().checks.database, /not writable \(SQLITE_FULL/)
  gw.state.ingestPaused = { reason: 'backpressure', code: 'FERRY_ERR_BUFFER_BACKPRESSURE', since: Date.now(), error: 'the buffer is full of undelivered readings' }
  const pushedBack = await app.inject('/healthz')
  t.equal(pushedBack.json().checks.database, 'ok')
  t.match(pushedBack.json().reasons, [/paused by backpressure/])
  gw.state.ingestPaused = null
})

t.test('a failed drainer (its loop threw: database is locked) shows in /healthz (503), /metrics and /api/status until it recovers', async (t) => {
  const sink: Sink = { name: 'stub', maxBatch: 100, write: async (b) => ({ accepted: b.map((r) => r.id), retryable: [], rejected: [] }), close: async () => {} }
  const { gw, app } = await rig(t, {}, [sink])
  const prune = gw.buffer.prune.bind(gw.buffer)
  let locked = true
  gw.buffer.prune = () => {
    if (locked) throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })
    return prune()
  }
  await waitUntil(() => gw.drainers[0]!.state === 'failed', 'the drainer to fail')
  const health = await app.inject('/healthz')
  t.equal(health.statusCode, 503)
  t.equal(health.json().checks.drainers, 'failed: stub')
  t.match(health.json().reasons, [/^drainer stub: failed \(SQLITE_BUSY: database is locked\)/])
  const metrics = (await app.inject('/metrics')).body
  t.match(metrics, /^ferry_drainer_failed\{sink="stub"\} 1$/m)
  t.match(metrics, /^ferry_sink_up\{sink="stub"\} 0$/m)
  t.match(metrics, /^ferry_sink_errors_total\{sink="stub",class="failed"\} [1-9]/m)
  t.match((await app.inject('/api/status')).json().drainers, [{ name: 'stub', state: 'failed', lastError: { class: 'failed', message: 'SQLITE_BUSY: database is locked' } }])
  locked = false
  await waitUntil(async () => (await app.inject('/healthz')).statusCode === 200, '/healthz ok again')
  t.match((await app.inject('/metrics')).body, /^ferry_drainer_failed\{sink="stub"\} 0$/m)
  t.match((await app.inject('/api/status')).json().drainers, [{ name: 'stub', state: 'idle', lastError: null }])
})

t.test('GET /metrics serves Prometheus text with ingest, sink, commit and LED counters', async (t) => {
  const { app } = await rig(t)
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  for (const name of ['ferry_drainer_failed', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'ferry_messages_received_total', 'ferry_messages_acked_total', 'ferry_buffer_dropped_total', 'ferry_dead_letters_total', 'ferry_sink_backlog_rows', 'ferry_sink_oldest_unsent_age_seconds', 'ferry_sink_errors_total', 'ferry_buffer_commit_seconds_bucket', 'ferry_led_commands_total', 'ferry_ingest_paused', 'ferry_buffer_expired_total', 'ferry_buffer_runway_seconds', 'ferry_sink_drain_eta_seconds']) {
    t.match(res.body, new RegExp(`^# TYPE ${name.replace(/_bucket$/, '')} `, 'm'), name)
  }
  t.match(res.body, /^ferry_messages_acked_total 21$/m, '20 readings and one status message')
  t.match(res.body, /^ferry_ingest_paused\{reason="backpressure"\} 0$/m, 'not paused')
})

t.test('GET /api/status reports the buffer, sinks, gateway, commands and API mode', async (t) => {
  const { app } = await rig(t)
  const res = await app.inject('/api/status')
  t.equal(res.statusCode, 200)
  const s = res.json()
  t.same(s.buffered.rows, 20)
  t.same(s.sinks, [])
  t.equal(s.gateway.brokerConnected, true)
  t.equal(s.gateway.ingestPaused, null)
  t.same(s.expired, { total: 0, byDevice: {} })
  t.match(s.runway, { onFull: 'drop-oldest', freeRows: 1_000_000 - 20 })
  t.ok(s.runway.ingestPerS > 0 && s.runway.seconds > 0, 'readings came in, so the runway is finite')
  t.same(s.commands, { byState: { pending: 0, published: 0, confirmed: 0, superseded: 0, expired: 0, rejected: 0, failed: 0 }, talkback: null })
  t.same(s.api, { readOnly: false })
})

t.test('GET /api/devices shows online state, last reading and LED state', async (t) => {
  const { gw, app, dev } = await rig(t)
  await dev.publishAsync('sensors/dev1/led/state', JSON.stringify({ brightness: 40 }), { qos: 1, retain: true })
  await waitUntil(() => gw.buffer.db.prepare("SELECT led_state FROM devices WHERE device = 'dev1' AND led_state IS NOT NULL").get(), 'LED state stored')
  const res = await app.inject('/api/devices')
  t.equal(res.statusCode, 200)
  t.match(res.json().scope, { gateway: 'single', note: /every device message/ }, 'a single gateway says it sees everything')
  const [d] = res.json().devices
  t.equal(d.id, 'dev1')
  t.equal(d.online, true)
  t.match(d.lastReading, { seq: 20, boot: 1, pot: 20, switch: 0, led: 20 })
  t.same(d.led, { brightness: 40, cmd: null })
  t.equal(d.lastCommand, null)
  t.ok(Date.now() - d.lastSeen < 60_000)

  await dev.publishAsync('sensors/dev1/status', 'offline', { qos: 1, retain: true })
  await waitUntil(async () => (await app.inject('/api/devices/dev1')).json().online === false, 'the LWT to mark dev1 offline')
  t.equal((await app.inject('/api/devices/nobody')).statusCode, 404)
  const bad = await app.inject('/api/devices/Not%20A%20Device')
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'FERRY_ERR_API_BAD_REQUEST')
})

t.test('GET /api/devices/:id/readings returns readings after `since`, oldest first, in pages', async (t) => {
  const { app } = await rig(t)
  const all = (await app.inject('/api/devices/dev1/readings')).json()
  t.equal(all.readings.length, 20, 'default: the last 10 minutes')
  t.same(all.readings.map((r: { seq: number }) => r.seq), Array.from({ length: 20 }, (_, i) => i + 1))
  t.equal(all.more, false)
  const ts = all.readings.map((r: { ts: number }) => r.ts)
  t.same([...ts].sort((a, b) => a - b), ts, 'ordered by point time')

  const page = (await app.inject('/api/devices/dev1/readings?since=0&limit=5')).json()
  t.same(page.readings.map((r: { seq: number }) => r.seq), [1, 2, 3, 4, 5])
  t.equal(page.more, true)
  const next = (await app.inject(`/api/devices/dev1/readings?since=${page.readings[4].ts}&limit=100`)).json()
  t.ok(next.readings.every((r: { ts: number }) => r.ts > page.readings[4].ts), 'since is exclusive')
  t.equal(next.readings.at(-1).seq, 20)
  t.same((await app.inject(`/api/devices/dev1/readings?since=${Date.now() + 3_600_000}`)).json().readings, [], 'nothing after the future')

  for (const q of ['since=abc', 'since=-1', 'limit=0', 'limit=10001']) {
    const res = await app.inject(`/api/devices/dev1/readings?${q}`)
    t.equal(res.statusCode, 400, q)
    t.equal(res.json().code, 'FERRY_ERR_API_BAD_REQUEST', q)
  }
  t.equal((await app.inject('/api/devices/dev9/readings')).statusCode, 404)
})

t.test('POST /api/devices/:id/led needs the bearer token', async (t) => {
  const { app, gw } = await rig(t)
  const body = { brightness: 50 }
  for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: TOKEN }, { authorization: `Basic ${TOKEN}` }]) {
    const res = await app.inject({ method: 'POST', url: '/api/devices/dev1/led', payload: body, headers })
    t.equal(res.statusCode, 401, JSON.stringify(headers))
    t.equal(res.json().code, 'FERRY_ERR_API_UNAUTHORIZED')
  }
  t.same(gw.commands.list(), [], 'nothing was sent')
})

t.test('POST /api/devices/:id/led answers 400 to bad input and 404 to unknown devices', async (t) => {
  const { app } = await rig(t)
  for (const payload of [{}, { brightness: 101 }, { brightness: -1 }, { brightness: 50.5 }, { brightness: '50' }, { brightness: 50, extra: true }, { brightness: 50, ttlMs: 10 }]) {
    const res = await app.inject({ method: 'POST', url: '/api/devices/dev1/led', payload, headers: auth })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(res.json().code, 'FERRY_ERR_API_BAD_REQUEST')
  }
  const notJson = await app.inject({ method: 'POST', url: '/api/devices/dev1/led', payload: '{brightness', headers: { ...auth, 'content-type': 'application/json' } })
  t.equal(notJson.statusCode, 400)
  t.equal((await app.inject({ method: 'POST', url: '/api/devices/BAD/led', payload: { brightness: 1 }, headers: auth })).statusCode, 400)
  const unknown = await app.inject({ method: 'POST', url: '/api/devices/dev7/led', payload: { brightness: 1 }, headers: auth })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'FERRY_ERR_API_NOT_FOUND')
})

t.test('POST /api/devices/:id/led publishes a retained led/set the device receives, and the echo confirms it', async (t) => {
  const { app, dev, gw, broker } = await rig(t)
  await dev.subscribeAsync('sensors/dev1/led/set', { qos: 1 })
  const got = new Promise<{ payload: string; retain: boolean }>((resolve) => dev.once('message', (_topic, payload, packet) => resolve({ payload: payload.toString(), retain: packet.retain })))
  const before = Date.now()
  const res = await app.inject({ method: 'POST', url: '/api/devices/dev1/led', payload: { brightness: 65 }, headers: auth })
  t.equal(res.statusCode, 202)
  const rec = res.json()
  t.match(rec, { device: 'dev1', brightness: 65, source: 'api', state: 'published' })
  t.ok(rec.expiresAt >= before + 300_000 - 1000 && rec.expiresAt <= Date.now() + 300_000, 'default TTL 5 minutes')
  const msg = await got
  t.same(JSON.parse(msg.payload), { cmd: rec.cmd, brightness: 65, expires: rec.expiresAt })

  // A device that connects later gets it too: it is retained.
  await dev.endAsync()
  const again = await deviceClient(t, broker, 'dev1')
  const retained = new Promise<{ payload: string; retain: boolean }>((resolve) => again.once('message', (_topic, payload, packet) => resolve({ payload: payload.toString(), retain: packet.retain })))
  await again.subscribeAsync('sensors/dev1/led/set', { qos: 1 })
  const r = await retained
  t.equal(r.retain, true)
  t.equal(JSON.parse(r.payload).cmd, rec.cmd)

  await again.publishAsync('sensors/dev1/led/state', JSON.stringify({ cmd: rec.cmd, brightness: 65 }), { qos: 1, retain: true })
  await waitUntil(async () => (await app.inject('/api/devices/dev1')).json().lastCommand?.state === 'confirmed', 'the echo to confirm the command')
  const cmds = (await app.inject('/api/commands?device=dev1')).json().commands
  t.match(cmds[0], { cmd: rec.cmd, state: 'confirmed', confirmedBrightness: 65 })
  t.same((await app.inject('/api/devices/dev1')).json().led, { brightness: 65, cmd: rec.cmd })
  t.equal(gw.commands.counts().confirmed, 1)
})

t.test('POST /api/devices/:id/led is rate limited per client, wrong tokens included, with Retry-After', async (t) => {
  const { app } = await rig(t, { rateLimit: { max: 3, windowMs: 60_000 } })
  const post = (headers: Record<string, string>) => app.inject({ method: 'POST', url: '/api/devices/dev1/led', payload: { brightness: 10 }, headers })
  t.equal((await post({ authorization: 'Bearer wrong-token-0123456789' })).statusCode, 401)
  t.equal((await post(auth)).statusCode, 202)
  t.equal((await post(auth)).statusCode, 202)
  const limited = await post(auth)
  t.equal(limited.statusCode, 429)
  t.equal(limited.json().code, 'FERRY_ERR_API_RATE_LIMITED')
  t.ok(Number(limited.headers['retry-after']) > 0, 'Retry-After says when to come back')
  t.equal((await app.inject('/api/devices')).statusCode, 200, 'read routes are not limited')
})

t.test('POST /api/devices/:id/led answers 503 while the broker is down and records nothing', async (t) => {
  const { app, broker, gw } = await rig(t)
  await broker.stop()
  await waitUntil(() => !gw.state.brokerConnected, 'the gateway to notice the broker is gone')
  const res = await app.inject({ method: 'POST', url: '/api/devices/dev1/led', payload: { brightness: 10 }, headers: auth })
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'FERRY_ERR_API_BROKER_DOWN')
  t.same(gw.commands.list(), [])
})

t.test('a state-changing API without a token refuses to start; read-only mode serves no LED route', async (t) => {
  const { gw } = await rig(t)
  await t.rejects(buildApp({ gateway: gw }), { code: 'FERRY_ERR_CONFIG' })
  t.throws(() => apiMode({ FERRY_HTTP_PORT: 8080, FERRY_API_READ_ONLY: false }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_API_TOKEN is not set/ })
  t.same(apiMode({ FERRY_HTTP_PORT: 0, FERRY_API_READ_ONLY: false }), { kind: 'off' })
  t.same(apiMode({ FERRY_HTTP_PORT: 8080, FERRY_API_READ_ONLY: true }), { kind: 'read-only', transport: { scheme: 'http', exposed: false } })
  const ro = await buildApp({ gateway: gw, readOnly: true })
  t.teardown(() => ro.close())
  const res = await ro.inject({ method: 'POST', url: '/api/devices/dev1/led', payload: { brightness: 10 }, headers: auth })
  t.equal(res.statusCode, 404)
  t.equal((await ro.inject('/api/status')).json().api.readOnly, true)
  try {
    await buildApp({ gateway: gw, token: '' })
    t.fail('an empty token must not count')
  } catch (err) {
    t.ok(hasCode(err, 'FERRY_ERR_CONFIG'))
  }
})

t.test('the dashboard and uPlot are served locally with a same-origin CSP; nothing else from node_modules', async (t) => {
  const { app } = await rig(t)
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.headers['content-security-policy'], /default-src 'self'/)
  t.notMatch(page.body, /https?:\/\//, 'no external URL in the page')
  t.equal((await app.inject('/app.js')).statusCode, 200)
  t.equal((await app.inject('/style.css')).statusCode, 200)
  const js = await app.inject('/vendor/uplot/uPlot.iife.min.js')
  t.equal(js.statusCode, 200)
  t.match(js.body, /uPlot/)
  t.equal((await app.inject('/vendor/uplot/uPlot.min.css')).statusCode, 200)
  t.equal((await app.inject('/vendor/uplot/uPlot.cjs.js')).statusCode, 404)
  t.equal((await app.inject('/vendor/uplot/../package.json')).statusCode, 404)
  t.equal((await app.inject('/nope')).json().code, 'FERRY_ERR_API_NOT_FOUND')
})

t.test('every answer, the page, JSON, errors and 404s, forbids framing, sniffing and foreign or inline code', async (t) => {
  const { app } = await rig(t)
  const answers = {
    page: await app.inject('/'),
    script: await app.inject('/app.js'),
    status: await app.inject('/api/status'),
    unauthorized: await app.inject({ method: 'POST', url: '/api/devices/dev1/led', payload: { brightness: 1 } }),
    notFound: await app.inject('/nope'),
  }
  for (const [what, res] of Object.entries(answers)) {
    const csp = String(res.headers['content-security-policy'])
    t.match(csp, /(^|; )script-src 'self'(;|$)/, `${what}: scripts from this origin only, no inline ones`)
    t.match(csp, /(^|; )style-src 'self'(;|$)/, `${what}: styles from this origin only, no inline ones`)
    t.match(csp, /(^|; )frame-ancestors 'none'(;|$)/, `${what}: no framing (CSP)`)
    t.notMatch(csp, /unsafe-inline|unsafe-eval/, what)
    t.equal(res.headers['x-frame-options'], 'DENY', `${what}: no framing (old browsers)`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', what)
    t.equal(res.headers['referrer-policy'], 'no-referrer', what)
  }
  t.equal(answers.unauthorized.statusCode, 401)
  // What the CSP would break: the page must carry no inline script, style attribute or handler.
  const html = answers.page.body
  t.notMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline <script>')
  t.notMatch(html, /<style\b/i, 'no <style> element')
  t.notMatch(html, /\sstyle=/i, 'no style attribute')
  t.notMatch(html, /\son[a-z]+=/i, 'no inline event handler')
  t.notMatch(html, /<input[^>]*\bid="token"[^>]*\bname=/i, 'the token input has no name, so no form submission could carry it')
})
