// What a full or aged buffer does, with real processes: a `ferry gateway` against a real mosquitto,
// an InfluxDB sink that is down (nothing listens on its port) and then a real influxd on that port.
// FERRY_BUFFER_ON_FULL=backpressure must pause ingest instead of dropping, and deliver every reading
// exactly once when the sink returns; FERRY_BUFFER_MAX_AGE must expire old readings per device.
import t from 'tap'
import Database from 'better-sqlite3'
import { startTestBroker } from '../helpers/mosquitto.js'
import { startInfluxd } from '../helpers/influxd.js'
import { freePort } from '../helpers/ports.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings, spawnFerry } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'
import { ferryStatusJson, ferryStatusText, type StatusJson } from '../helpers/status.js'

function rows(db: string): number {
  const d = new Database(db, { readonly: true })
  try {
    return (d.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n
  } finally {
    d.close()
  }
}

/** A gateway's HTTP API on a free port, read-only (no token needed). */
async function apiEnv() {
  const port = await freePort()
  const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`)
  return {
    env: { FERRY_HTTP_PORT: String(port), FERRY_HTTP_HOST: '127.0.0.1', FERRY_API_READ_ONLY: 'true' },
    get,
    status: async () => (await (await get('/api/status')).json()) as StatusJson,
    metrics: async () => (await get('/metrics')).text(),
  }
}

t.test('backpressure: a full buffer pauses ingest and drops nothing; every reading arrives exactly once when the sink returns', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const influxPort = await freePort() // nothing listens here yet: InfluxDB is down
  const api = await apiEnv()
  const env = gatewayEnv(broker, dir, {
    FERRY_BUFFER_MAX_ROWS: '1000',
    FERRY_BUFFER_ON_FULL: 'backpressure',
    FERRY_INGEST_BATCH_MAX: '100', // backpressure needs room for a full group (1,024 by default)
    FERRY_SINKS: 'influxdb',
    FERRY_INFLUX_URL: `http://127.0.0.1:${influxPort}`,
    FERRY_INFLUX_DB: 'ferry',
    FERRY_INFLUX_BATCH_SIZE: '250',
    FERRY_DRAIN_RETRY_MIN_MS: '50',
    FERRY_DRAIN_RETRY_MAX_MS: '300',
    FERRY_DRAIN_PROGRESS_MS: '200',
    ...api.env,
  })
  const gw = spawnFerry(t, ['gateway'], env)
  await gw.waitFor(/connected to the broker/)
  // A simulated device takes 3,000 readings; the gateway takes what fits and then steps back, and
  // what it has not confirmed stays with the broker and the device.
  const sim = spawnFerry(t, ['device-sim', '--id', 'dev1', '--pki', broker.pki.dir, '--url', broker.url, '--state', `${dir}/sim`, '--rate', '500', '--count', '3000', '--buffer', '3000'], {})
  const entered = await gw.waitFor(/ingest paused/, 60_000)
  t.match(entered, /"level":40/, 'one WARN on entering')
  t.match(entered, /"code":"FERRY_ERR_BUFFER_BACKPRESSURE"/)

  const held = rows(env.FERRY_DB!)
  t.ok(held > 900 && held <= 1000, `the buffer holds what fits, at most FERRY_BUFFER_MAX_ROWS (${held})`)
  const cli = ferryStatusJson(env.FERRY_DB!)
  t.equal(cli.ingestPaused?.reason, 'backpressure', 'ferry status --json says paused by backpressure')
  t.same(cli.dropped, { total: 0, byDevice: {} }, 'nothing dropped')
  t.equal(cli.runway?.seconds, 0, 'no runway left')
  t.match(ferryStatusText(env.FERRY_DB!), /^ingest: +paused \(backpressure, FERRY_ERR_BUFFER_BACKPRESSURE\)/m)
  const s = await api.status()
  t.match(s.gateway!.ingestPaused, { reason: 'backpressure', code: 'FERRY_ERR_BUFFER_BACKPRESSURE' }, '/api/status says paused by backpressure')
  t.equal(s.gateway!.brokerConnected, false, 'disconnected on purpose: nothing more is taken')
  t.equal(s.dropped.total, 0)
  t.match(s.runway, { onFull: 'backpressure', seconds: 0 })
  t.equal(s.sinks[0]!.drainEtaS, null, 'the failing sink has no drain ETA')
  const metrics = await api.metrics()
  t.match(metrics, /^ferry_ingest_paused\{reason="backpressure"\} 1$/m)
  t.match(metrics, /^ferry_ingest_paused\{reason="disk-full"\} 0$/m)
  t.match(metrics, /^ferry_buffer_dropped_total 0$/m)
  t.match(metrics, /^ferry_sink_drain_eta_seconds\{sink="influxdb"\} \+Inf$/m)
  const health = await api.get('/healthz')
  t.equal(health.status, 503)
  t.match(((await health.json()) as { reasons: string[] }).reasons, [/paused by backpressure/])

  // InfluxDB comes back on the same port.
  const influx = await startInfluxd(t, { httpPort: influxPort })
  await influx.createDatabase('ferry')
  const left = await gw.waitFor(/resuming ingest/)
  t.match(left, /"level":30/, 'one INFO on leaving')
  const influxCount = async () => {
    const r = await influx.query('SELECT count(pot) FROM telemetry', 'ferry')
    return (r.results[0]!.series?.[0]?.values[0]?.[1] as number | undefined) ?? 0
  }
  await waitUntil(async () => (await influxCount()) >= 3000, 'all 3,000 readings in InfluxDB', 120_000, 200).catch(async (err: Error) => {
    // What to look at if this ever times out: how far delivery got, and what the gateway said last.
    throw new Error(`${err.message}: InfluxDB has ${await influxCount()}; ferry status: ${JSON.stringify(ferryStatusJson(env.FERRY_DB!))}; gateway log:\n${gw.lines.slice(-20).join('\n')}`)
  })
  t.equal(await influxCount(), 3000, 'count(pot) is exactly 3,000')
  t.same(await sim.exited, { code: 0, signal: null }, 'device-sim --count 3000 exits 0: every reading confirmed, none dropped')
  t.match(sim.lines.find((l) => l.includes('readings: ')), /confirm=gateway confirmed=3000 .*dropped=0/)
  const points = await influx.select('ferry')
  t.same(points.map((p) => p.seq as number).sort((a, b) => a - b), Array.from({ length: 3000 }, (_, i) => i + 1), 'seq 1..3000, each exactly once')
  await waitUntil(() => ferryStatusJson(env.FERRY_DB!).ingestPaused === null, 'ingest to run again')
  const after = ferryStatusJson(env.FERRY_DB!)
  t.same(after.dropped, { total: 0, byDevice: {} }, 'still nothing dropped')
  t.equal(after.sinks[0]!.sentTotal, 3000)
  const paused = gw.lines.filter((l) => /ingest paused/.test(l)).length
  t.equal(gw.lines.filter((l) => /resuming ingest/.test(l)).length, paused, `every pause (${paused}) ended with one resume`)
  gw.child.kill('SIGTERM')
  t.equal((await gw.exited).code, 0)
})

t.test('readings older than FERRY_BUFFER_MAX_AGE expire, counted per device apart from drops: status, API, metric and log', async (t) => {
  const broker = await startTestBroker(t, { devices: ['dev1', 'dev2'] })
  const dir = tempDir(t)
  const api = await apiEnv()
  // No sink: nothing is ever delivered, so everything ages out.
  const env = gatewayEnv(broker, dir, { FERRY_BUFFER_MAX_AGE: '2s', ...api.env })
  const gw = spawnFerry(t, ['gateway'], env)
  await gw.waitFor(/connected to the broker/)
  const [dev1, dev2] = await Promise.all([deviceClient(t, broker, 'dev1'), deviceClient(t, broker, 'dev2')])
  await Promise.all([publishReadings(dev1!, 'dev1', 1, 40), publishReadings(dev2!, 'dev2', 1, 25)])
  const line = await gw.waitFor(/expired undelivered readings older than FERRY_BUFFER_MAX_AGE/, 15_000)
  t.match(line, /"level":40/, 'logged as a WARN')
  await waitUntil(() => ferryStatusJson(env.FERRY_DB!).expired.total === 65, 'all 65 to expire', 15_000, 200)

  const cli = ferryStatusJson(env.FERRY_DB!)
  t.same(cli.expired, { total: 65, byDevice: { dev1: 40, dev2: 25 } }, 'ferry status: per device')
  t.same(cli.dropped, { total: 0, byDevice: {} }, 'expired is not dropped')
  t.equal(cli.buffered.rows, 0)
  t.match(ferryStatusText(env.FERRY_DB!), /^expired: +65 \(dev1: 40, dev2: 25\)$/m)
  const s = await api.status()
  t.same(s.expired, { total: 65, byDevice: { dev1: 40, dev2: 25 } }, '/api/status: per device')
  t.equal(s.dropped.total, 0)
  const metrics = await api.metrics()
  t.match(metrics, /^ferry_buffer_expired_total\{device="dev1"\} 40$/m)
  t.match(metrics, /^ferry_buffer_expired_total\{device="dev2"\} 25$/m)
  t.match(metrics, /^ferry_buffer_dropped_total 0$/m)
})
