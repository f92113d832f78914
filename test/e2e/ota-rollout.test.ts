// Issue 19, "OTA rollouts that advance and halt by themselves", with every part a real process:
// mosquitto with the repo's config, `ferry gateway` (forwarding the devices' MQTT ota/status to the
// OTA server, FERRY_OTA_URL), `ferry ota-server`, `ferry ota publish` and `ferry ota rollout`, and 20
// `ferry device-sim` processes polling for updates every second.
//
// One run: release 1.1.0 is published in two stages (30% → 100%), halting at 3 failures. Three of the
// first stage's devices fail their self-test on 1.1.0 (--ota-fail-self-test) and roll back: the
// deployment halts with exactly 3 failures, no device outside the first stage is ever offered the
// release, the halt shows in the OTA server's API and metrics, in the gateway's /api/status, `ferry
// status` and its dashboard (Chromium), and it survives a restart of the OTA server. Then 1.1.1, the
// fix, is published in the same deployment and `ferry ota rollout resume` lets it go on: the first
// stage installs the fix, the server opens the second stage by itself, and all 20 end on 1.1.1.
//
// Expected to fail where the rollout misses a report (the gateway link), counts a rolled-back device
// as a success, offers a halted release, or forgets a halt across a restart.
import t from 'tap'
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { chromium } from 'playwright-core'
import { startTestBroker } from '../helpers/mosquitto.js'
import { tempDir } from '../helpers/tmp.js'
import { freePort } from '../helpers/ports.js'
import { gatewayEnv, spawnFerry, type FerryProcess } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'
import { rolloutBucket } from '../../ota-server/src/manifest/rollout.js'
import type { RolloutStatus } from '../../ota-server/src/rollout/status.js'

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts')
const CHROMIUM = process.env.FERRY_CHROMIUM ?? '/usr/bin/chromium'
const TOKEN = 'ota-rollout-e2e-7d3f91c2b5a4'
const DEPLOYMENT = 'esp32dev-fleet-1'
const SIMS = Array.from({ length: 20 }, (_, i) => `sim-${String(i).padStart(2, '0')}`)
const STAGE1 = SIMS.filter((d) => rolloutBucket(DEPLOYMENT, d) < 30)
const FAILING = STAGE1.slice(0, 3)

// 20 device processes start from the TypeScript sources (several CPU-seconds each): more than the
// suite's 300 s per file on a loaded 2-core machine. Tells the runner (tap) too.
t.setTimeout(1_200_000)

t.test('a staged rollout halts itself after 3 self-test failures, stays halted across a restart, and goes on after a fix is published and resumed', { timeout: 1_180_000 }, async (t) => {
  t.ok(STAGE1.length >= 4 && STAGE1.length <= 10, `the 30% stage holds ${STAGE1.length} of the 20 devices: ${STAGE1.join(', ')}`)
  const broker = await startTestBroker(t, { devices: SIMS })
  const pki = broker.pki
  const root = tempDir(t)
  const otaDir = join(root, 'ota')
  const keys = join(root, 'keys')
  const simState = join(root, 'sim-state')
  mkdirSync(ARTIFACTS, { recursive: true })

  // --- the release key and the first, bad release, in two stages -----------------------------------
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const p = spawnFerry(t, args, { FERRY_ENV_FILE: join(root, 'no.env'), ...env })
    const r = await p.exited
    return { code: r.code, out: p.lines.join('\n') }
  }
  t.equal((await run(['ota', 'keygen', '--out', keys])).code, 0)
  writeFileSync(join(root, 'fw-1.1.0.bin'), Buffer.alloc(40_000, 0x11))
  writeFileSync(join(root, 'fw-1.1.1.bin'), Buffer.alloc(40_000, 0x22))
  const publish = (version: string) =>
    run(['ota', 'publish', join(root, `fw-${version}.bin`), '--version', version, '--hw', 'esp32dev', '--secure-version', '0', '--key', join(keys, 'release.key'), '--dir', otaDir,
      '--deployment', DEPLOYMENT, '--stage', '30%', '--stage', '100%', '--halt-after', '3', '--success', '95%', '--min-devices', String(STAGE1.length), '--soak', '2s', '--stall-timeout', '2m'])
  const published = await publish('1.1.0')
  t.equal(published.code, 0, published.out)
  t.match(published.out, /stages\s+30% → 100%; advance at ≥ 95% installed of ≥ \d+ started, held 2s; halt at 3 failures; stall timeout 2m/)

  // --- the OTA server and the gateway -------------------------------------------------------------
  const otaPort = await freePort()
  const otaUrl = `https://localhost:${otaPort}`
  const otaEnv = {
    FERRY_ENV_FILE: join(root, 'no.env'),
    FERRY_OTA_PORT: String(otaPort),
    FERRY_OTA_HOST: '127.0.0.1',
    FERRY_OTA_DIR: otaDir,
    FERRY_OTA_CERT: pki.files.serverCert,
    FERRY_OTA_KEY: pki.files.serverKey,
    FERRY_OTA_CA: pki.files.caCert,
    FERRY_OTA_CRL: pki.files.crl,
    FERRY_OTA_PUB: join(keys, 'release.pub'),
    FERRY_OTA_RATE_LIMIT_MAX: '100000',
    FERRY_OTA_DOWNLOAD_RATE_LIMIT_MAX: '100000',
    FERRY_API_TOKEN: TOKEN,
  }
  const startOta = async () => {
    const p = spawnFerry(t, ['ota-server'], otaEnv)
    await p.waitFor(/OTA server listening/, 60_000)
    return p
  }
  let ota: FerryProcess = await startOta()

  const httpPort = await freePort()
  const gwDir = join(root, 'gw')
  mkdirSync(gwDir)
  const gw = spawnFerry(t, ['gateway'], gatewayEnv(broker, gwDir, {
    FERRY_HTTP_PORT: String(httpPort),
    FERRY_HTTP_HOST: '127.0.0.1',
    FERRY_API_TOKEN: TOKEN,
    FERRY_OTA_URL: otaUrl,
    FERRY_OTA_SYNC_INTERVAL_MS: '300',
  }))
  await gw.waitFor(/connected to the broker/, 60_000)
  const gwApi = `http://127.0.0.1:${httpPort}`
  const gwStatus = async () => (await (await fetch(`${gwApi}/api/status`)).json()) as { ota: { halted: string[]; rollouts: RolloutStatus[]; lastError: unknown } | null }

  // The test reads the OTA server as the gateway does: with the gateway's certificate.
  const agent = new Agent({ connect: { ...pki.tls('gateway'), rejectUnauthorized: true }, keepAliveTimeout: 2_000 })
  t.teardown(() => agent.close())
  const otaGet = async (path: string) => {
    // The server ends idle keep-alive connections after 5 s; a request racing that close is retried.
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await request(`${otaUrl}${path}`, { dispatcher: agent })
        const text = await r.body.text()
        return { status: r.statusCode, text }
      } catch (err) {
        if (!ota.alive()) throw new Error(`the OTA server exited: ${ota.lines.slice(-20).join('\n')}`)
        if (attempt >= 2) throw err
      }
    }
  }
  const rollout = async () => JSON.parse((await otaGet(`/ota/rollouts/${DEPLOYMENT}`)).text) as RolloutStatus

  // --- 20 devices on 1.0.0, asking every second ---------------------------------------------------
  const sims = new Map<string, FerryProcess>()
  for (const id of SIMS) {
    const args = ['device-sim', '--id', id, '--pki', pki.dir, '--url', broker.url, '--state', simState, '--rate', '0.2',
      '--ota-url', otaUrl, '--release-pub', join(keys, 'release.pub'), '--ota-interval', '1s', '--version', '1.0.0']
    if (FAILING.includes(id)) args.push('--ota-fail-self-test', '1.1.0')
    sims.set(id, spawnFerry(t, args, { FERRY_ENV_FILE: join(root, 'no.env') }))
  }
  // On failure, every process's output goes to test-artifacts/ota-rollout-logs/ for the post-mortem.
  t.teardown(() => {
    if (t.passing()) return
    const logs = join(ARTIFACTS, 'ota-rollout-logs')
    mkdirSync(logs, { recursive: true })
    writeFileSync(join(logs, 'ota-server.log'), ota.lines.join('\n'))
    writeFileSync(join(logs, 'gateway.log'), gw.lines.join('\n'))
    for (const [id, p] of sims) writeFileSync(join(logs, `${id}.log`), p.lines.join('\n'))
  })
  const firmware = (id: string) => {
    const f = join(simState, `${id}.json`)
    return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as { firmware: { version: string }; ota?: { version: string; state: string } }) : undefined
  }

  // --- the halt -----------------------------------------------------------------------------------
  const halted = (await waitUntil(async () => {
    const r = await rollout()
    return r.status === 'halted' && r
  }, 'the rollout to halt itself', 600_000, 250)) as RolloutStatus
  t.equal(halted.halt?.by, 'server', 'halted by the server, not by anyone')
  t.equal(halted.counts!.failed + halted.counts!.stalled, 3, 'it halted at the threshold: exactly 3 failures')
  t.match(halted.why, new RegExp(`^3 of the \\d+ devices that started stage 1 \\(30%\\) failed; the limit is 3 failures: `))
  for (const id of FAILING) t.match(halted.why, `${id} rolled-back (self_test_failed)`, `the explanation names ${id}`)
  t.same(halted.failures.map((f) => f.device).sort(), [...FAILING].sort())
  t.equal(halted.stage?.number, 1, 'the second stage never opened')

  // Several poll rounds later, still nobody outside the first stage has been offered anything.
  await new Promise((r) => setTimeout(r, 5000))
  const reports = JSON.parse((await otaGet(`/ota/reports?deployment=${DEPLOYMENT}&limit=1000`)).text) as { reports: Array<{ device: string; state: string; source: string }> }
  t.ok(reports.reports.length > 0 && reports.reports.every((r) => r.source === 'mqtt'), 'the reports reached the OTA server through the gateway (MQTT)')
  t.same([...new Set(reports.reports.map((r) => r.device))].filter((d) => !STAGE1.includes(d)), [], 'no device outside stage 1 ever reported on the release')
  for (const id of SIMS.filter((d) => !STAGE1.includes(d))) t.same([firmware(id)?.firmware.version, firmware(id)?.ota], ['1.0.0', undefined], `${id} was never offered 1.1.0`)
  for (const id of FAILING) t.match(firmware(id), { firmware: { version: '1.0.0' }, ota: { version: '1.1.0', state: 'rolled-back' } }, `${id} rolled back to 1.0.0`)
  t.equal((await rollout()).counts?.offered, halted.counts?.offered, 'no offer since the halt')
  const otaLog = ota.lines.join('\n')
  t.match(otaLog, /"level":50.*rollout halted: 3 of the/, 'the halt is logged at ERROR')
  const afterHalt = otaLog.slice(otaLog.indexOf('rollout halted'))
  t.notMatch(afterHalt, /offering an update/, 'no envelope handed out after the halt')

  const metrics = await otaGet('/metrics')
  t.match(metrics.text, new RegExp(`^ferry_ota_rollout_halted\\{deployment="${DEPLOYMENT}"\\} 1$`, 'm'), 'OTA server /metrics')
  t.match(metrics.text, new RegExp(`^ferry_ota_rollout_decisions_total\\{deployment="${DEPLOYMENT}",action="halted",by="server"\\} 1$`, 'm'))

  // The gateway shows it: /api/status, its /metrics, `ferry status`, the dashboard.
  const seen = await waitUntil(async () => {
    const s = await gwStatus()
    return s.ota?.halted.includes(DEPLOYMENT) && s
  }, 'the gateway to show the halt', 15_000, 200)
  t.match(seen && seen.ota?.rollouts.find((r) => r.deployment === DEPLOYMENT), { status: 'halted', why: halted.why })
  t.match(await (await fetch(`${gwApi}/metrics`)).text(), new RegExp(`^ferry_ota_rollout_halted\\{deployment="${DEPLOYMENT}"\\} 1$`, 'm'), 'gateway /metrics')
  const statusCli = await run(['status', '--db', join(gwDir, 'buffer.db')])
  t.equal(statusCli.code, 0, statusCli.out)
  t.match(statusCli.out, new RegExp(`ota rollout:  ${DEPLOYMENT} HALTED at stage 1 of 2 \\(30%\\) .*: 3 of the`))

  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } })
  const pageErrors: string[] = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.goto(`${gwApi}/`)
  const row = page.locator(`#rollouts tr[data-deployment="${DEPLOYMENT}"][data-status="halted"]`)
  await row.waitFor({ timeout: 15_000 })
  t.equal(await row.locator('.badge').textContent(), 'HALTED', 'the dashboard shows HALTED')
  t.match(await row.locator('td.err').textContent(), /3 of the \d+ devices that started stage 1 \(30%\) failed/, 'with the reason')
  t.equal(await row.locator('td').nth(4).textContent(), '3', 'and the 3 failures')
  await page.screenshot({ path: join(ARTIFACTS, 'ota-rollout-halted.png'), fullPage: true })

  // --- a restart of the OTA server forgets nothing ------------------------------------------------
  await ota.stop()
  ota = await startOta()
  const again = await rollout()
  t.equal(again.status, 'halted', 'still halted after the OTA server restarted')
  t.equal(again.why, halted.why)
  await new Promise((r) => setTimeout(r, 3000))
  t.notMatch(ota.lines.join('\n'), /offering an update/, 'and it offers nothing after the restart either')

  // --- the fix, and resume ------------------------------------------------------------------------
  const fixed = await publish('1.1.1')
  t.equal(fixed.code, 0, fixed.out)
  const refused = await run(['ota', 'rollout', 'resume', DEPLOYMENT, '--url', otaUrl, '--pki', pki.dir])
  t.equal(refused.code, 2, 'resume needs the token')
  const resumed = await run(['ota', 'rollout', 'resume', DEPLOYMENT, '--url', otaUrl, '--pki', pki.dir, '--reason', '1.1.1 fixes the self-test'], { FERRY_API_TOKEN: TOKEN })
  t.equal(resumed.code, 0, resumed.out)
  t.match(resumed.out, `${DEPLOYMENT}: active at stage 1 of 2 (30%)`)
  t.match(resumed.out, 'why:        resumed by the operator: 1.1.1 fixes the self-test; stage 1 (30%) counts afresh from now. Releases now: esp32dev 1.1.1, esp32dev 1.1.0 (at the halt: esp32dev 1.1.0).')

  const done = (await waitUntil(async () => {
    const r = await rollout()
    return r.stage?.number === 2 && SIMS.every((id) => firmware(id)?.firmware.version === '1.1.1') && r
  }, 'all 20 devices on 1.1.1', 300_000, 500)) as RolloutStatus
  t.equal(done.status, 'active')
  const advanced = done.history.find((h) => h.action === 'advanced')
  t.match(advanced, { by: 'server', stage: 2 }, 'the server opened stage 2 by itself')
  t.match(advanced?.why, new RegExp(`^stage 1 \\(30%\\) succeeded: ${STAGE1.length} of the ${STAGE1.length} devices that started it installed \\(100% ≥ 95%, at least ${STAGE1.length} started\\), held for the 2s soak; stage 2 of 2 \\(100%\\) opened$`))
  t.same(done.history.map((h) => [h.action, h.by]), [['opened', 'server'], ['halted', 'server'], ['resumed', 'operator'], ['advanced', 'server']], 'every decision is on record')

  const status = await run(['ota', 'rollout', 'status', DEPLOYMENT, '--url', otaUrl, '--pki', pki.dir])
  t.equal(status.code, 0, status.out)
  for (const line of [`${DEPLOYMENT}: active at stage 2 of 2 (100%, final)`, 'opened   stage 1 by server', 'halted   stage 1 by server   3 of the', 'resumed  stage 1 by operator resumed by the operator', 'advanced stage 2 by server   stage 1 (30%) succeeded'])
    t.match(status.out, line, `ferry ota rollout status: ${line}`)
  await waitUntil(async () => (await gwStatus()).ota?.rollouts.find((r) => r.deployment === DEPLOYMENT)?.status === 'active', 'the gateway to show the rollout active again', 15_000, 200)
  await page.locator(`#rollouts tr[data-deployment="${DEPLOYMENT}"][data-status="active"]`).waitFor({ timeout: 15_000 })
  t.same(pageErrors, [], 'no page errors')

  for (const p of sims.values()) await p.stop()
})
