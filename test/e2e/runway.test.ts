// The runway (how long the buffer absorbs the current ingest rate before it must drop) and the drain
// ETA in all four places an operator looks: `ferry status`, /api/status, /metrics and the dashboard
// (system Chromium via playwright-core), against a real `ferry gateway` process and mosquitto.
import t from 'tap'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { startTestBroker } from '../helpers/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings, spawnFerry } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'
import { ferryStatusJson, ferryStatusText, type StatusJson } from '../helpers/status.js'

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts')
const CHROMIUM = process.env.FERRY_CHROMIUM ?? '/usr/bin/chromium'

// The DOM the in-page functions read (the project type-checks without the DOM library).
type G = { document: { querySelector(selector: string): { textContent: string | null } | null } }

/** The value of an unlabelled gauge in Prometheus text. */
const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]?.replace('+Inf', 'Infinity'))

t.test('the runway and drain ETA show in ferry status, /api/status, /metrics and the dashboard; "no figure" while nothing comes in', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const port = await freePort()
  const file = join(dir, 'out', 'telemetry.lp')
  const env = gatewayEnv(broker, dir, {
    FERRY_SINKS: 'file',
    FERRY_FILE_PATH: file,
    FERRY_BUFFER_MAX_ROWS: '100000',
    FERRY_DRAIN_PROGRESS_MS: '200',
    FERRY_HTTP_PORT: String(port),
    FERRY_HTTP_HOST: '127.0.0.1',
    FERRY_API_READ_ONLY: 'true',
  })
  const gw = spawnFerry(t, ['gateway'], env)
  await gw.waitFor(/connected to the broker/)
  await gw.waitFor(/HTTP API and dashboard listening/)
  const base = `http://127.0.0.1:${port}`
  const status = async () => (await (await fetch(`${base}/api/status`)).json()) as StatusJson
  const metrics = async () => (await fetch(`${base}/metrics`)).text()

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'] })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } })
  const failed: string[] = []
  page.on('pageerror', (err) => failed.push(`page error: ${err.message}`))
  await page.goto(`${base}/`)
  const text = (sel: string) => page.locator(sel).textContent()

  // Nothing has come in yet: there is no runway figure anywhere.
  const idle = await status()
  t.match(idle.runway, { onFull: 'drop-oldest', ingestPerS: 0, freeRows: 100_000, seconds: null }, '/api/status: seconds null')
  t.equal(gauge(await metrics(), 'ferry_buffer_runway_seconds'), Infinity, '/metrics: +Inf')
  t.equal(ferryStatusJson(env.FERRY_DB!).runway?.seconds, null, 'ferry status --json: null')
  t.match(ferryStatusText(env.FERRY_DB!), /^runway: +- until the oldest undelivered readings are dropped \(0 readings\/s; room for 100000 readings/m, 'ferry status: -')
  await page.waitForFunction(() => (globalThis as unknown as G).document.querySelector('#runway')?.textContent === '– (nothing coming in)')
  t.pass('dashboard: – (nothing coming in)')

  // Readings come in and are delivered.
  const dev = await deviceClient(t, broker, 'dev1')
  await publishReadings(dev, 'dev1', 1, 600, { window: 20 })
  // Delivered: the file has them and the sink's cursor has moved past them (settled after the write).
  const live = (await waitUntil(async () => {
    const s = await status()
    return s.sinks[0]?.sentTotal === 600 && s.sinks[0].rows === 0 ? s : undefined
  }, 'the file sink to take all 600'))!
  t.equal(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 600)
  const r = live.runway!
  t.ok(r.ingestPerS > 0, `/api/status: an ingest rate (${r.ingestPerS}/s)`)
  t.equal(r.freeRows, 100_000, 'everything is delivered, so all the room is free')
  // ingestPerS is rounded to 2 decimals for display; the runway is computed from the exact rate.
  t.ok(r.seconds !== null && Math.abs(r.seconds - 100_000 / r.ingestPerS) <= 1 + r.seconds * 0.01, `/api/status: runway = free rows / rate (${r.seconds} s)`)
  t.equal(live.sinks[0]!.drainEtaS, 0, '/api/status: nothing left to drain')

  const m = await metrics()
  const runwayMetric = gauge(m, 'ferry_buffer_runway_seconds')
  // A moment later, so a young gateway's rate (its average since start) has moved a little.
  t.ok(Number.isFinite(runwayMetric) && Math.abs(runwayMetric - r.seconds!) <= r.seconds! * 0.2, `/metrics: ferry_buffer_runway_seconds ${runwayMetric} (API said ${r.seconds})`)
  t.ok(gauge(m, 'ferry_buffer_ingest_readings_per_second') > 0)
  t.match(m, /^ferry_sink_drain_eta_seconds\{sink="file"\} 0$/m, '/metrics: drain ETA 0')

  const cli = ferryStatusJson(env.FERRY_DB!)
  t.ok(cli.runway && cli.runway.seconds !== null && cli.runway.seconds > 0 && cli.runway.ingestPerS > 0, `ferry status --json: a runway from the rate the gateway stored (${cli.runway?.seconds} s at ${cli.runway?.ingestPerS}/s)`)
  t.equal(cli.sinks[0]!.drainEtaS, 0)
  t.match(ferryStatusText(env.FERRY_DB!), /^runway: +\d+(\.\d)?[smh] until the oldest undelivered readings are dropped \([\d.]+ readings\/s; room for 100000 readings/m, 'ferry status: the runway line')

  await page.waitForFunction(() => /^\d+ (s|min|h) at [\d.]+\/s, then drop$/.test((globalThis as unknown as G).document.querySelector('#runway')?.textContent ?? ''))
  t.match(await text('#runway'), /^\d+ (s|min|h) at [\d.]+\/s, then drop$/, 'dashboard: the runway')
  await page.locator('#sinks tr[data-sink="file"] td', { hasText: '0 s' }).first().waitFor()
  t.equal(await page.locator('#sinks tr[data-sink="file"] td').nth(4).textContent(), '0 s', 'dashboard: the drain ETA column')
  t.equal(await text('#ingest'), 'running')
  t.equal(await text('#expired'), '0')
  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-runway.png'), fullPage: true })
  t.same(failed, [], 'no page errors')
})
