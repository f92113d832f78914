// The device side of OTA against the real OTA server app (buildApp) over HTTPS with client
// certificates: envelopes signed by the TypeScript signer are accepted, anything altered or signed by
// another key is refused before a byte of the image is fetched, and downloads resume with Range.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { silentLogger } from '../../common/src/logger.js'
import { makePki } from '../../test/helpers/pki.js'
import { tempDir } from '../../test/helpers/tmp.js'
import { buildApp } from '../../ota-server/src/app.js'
import { publishRelease } from '../../ota-server/src/store/publish.js'
import { generateReleaseKey, sha256Hex, signManifest } from '../../ota-server/src/manifest/index.js'
import { OtaClient, type OtaReport } from './ota.js'

const DAY = 86_400_000
const release = generateReleaseKey()

interface T {
  teardown(fn: () => unknown): void
}

async function fixture(t: T) {
  const pki = await makePki(t, ['ota1'])
  const root = tempDir(t)
  const otaDir = join(root, 'ota')
  const image = randomBytes(150_000)
  const imageFile = join(root, 'firmware.bin')
  writeFileSync(imageFile, image)
  await publishRelease({ image: imageFile, version: '1.2.0', hw: 'esp32dev', secureVersion: 2, keys: [release.privateKeyPem], dir: otaDir, expiresInMs: 30 * DAY })
  const tls = pki.tls('ota1')
  const app = await buildApp({ dir: otaDir, https: { cert: readFileSync(pki.files.serverCert), key: readFileSync(pki.files.serverKey), ca: pki.ca } })
  const requests: Array<{ url: string; range?: string }> = []
  app.addHook('onRequest', async (req) => {
    requests.push({ url: req.url, ...(req.headers.range ? { range: req.headers.range } : {}) })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const addr = app.server.address()
  const url = `https://localhost:${typeof addr === 'object' && addr ? addr.port : 0}`
  const workDir = join(root, 'state')
  mkdirSync(workDir)
  const reports: OtaReport[] = []
  const client = (keys: string[] = [release.publicKeyPem]) => {
    const c = new OtaClient({ url, tls, releaseKeys: keys, hw: 'esp32dev', device: 'ota1', workDir, log: silentLogger, report: (r) => void reports.push(r) })
    t.teardown(() => c.close())
    return c
  }
  const envelopeFile = join(otaDir, 'releases', 'esp32dev', '1.2.0.json')
  return { image, sha: sha256Hex(image), requests, reports, client, envelopeFile, workDir }
}

const running = { version: '1.1.0', secureVersion: 1 }

t.test('accepts an envelope from the TypeScript signer, downloads and verifies the image', async (t) => {
  const f = await fixture(t)
  const r = await f.client().check(running)
  t.equal(r.kind, 'verified')
  if (r.kind !== 'verified') return
  t.equal(r.manifest.version, '1.2.0')
  t.equal(r.manifest.image.sha256, f.sha)
  t.equal(r.resumedFrom, 0)
  t.same(f.reports.map((x) => x.state), ['downloading', 'verified'])
  t.equal(f.reports[0]!.deployment, r.manifest.deployment)
  t.match(f.requests[0]!.url, /^\/ota\/latest\?hw=esp32dev&version=1\.1\.0&secure_version=1$/)
  t.equal(f.requests[1]!.url, r.manifest.image.path)
  t.notOk(existsSync(join(f.workDir, `ota1-${f.sha}.part`)), 'partial file removed after verification')
})

t.test('refuses a tampered envelope before downloading anything', async (t) => {
  const f = await fixture(t)
  const env = JSON.parse(readFileSync(f.envelopeFile, 'utf8')) as { payload: string; signatures: unknown[] }
  const payload = Buffer.from(env.payload, 'base64').toString('utf8').replace('"secure_version":2', '"secure_version":9')
  t.not(payload, Buffer.from(env.payload, 'base64').toString('utf8'), 'the payload really changed')
  writeFileSync(f.envelopeFile, JSON.stringify({ ...env, payload: Buffer.from(payload).toString('base64') }))
  const r = await f.client().check(running)
  t.equal(r.kind, 'failed')
  if (r.kind !== 'failed') return
  t.equal(r.reason, 'bad_signature')
  t.equal(r.deployment, 'unverified', 'nothing from the unverified payload is reported')
  t.same(f.reports, [{ deployment: 'unverified', state: 'failed', version: '1.1.0', reason: 'bad_signature' }])
  t.same(f.requests.map((x) => x.url.split('?')[0]), ['/ota/latest'], 'the image was never requested')
})

t.test('refuses an envelope signed by a key the device does not trust', async (t) => {
  const f = await fixture(t)
  const other = generateReleaseKey()
  const r = await f.client([other.publicKeyPem]).check(running)
  t.equal(r.kind, 'failed')
  t.equal(r.kind === 'failed' && r.reason, 'bad_signature')
  t.equal(f.requests.length, 1)
})

t.test('refuses a correctly signed manifest for other hardware and reports its deployment', async (t) => {
  // The real server never offers another hw's release, so a minimal HTTPS server stands in for a
  // misconfigured one: the device's own policy check must still refuse it.
  const pki = await makePki(t, ['ota1'])
  const { envelope, manifest } = signManifest({ hw: 'esp32s3', version: '2.0.0', secureVersion: 1, image: { size: 10, sha256: sha256Hex('x') }, expires: Date.now() + DAY }, release.privateKeyPem)
  const server = createServer({ cert: readFileSync(pki.files.serverCert), key: readFileSync(pki.files.serverKey), ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(envelope))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((r) => server.close(r)))
  const reports: OtaReport[] = []
  const c = new OtaClient({ url: `https://localhost:${(server.address() as AddressInfo).port}`, tls: pki.tls('ota1'), releaseKeys: [release.publicKeyPem], hw: 'esp32dev', device: 'ota1', workDir: tempDir(t), log: silentLogger, report: (r) => void reports.push(r) })
  t.teardown(() => c.close())
  const r = await c.check(running)
  t.equal(r.kind === 'failed' && r.reason, 'wrong_hw')
  t.same(reports, [{ deployment: manifest.deployment, state: 'failed', version: '2.0.0', reason: 'wrong_hw' }])
})

t.test('resumes an interrupted download with Range', async (t) => {
  const f = await fixture(t)
  writeFileSync(join(f.workDir, `ota1-${f.sha}.part`), f.image.subarray(0, 40_000))
  const r = await f.client().check(running)
  t.equal(r.kind, 'verified')
  t.equal(r.kind === 'verified' && r.resumedFrom, 40_000)
  t.equal(f.requests[1]!.range, 'bytes=40000-', 'only the rest was requested')
})

t.test('a partial file holding wrong bytes fails the sha256 check and is discarded', async (t) => {
  const f = await fixture(t)
  const part = join(f.workDir, `ota1-${f.sha}.part`)
  writeFileSync(part, randomBytes(40_000))
  const r = await f.client().check(running)
  t.equal(r.kind, 'failed')
  t.equal(r.kind === 'failed' && r.reason, 'sha256')
  t.same(f.reports.map((x) => x.state), ['downloading', 'failed'])
  t.notOk(existsSync(part), 'the bad partial file is gone, so the next attempt starts clean')
  const again = await f.client().check(running)
  t.equal(again.kind, 'verified', 'and the next check succeeds')
})

t.test('is up to date when the server answers 204', async (t) => {
  const f = await fixture(t)
  const r = await f.client().check({ version: '1.2.0', secureVersion: 2 })
  t.same(r, { kind: 'up-to-date' })
  t.same(f.reports, [])
})

t.test('a download cut off mid-image resumes from where it stopped', async (t) => {
  // A server that drops the connection halfway through the first download, then honours Range.
  const pki = await makePki(t, ['ota1'])
  const image = randomBytes(200_000)
  const sha = sha256Hex(image)
  const { envelope } = signManifest({ hw: 'esp32dev', version: '1.2.0', secureVersion: 1, image: { size: image.length, sha256: sha }, expires: Date.now() + DAY }, release.privateKeyPem)
  const ranges: Array<string | undefined> = []
  const server = createServer({ cert: readFileSync(pki.files.serverCert), key: readFileSync(pki.files.serverKey), ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    if (req.url?.startsWith('/ota/latest')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(envelope))
    ranges.push(req.headers.range)
    if (ranges.length === 1) {
      res.writeHead(200, { 'content-length': String(image.length) })
      res.write(image.subarray(0, 70_000), () => res.destroy())
      return
    }
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0)
    res.writeHead(206, { 'content-range': `bytes ${start}-${image.length - 1}/${image.length}`, 'content-length': String(image.length - start) }).end(image.subarray(start))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise((r) => server.close(r)))
  const reports: OtaReport[] = []
  const c = new OtaClient({ url: `https://localhost:${(server.address() as AddressInfo).port}`, tls: pki.tls('ota1'), releaseKeys: [release.publicKeyPem], hw: 'esp32dev', device: 'ota1', workDir: tempDir(t), log: silentLogger, report: (r) => void reports.push(r), random: () => 0 })
  t.teardown(() => c.close())
  const r = await c.check(running)
  t.equal(r.kind, 'verified')
  t.equal(ranges.length, 2, 'two image requests')
  t.equal(ranges[0], undefined, 'the first from the start')
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1])
  t.ok(resumedAt > 0 && resumedAt <= 70_000, `the second resumed at ${resumedAt}`)
  t.same(reports.map((x) => x.state), ['downloading', 'verified'])
})
