// The dashboard in a real browser (system Chromium, headless, via playwright-core) against a real
// gateway and mosquitto, over HTTPS with the Ferry CA's server certificate, which the browser
// verifies against the test CA it was given as a trusted root (test/helpers/browser.ts): the page
// loads, the chart shows the readings a simulated device published (and follows new ones live),
// moving the slider makes the device receive led/set, and the echo shows as confirmed. The CSP holds
// (no violation reported), the token never appears in a URL, and a certificate from another CA is
// refused. Screenshots go to test-artifacts/ (phone and desktop widths).
import t from 'tap'
import { mkdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:https'
import { once } from 'node:events'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { startTestBroker } from '../helpers/mosquitto.js'
import { makePki } from '../helpers/pki.js'
import { launchChromiumTrusting } from '../helpers/browser.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'
import { loadCoreConfig } from '../../gateway/src/core-config.js'
import { startGateway } from '../../gateway/src/gateway.js'
import { buildApp } from '../../gateway/src/api/app.js'
import { silentLogger } from '../../common/src/logger.js'

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts')
const TOKEN = 'dashboard-test-token-0123456789'

// The few DOM shapes the in-page functions use (the project type-checks without the DOM library).
// Functions, not strings: Playwright runs them outside the page's CSP, which forbids eval.
interface El {
  dataset: Record<string, string | undefined>
  getBoundingClientRect(): { width: number }
}
interface Doc {
  querySelector(selector: string): El | null
  documentElement: { scrollWidth: number }
}
// Each in-page function must be self-contained (it is serialised), hence the repeated `G`.
type G = { document: Doc }

t.test('the dashboard charts live readings and its slider drives the LED', async (t) => {
  const broker = await startTestBroker(t)
  const gw = startGateway(loadCoreConfig(gatewayEnv(broker, tempDir(t))), { log: silentLogger, sinks: [] })
  t.teardown(() => gw.stop())
  await waitUntil(() => gw.state.brokerConnected, 'the gateway to connect')
  // The broker's PKI issued the server certificate for localhost and 127.0.0.1, as `ferry pki server`.
  const files = broker.pki.files
  const app = await buildApp({ gateway: gw, token: TOKEN, tls: { cert: readFileSync(files.serverCert), key: readFileSync(files.serverKey), clientNames: [] } })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `https://localhost:${(app.server.address() as AddressInfo).port}/`

  // A simulated device: online, 30 readings of a ramp, listening for LED commands.
  const dev = await deviceClient(t, broker, 'dev1')
  const leds: Array<{ cmd: string; brightness: number }> = []
  dev.on('message', (_topic, payload) => {
    if (payload.length) leds.push(JSON.parse(payload.toString()) as { cmd: string; brightness: number })
  })
  await dev.subscribeAsync('sensors/dev1/led/set', { qos: 1 })
  await dev.publishAsync('sensors/dev1/status', 'online', { qos: 1, retain: true })
  let seq = 0
  const publish = async (n: number) => {
    for (let i = 0; i < n; i++) {
      seq++
      const pot = Math.round(2048 + 1800 * Math.sin(seq / 4))
      await dev.publishAsync('sensors/dev1/telemetry', JSON.stringify({ seq, boot: 1, ts: Date.now() - (60 - seq) * 1000, pot, switch: seq % 10 < 5 ? 1 : 0 }), { qos: 1 })
    }
    return Math.round(2048 + 1800 * Math.sin(seq / 4))
  }
  await publish(30)
  await waitUntil(() => (gw.buffer.db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n === 30, '30 readings stored')

  const browser = await launchChromiumTrusting(t, files.caCert)
  // A phone-sized screen (iPhone 12/13/14 CSS pixels). ignoreHTTPSErrors false (the default, said
  // here on purpose): a certificate the browser cannot verify fails the navigation.
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, ignoreHTTPSErrors: false })
  const failed: string[] = []
  const urls: string[] = []
  page.on('pageerror', (err) => failed.push(`page error: ${err.message}`))
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) failed.push(`console: ${m.text()}`)
  })
  page.on('requestfailed', (r) => failed.push(`request failed: ${r.url()}`))
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} for ${r.url()}`)
  })
  page.on('request', (r) => {
    urls.push(r.url())
    if (!r.url().startsWith(url)) failed.push(`request to another origin: ${r.url()}`)
  })
  // A CSP violation (an inline script or style, a foreign origin) is reported as a
  // securitypolicyviolation event and a console error; both are collected.
  await page.exposeFunction('ferryCspViolation', (what: string) => failed.push(`CSP violation: ${what}`))
  await page.addInitScript(() => {
    const g = globalThis as unknown as { addEventListener(type: string, fn: (e: { violatedDirective: string; blockedURI: string }) => void): void; ferryCspViolation(s: string): void }
    g.addEventListener('securitypolicyviolation', (e) => void g.ferryCspViolation(`${e.violatedDirective} ${e.blockedURI}`))
  })
  const nav = await page.goto(url)
  t.equal(nav?.status(), 200)
  const security = await nav!.securityDetails()
  t.match(security, { protocol: /^TLS 1\.[23]$/, subjectName: 'localhost', issuer: 'Ferry device CA' }, 'served over TLS 1.2+ with the Ferry server certificate')
  t.match(nav!.headers()['content-security-policy'], /script-src 'self'.*frame-ancestors 'none'/)
  t.equal(nav!.headers()['x-frame-options'], 'DENY')

  const card = page.locator('#device-dev1')
  await card.waitFor()
  t.equal(await card.locator('.online').textContent(), 'online')
  t.equal(await card.locator('.chart canvas').count(), 1, 'uPlot drew a canvas')
  await page.waitForFunction(() => Number((globalThis as unknown as G).document.querySelector('#device-dev1 .chart')?.dataset.points) === 30)
  t.pass('the chart holds the 30 published readings')

  // Live: new readings appear without reloading.
  const lastPot = await publish(5)
  await page.waitForFunction((pot) => {
    const el = (globalThis as unknown as G).document.querySelector('#device-dev1 .chart')
    return Number(el?.dataset.points) === 35 && el?.dataset.last === String(pot)
  }, lastPot)
  t.equal(await card.locator('.pot').textContent(), String(lastPot), 'the card shows the latest pot value')
  t.equal(await page.locator('#broker').textContent(), 'connected')

  // Without a token the slider explains what is missing and sends nothing.
  await card.locator('.led-slider').fill('20')
  await card.locator('.led-result', { hasText: 'set the API token' }).waitFor()
  t.same(leds, [])

  await page.locator('#settings summary').click()
  await page.locator('#token').fill(TOKEN)
  await page.locator('#token-form button').click()
  t.equal(await page.locator('#token-state').textContent(), '(set)')

  await card.locator('.led-slider').fill('73')
  await waitUntil(() => leds.length > 0, 'the device to receive led/set', 10_000)
  t.equal(leds[0]!.brightness, 73)
  t.equal(leds.length, 1, 'one command per slider gesture')
  await card.locator('.led-result', { hasText: /published|confirmed/ }).waitFor()

  // The device echoes; the dashboard shows the confirmation and the LED state.
  await dev.publishAsync('sensors/dev1/led/state', JSON.stringify({ cmd: leds[0]!.cmd, brightness: 73 }), { qos: 1, retain: true })
  await card.locator('.led-result', { hasText: 'confirmed' }).waitFor()
  await card.locator('.led', { hasText: '73%' }).waitFor()
  t.equal(gw.commands.store.get(leds[0]!.cmd)!.state, 'confirmed')

  const width = await page.evaluate(() => (globalThis as unknown as G).document.documentElement.scrollWidth)
  t.ok(width <= 390, `no horizontal scrolling on a phone (page is ${width}px wide)`)
  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true })
  await page.setViewportSize({ width: 1280, height: 800 })
  await page.waitForFunction(() => ((globalThis as unknown as G).document.querySelector('#device-dev1 .chart canvas')?.getBoundingClientRect().width ?? 0) > 400)
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-desktop.png'), fullPage: true })
  t.same(failed, [], 'no page errors, CSP violations, failed requests or third-party requests')
  t.same(urls.filter((u) => u.includes(TOKEN)), [], 'the token is never part of a URL')
})

t.test('the browser refuses a gateway whose certificate another CA signed', async (t) => {
  // Proves the trust above is real verification: same browser set-up, a server certificate from a
  // different CA for the same name, and the navigation fails.
  const trusted = await makePki(t, [])
  const other = await makePki(t, [])
  const server = createServer({ cert: readFileSync(other.files.serverCert), key: readFileSync(other.files.serverKey) }, (_req, res) => res.end('impostor'))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const browser = await launchChromiumTrusting(t, trusted.files.caCert)
  const page = await browser.newPage()
  await t.rejects(page.goto(`https://localhost:${(server.address() as AddressInfo).port}/`), /ERR_CERT_AUTHORITY_INVALID/)
})
