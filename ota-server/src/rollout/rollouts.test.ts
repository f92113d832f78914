// Staged rollouts on the OTA server (issue 19, "OTA rollouts that advance and halt by themselves"),
// through the real routes with inject(): who is offered a staged release, when the next stage opens,
// when the deployment halts by itself, what the operator routes accept, and that all of it survives a
// restart. The end-to-end run with 20 device processes is test/e2e/ota-rollout.test.ts.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { tempDir } from '../../../test/helpers/tmp.js'
import { waitUntil } from '../../../test/helpers/wait.js'
import { buildApp, type OtaAppDeps } from '../app.js'
import { generateReleaseKey, rolloutBucket } from '../manifest/index.js'
import { publishRelease, type PublishInput } from '../store/publish.js'
import { PLAN_DEFAULTS, type RolloutPlan } from './plan.js'
import type { RolloutStatus } from './status.js'

const DAY = 86_400_000
const T0 = Date.UTC(2026, 2, 1)
const TOKEN = 'rollout-test-token-6f1c2a9e'
const key = generateReleaseKey()
const DEPLOYMENT = 'fleet-1.2'

function plan(over: Partial<RolloutPlan> = {}): RolloutPlan {
  return { schema: 1, stages: [{ percent: 30 }, { percent: 100 }], success: { ...PLAN_DEFAULTS.success }, halt: { failures: 3 }, stall_timeout_ms: 60_000, ...over }
}

async function fixture(t: { teardown(fn: () => unknown): void }) {
  const root = tempDir(t)
  const dir = join(root, 'ota')
  let n = 0
  const clock = { now: T0 }
  const apps: FastifyInstance[] = []
  const f = {
    dir,
    clock,
    async publish(over: Partial<PublishInput> = {}) {
      const file = join(root, `fw-${n++}.bin`)
      writeFileSync(file, randomBytes(2000))
      return publishRelease({ image: file, version: '1.2.0', hw: 'esp32dev', secureVersion: 0, keys: [key.privateKeyPem], dir, expiresInMs: 30 * DAY, now: clock.now, deployment: DEPLOYMENT, plan: plan(), ...over })
    },
    async app(deps: Partial<OtaAppDeps> = {}) {
      const app = await buildApp({
        dir,
        // Time moves on by a millisecond whenever anyone looks, as it does between requests.
        now: () => ++clock.now,
        identify: (req) => req.headers['x-test-cn'] as string | undefined,
        apiToken: TOKEN,
        rateLimit: { max: 10_000, downloadMax: 10_000, windowMs: 60_000 },
        ...deps,
      })
      apps.push(app)
      t.teardown(() => app.close())
      return app
    },
  }
  return f
}

const gw = { 'x-test-cn': 'ferry-gateway' }
const op = { 'x-test-cn': 'ferry-gateway', authorization: `Bearer ${TOKEN}` }

async function poll(app: FastifyInstance, device: string, version = '1.0.0'): Promise<number> {
  return (await app.inject({ url: `/ota/latest?hw=esp32dev&version=${version}`, headers: { 'x-test-cn': device } })).statusCode
}

async function report(app: FastifyInstance, device: string, state: string, extra: Record<string, string> = {}, version = '1.2.0'): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/ota/report', headers: { 'x-test-cn': device }, payload: { deployment: DEPLOYMENT, state, version, ...extra } })
  if (res.statusCode !== 204) throw new Error(`report answered ${res.statusCode}: ${res.body}`)
}

async function status(app: FastifyInstance, deployment = DEPLOYMENT): Promise<RolloutStatus> {
  const res = await app.inject({ url: `/ota/rollouts/${deployment}`, headers: gw })
  if (res.statusCode !== 200) throw new Error(`status answered ${res.statusCode}: ${res.body}`)
  return res.json()
}

/** Devices node-0… split by the deployment's bucket: in the 30% first stage, or not. */
function fleet(n = 40) {
  const ids = Array.from({ length: n }, (_, i) => `node-${i}`)
  return { stage1: ids.filter((d) => rolloutBucket(DEPLOYMENT, d) < 30), rest: ids.filter((d) => rolloutBucket(DEPLOYMENT, d) >= 30) }
}

t.test('a staged release is offered to the first stage only; the next stage opens when ≥ 95% of those who started it installed', async (t) => {
  const f = await fixture(t)
  await f.publish()
  const app = await f.app()
  const { stage1, rest } = fleet()
  t.ok(stage1.length >= 5 && rest.length >= 5, `stage 1 holds ${stage1.length} of 40`)
  for (const d of stage1) t.equal(await poll(app, d), 200, `${d} (stage 1) is offered the release`)
  for (const d of rest) t.equal(await poll(app, d), 204, `${d} is not in stage 1`)
  let s = await status(app)
  t.match(s, { status: 'active', stage: { number: 1, of: 2, description: '30%', final: false }, counts: { offered: stage1.length, started: stage1.length, installed: 0 } })
  t.match(s.why, /stage 1 of 2 \(30%\) opened: first time the server saw this deployment with a stage plan \(published with esp32dev 1\.2\.0\)/)

  for (const d of stage1.slice(0, -1)) await report(app, d, 'installed')
  s = await status(app)
  t.equal(s.stage?.number, 1, `${stage1.length - 1} of ${stage1.length} installed is below 95%: still stage 1`)
  t.match(s.next, /stage 2 \(100%\) opens when ≥ 95% of ≥ 1 devices that started stage 1 installed \(now \d+ of \d+/)
  await report(app, stage1.at(-1)!, 'installed')
  s = await status(app)
  t.equal(s.stage?.number, 2, 'every device of stage 1 installed: stage 2 is open')
  t.match(s.why, new RegExp(`stage 1 \\(30%\\) succeeded: ${stage1.length} of the ${stage1.length} devices that started it installed \\(100% ≥ 95%, at least 1 started\\); stage 2 of 2 \\(100%\\) opened`))
  t.same(s.counts, { offered: 0, started: 0, installed: 0, failed: 0, stalled: 0, inProgress: 0 }, 'stage 2 counts from its opening')
  for (const d of rest) t.equal(await poll(app, d), 200, `${d} is offered the release in stage 2`)
  t.equal(await poll(app, stage1[0]!, '1.2.0'), 204, 'an updated device is up to date')
  t.match(s.history.map((h) => [h.action, h.by, h.stage]), [['opened', 'server', 1], ['advanced', 'server', 2]])
})

t.test('three devices rolling back halt the deployment: nobody else is offered it, updated devices are unaffected, and it survives a restart', async (t) => {
  const f = await fixture(t)
  await f.publish()
  const app = await f.app()
  const { stage1, rest } = fleet()
  for (const d of stage1) t.equal(await poll(app, d), 200)
  const [a, b, c, ok1] = stage1 as [string, string, string, string]
  await report(app, ok1, 'downloading')
  await report(app, ok1, 'installed')
  await report(app, a, 'rolled-back', { reason: 'self_test_failed' })
  await report(app, b, 'failed', { reason: 'sha256' })
  t.equal((await status(app)).status, 'active', 'two failures: below the threshold of 3')
  await report(app, c, 'rolled-back', { reason: 'self_test_failed' })
  const s = await status(app)
  t.equal(s.status, 'halted', 'the third failure halts it')
  t.match(s.why, `3 of the ${stage1.length} devices that started stage 1 (30%) failed; the limit is 3 failures:`)
  t.match(s.why, `${a} rolled-back (self_test_failed)`)
  t.match(s.why, `${b} failed (sha256)`)
  t.match(s.halt, { by: 'server', releases: ['esp32dev 1.2.0'] })
  t.match(s.next, /answered 204.*--deployment fleet-1\.2.*ferry ota rollout resume fleet-1\.2/)
  t.same(s.failures.map((x) => x.device).sort(), [a, b, c].sort())
  for (const d of [...stage1.slice(4), ...rest]) t.equal(await poll(app, d), 204, `${d}, not yet updated, gets 204`)
  t.equal(await poll(app, a), 204, 'a device that rolled back is not offered it again')
  t.equal(await poll(app, ok1, '1.2.0'), 204, 'an updated device is unaffected')

  const metrics = await app.inject({ url: '/metrics', headers: gw })
  t.equal(metrics.statusCode, 200)
  t.match(metrics.body, /^ferry_ota_rollout_halted\{deployment="fleet-1\.2"\} 1$/m)
  t.match(metrics.body, /^ferry_ota_rollout_decisions_total\{deployment="fleet-1\.2",action="halted",by="server"\} 1$/m)
  t.match(metrics.body, /^ferry_ota_rollout_devices\{deployment="fleet-1\.2",outcome="failed"\} 3$/m)
  t.match(metrics.body, /^ferry_ota_reports_total\{state="rolled-back",source="http"\} 2$/m)

  // A new server on the same folder: the state file and reports.jsonl carry everything.
  await app.close()
  const again = await f.app()
  const s2 = await status(again)
  t.equal(s2.status, 'halted', 'still halted after a restart')
  t.equal(s2.why, s.why, 'with the same explanation')
  t.same(s2.counts, s.counts, 'and the same counts, rebuilt from reports.jsonl')
  for (const d of rest.slice(0, 5)) t.equal(await poll(again, d), 204)
})

t.test('resume after a fixed release: the stage counts afresh, the fix reaches stage 1 and the rollout goes on', async (t) => {
  const f = await fixture(t)
  await f.publish()
  const app = await f.app()
  const { stage1, rest } = fleet()
  for (const d of stage1) await poll(app, d)
  for (const d of stage1.slice(0, 3)) await report(app, d, 'rolled-back', { reason: 'self_test_failed' })
  t.equal((await status(app)).status, 'halted')

  f.clock.now += 60_000
  await f.publish({ version: '1.2.1' })
  const res = await app.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/resume`, headers: op, payload: { reason: '1.2.1 fixes the self-test' } })
  t.equal(res.statusCode, 200, res.body)
  const s = res.json() as RolloutStatus
  t.equal(s.status, 'active')
  t.match(s.why, 'resumed by the operator: 1.2.1 fixes the self-test; stage 1 (30%) counts afresh from now. Releases now: esp32dev 1.2.1, esp32dev 1.2.0 (at the halt: esp32dev 1.2.0).')
  t.same(s.counts, { offered: 0, started: 0, installed: 0, failed: 0, stalled: 0, inProgress: 0 }, 'the old failures no longer count')
  for (const d of rest) t.equal(await poll(app, d), 204, `${d} still waits for stage 2`)
  for (const d of stage1) {
    const r = await app.inject({ url: '/ota/latest?hw=esp32dev&version=1.0.0', headers: { 'x-test-cn': d } })
    t.equal(JSON.parse(Buffer.from(r.json().payload, 'base64').toString()).version, '1.2.1', `${d} is offered the fix`)
    await report(app, d, 'installed', {}, '1.2.1')
  }
  t.equal((await status(app)).stage?.number, 2, 'stage 1 installed the fix: stage 2 opens')
  t.equal(await poll(app, rest[0]!), 200)

  t.equal((await app.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/resume`, headers: op, payload: {} })).json().code, 'FERRY_ERR_OTA_ROLLOUT_CONFLICT', 'resuming an active rollout is a conflict')
})

t.test('resuming with the same release says so', async (t) => {
  const f = await fixture(t)
  await f.publish()
  const app = await f.app()
  await app.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/halt`, headers: op, payload: { reason: 'looking into a report' } })
  const s = (await app.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/resume`, headers: op, payload: {} })).json() as RolloutStatus
  t.match(s.why, 'Note: the releases are the same as at the halt (esp32dev 1.2.0)')
})

t.test('a device that reports downloading and then nothing within the stall timeout counts as failed; so does one offered that never reports', async (t) => {
  const f = await fixture(t)
  await f.publish({ plan: plan({ halt: { failures: 2 }, stall_timeout_ms: 60_000 }) })
  const app = await f.app()
  const { stage1 } = fleet()
  const [a, b] = stage1 as [string, string]
  await poll(app, a)
  await report(app, a, 'downloading')
  f.clock.now += 30_000
  await poll(app, b)
  f.clock.now += 31_000
  let s = await status(app)
  t.match(s.counts, { stalled: 1, inProgress: 1 }, `${a} is stalled 61 s after downloading; ${b} was offered 31 s ago`)
  t.match(s.failures, [{ device: a, state: 'stalled', reason: /^no report for 61s after downloading$/ }])
  f.clock.now += 30_000
  // The engine re-evaluates every second by itself: no request is needed for a stall to count.
  s = (await waitUntil(async () => {
    const x = await status(app)
    return x.status === 'halted' && x
  }, 'the stalls to halt the deployment', 5000)) as RolloutStatus
  t.match(s.why, /2 of the 2 devices that started stage 1 \(30%\) failed; the limit is 2 failures/)
  t.match(s.why, `${b} stalled (no report for 61s after the offer)`)
})

t.test('a device that failed and tries again still counts as failed until it installs', async (t) => {
  const f = await fixture(t)
  await f.publish({ plan: plan({ halt: { failures: 2 }, success: { percent: 95, min_devices: 5, soak_ms: 0 } }) })
  const app = await f.app()
  const [a, b] = fleet().stage1 as [string, string]
  await report(app, a, 'rolled-back', { reason: 'self_test_failed' })
  await report(app, a, 'downloading')
  let s = await status(app)
  t.match(s.counts, { failed: 1, inProgress: 0 }, 'retrying does not clear the failure')
  t.match(s.failures, [{ device: a, state: 'rolled-back', reason: 'self_test_failed' }])
  await report(app, a, 'installed')
  s = await status(app)
  t.match(s.counts, { failed: 0, installed: 1 }, 'an install after it does')
  await report(app, a, 'downloading', {}, '1.2.1')
  await report(app, b, 'failed', { reason: 'download' })
  s = await status(app)
  t.match(s.counts, { failed: 1, inProgress: 1 }, 'an old failure does not come back with the next download')
  t.equal(s.status, 'active')
})

t.test('a percentage halt threshold is judged once min_devices have started', async (t) => {
  const f = await fixture(t)
  await f.publish({ plan: plan({ success: { percent: 95, min_devices: 4, soak_ms: 0 }, halt: { percent: 25 } }) })
  const app = await f.app()
  const { stage1 } = fleet()
  const [a, b, c, d] = stage1 as [string, string, string, string]
  await report(app, a, 'failed', { reason: 'download' })
  t.equal((await status(app)).status, 'active', '1 of 1 failed, but fewer than 4 started')
  await report(app, b, 'installed')
  await report(app, c, 'installed')
  t.equal((await status(app)).status, 'active', '1 of 3')
  await report(app, d, 'downloading')
  const s = await status(app)
  t.equal(s.status, 'halted', '1 of 4 started is 25%')
  t.match(s.why, /1 of the 4 devices that started stage 1 \(30%\) failed; 25% ≥ the 25% limit/)
})

t.test('the soak time: the next stage opens only after the success threshold held that long', async (t) => {
  const f = await fixture(t)
  await f.publish({ plan: plan({ success: { percent: 95, min_devices: 1, soak_ms: 10 * 60_000 } }) })
  const app = await f.app()
  const [a] = fleet().stage1 as [string]
  await report(app, a, 'installed')
  let s = await status(app)
  t.equal(s.stage?.number, 1)
  t.match(s.next, /the success threshold holds since .*; stage 2 \(100%\) opens at .* unless failures come in/)
  f.clock.now += 10 * 60_000 + 1
  s = (await waitUntil(async () => {
    const x = await status(app)
    return x.stage?.number === 2 && x
  }, 'stage 2 after the soak', 5000)) as RolloutStatus
  t.match(s.why, /held for the 10m soak; stage 2 of 2 \(100%\) opened/)
})

t.test('device-list stages, and a plan never widens the signed rollout of the manifest', async (t) => {
  const f = await fixture(t)
  await f.publish({ rollout: { devices: ['a1', 'a2', 'b1'] }, plan: plan({ stages: [{ devices: ['a1', 'a2'] }, { percent: 100 }] }) })
  const app = await f.app()
  t.equal(await poll(app, 'a1'), 200)
  t.equal(await poll(app, 'b1'), 204, 'b1 is in the manifest but not in stage 1')
  const res = await app.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/advance`, headers: op, payload: { reason: 'canaries look fine' } })
  t.equal(res.statusCode, 200)
  t.match(res.json().why, /stage 2 of 2 \(100%\) opened by the operator: canaries look fine; stage 1 had 0 of 1 installed, 0 failed/)
  t.equal(await poll(app, 'b1'), 200, 'b1 in stage 2')
  t.equal(await poll(app, 'zz'), 204, 'the 100% stage still only reaches the devices the signed manifest names')
  t.equal((await app.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/advance`, headers: op, payload: {} })).statusCode, 409, 'no stage after the last')
})

t.test('the operator routes need FERRY_API_TOKEN; status, reports and metrics need the gateway certificate or the token', async (t) => {
  const f = await fixture(t)
  await f.publish()
  const app = await f.app()
  const halt = (headers: Record<string, string>) => app.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/halt`, headers, payload: {} })
  t.equal((await halt({})).statusCode, 401, 'nobody')
  t.equal((await halt(gw)).statusCode, 403, 'the gateway certificate alone does not change a rollout')
  t.equal((await halt({ 'x-test-cn': 'node-1', authorization: 'Bearer wrong-token-000000000' })).statusCode, 403, 'a wrong token')
  t.equal((await app.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/halt`, headers: { 'x-test-cn': 'node-1', authorization: `Bearer ${TOKEN}` } })).statusCode, 200, 'the token, whatever certificate carries it (and no body is needed)')
  t.equal((await halt(op)).json().code, 'FERRY_ERR_OTA_ROLLOUT_CONFLICT', 'halting twice is a conflict')
  t.equal((await app.inject({ method: 'POST', url: '/ota/rollouts/no-such/halt', headers: op, payload: {} })).statusCode, 404)
  for (const url of ['/ota/rollouts', `/ota/rollouts/${DEPLOYMENT}`, '/metrics', '/ota/reports']) {
    t.equal((await app.inject({ url })).statusCode, 401, `${url} without anything`)
    t.equal((await app.inject({ url, headers: { 'x-test-cn': 'node-1' } })).statusCode, 403, `${url} with a device certificate`)
    t.equal((await app.inject({ url, headers: gw })).statusCode, 200, `${url} with the gateway certificate`)
    t.equal((await app.inject({ url, headers: { 'x-test-cn': 'ferry-gateway-3' } })).statusCode, 200, `${url} with a replica's certificate`)
    t.equal((await app.inject({ url, headers: { 'x-test-cn': 'node-1', authorization: `Bearer ${TOKEN}` } })).statusCode, 200, `${url} with the token`)
  }
  const noToken = await f.app({ apiToken: undefined })
  const r = await noToken.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/resume`, headers: op, payload: {} })
  t.equal(r.statusCode, 403)
  t.match(r.json().message, /FERRY_API_TOKEN/)
})

t.test('the gateway forwards MQTT reports; only its certificate may, and they count like HTTP ones', async (t) => {
  const f = await fixture(t)
  await f.publish()
  const app = await f.app()
  const [a, b, c] = fleet().stage1 as [string, string, string]
  const forward = (headers: Record<string, string>, reports: unknown[]) => app.inject({ method: 'POST', url: '/ota/reports', headers, payload: { reports } })
  const r = (device: string, state: string) => ({ ts: f.clock.now, device, deployment: DEPLOYMENT, state, version: '1.2.0', reason: 'self_test_failed' })
  t.equal((await forward({ 'x-test-cn': a }, [r(a, 'rolled-back')])).statusCode, 403, 'a device may not forward')
  t.equal((await forward(op, [{ ...r(a, 'rolled-back'), extra: 1 }])).statusCode, 400)
  const res = await forward(gw, [r(a, 'rolled-back'), r(b, 'rolled-back'), { ...r(c, 'rolled-back'), ts: f.clock.now + DAY }])
  t.same(res.json(), { stored: 3 })
  const s = await status(app)
  t.equal(s.status, 'halted')
  const lines = readFileSync(join(f.dir, 'reports.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { source: string; ts: number })
  t.same(lines.map((l) => l.source), ['mqtt', 'mqtt', 'mqtt'])
  t.ok(lines[2]!.ts <= f.clock.now, 'a report stamped a day ahead is stamped now')
})

t.test('a rollout state file that cannot be read is moved aside and the deployment starts halted', async (t) => {
  const f = await fixture(t)
  await f.publish()
  const app = await f.app()
  await poll(app, fleet().stage1[0]!)
  await app.close()
  const file = join(f.dir, 'rollouts', `${DEPLOYMENT}.json`)
  t.ok(existsSync(file))
  writeFileSync(file, '{"schema":1,"deploy')
  const again = await f.app()
  const s = await status(again)
  t.equal(s.status, 'halted')
  t.match(s.why, /the rollout state file could not be read .* moved to .*\.corrupt-\d+; halted because it is unknown whether the rollout had been stopped/)
  t.ok(readdirSync(join(f.dir, 'rollouts')).some((n) => n.startsWith(`${DEPLOYMENT}.json.corrupt-`)))
  t.equal(await poll(again, fleet().stage1[1]!), 204)
})

t.test('an unstaged deployment is served as before, and can still be halted and resumed', async (t) => {
  const f = await fixture(t)
  await f.publish({ plan: undefined })
  const app = await f.app()
  t.equal(await poll(app, 'node-1'), 200)
  t.match(await status(app), { status: 'unstaged', stage: null, counts: null })
  await app.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/halt`, headers: op, payload: { reason: 'stop' } })
  t.equal(await poll(app, 'node-2'), 204)
  t.equal((await app.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/advance`, headers: op, payload: {} })).statusCode, 409)
  await app.inject({ method: 'POST', url: `/ota/rollouts/${DEPLOYMENT}/resume`, headers: op, payload: {} })
  t.equal(await poll(app, 'node-2'), 200)
})

t.test('a release whose plan cannot be read is not served at all', async (t) => {
  const f = await fixture(t)
  const r = await f.publish()
  writeFileSync(r.planFile!, '{"schema":1,"stages":[]}')
  const app = await f.app()
  for (const d of ['node-0', 'node-1', 'node-2']) t.equal(await poll(app, d), 204)
})
