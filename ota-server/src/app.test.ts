import t from 'tap'
import { randomBytes, createPublicKey } from 'node:crypto'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { tempDir } from '../../test/helpers/tmp.js'
import { buildApp, type OtaAppDeps } from './app.js'
import { generateReleaseKey, rejectReasonOf, sha256Hex, verifyEnvelope, type Envelope } from './manifest/index.js'
import { publishRelease, type PublishInput } from './store/publish.js'

const DAY = 86_400_000
const NOW = Date.UTC(2026, 2, 1)
const key = generateReleaseKey()

interface Fixture {
  dir: string
  image: Buffer
  sha: string
  publish(over?: Partial<PublishInput> & { bytes?: Buffer }): Promise<Envelope>
  app(deps?: Partial<OtaAppDeps>): Promise<FastifyInstance>
}

async function fixture(t: { teardown(fn: () => unknown): void }): Promise<Fixture> {
  const root = tempDir(t)
  const dir = join(root, 'ota')
  const image = randomBytes(100_000)
  const imgFile = join(root, 'firmware.bin')
  writeFileSync(imgFile, image)
  let n = 0
  return {
    dir,
    image,
    sha: sha256Hex(image),
    async publish(over = {}) {
      let file = imgFile
      if (over.bytes) {
        file = join(root, `fw-${n++}.bin`)
        writeFileSync(file, over.bytes)
      }
      const r = await publishRelease({ image: file, version: '1.2.0', hw: 'esp32dev', secureVersion: 2, keys: [key.privateKeyPem], dir, expiresInMs: 30 * DAY, now: NOW, ...over })
      return r.envelope
    },
    async app(deps = {}) {
      // inject() has no TLS socket; the test stands in for the certificate CN with a header.
      const app = await buildApp({ dir, now: () => NOW + DAY, identify: (req) => req.headers['x-test-cn'] as string | undefined, ...deps })
      t.teardown(() => app.close())
      return app
    },
  }
}

const dev = { 'x-test-cn': 'dev1' }
const latest = (q: string) => `/ota/latest?${q}`

t.test('GET /ota/latest', async (t) => {
  const f = await fixture(t)
  const envelope = await f.publish()
  const app = await f.app()

  t.test('answers 200 with the published envelope bytes to a device on an older version', async (t) => {
    const res = await app.inject({ url: latest('hw=esp32dev&version=1.1.0&secure_version=2'), headers: dev })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-type'], 'application/json')
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.body, readFileSync(join(f.dir, 'releases/esp32dev/1.2.0.json'), 'utf8'))
    t.same(JSON.parse(res.body), envelope)
    const v = verifyEnvelope(res.body, key.publicKeyPem, { now: NOW + DAY, hw: 'esp32dev', currentVersion: '1.1.0', secureVersion: 2 })
    t.equal(v.manifest.image.sha256, f.sha)
  })

  t.test('answers 204 when the device runs that version or a newer one', async (t) => {
    for (const v of ['1.2.0', '1.2.1', '2.0.0', '1.2.0+local'])
      t.equal((await app.inject({ url: latest(`hw=esp32dev&version=${encodeURIComponent(v)}`), headers: dev })).statusCode, 204, v)
    t.equal((await app.inject({ url: latest('hw=esp32dev&version=1.2.0-rc.1'), headers: dev })).statusCode, 200, 'a pre-release is older')
  })

  t.test('never offers a release below the secure_version the device reports', async (t) => {
    t.equal((await app.inject({ url: latest('hw=esp32dev&version=1.0.0&secure_version=3'), headers: dev })).statusCode, 204)
  })

  t.test('offers nothing for other hardware', async (t) => {
    t.equal((await app.inject({ url: latest('hw=esp32s3&version=1.0.0'), headers: dev })).statusCode, 204)
  })

  t.test('answers 400 to a bad query', async (t) => {
    for (const q of ['version=1.0.0', 'hw=esp32dev', 'hw=esp32dev&version=1.0', 'hw=..%2Fesp32dev&version=1.0.0', 'hw=ESP32&version=1.0.0', 'hw=esp32dev&version=1.0.0&secure_version=-1', 'hw=esp32dev&version=1.0.0&secure_version=x', `hw=esp32dev&version=1.0.0-${'a'.repeat(80)}`]) {
      const res = await app.inject({ url: latest(q), headers: dev })
      t.equal(res.statusCode, 400, q)
      t.equal(res.json().code, 'FERRY_ERR_OTA_BAD_REQUEST')
    }
  })

  t.test('answers 401 without a certificate and 403 to a certificate that is not a device', async (t) => {
    t.equal((await app.inject({ url: latest('hw=esp32dev&version=1.0.0') })).statusCode, 401)
    t.equal((await app.inject({ url: latest('hw=esp32dev&version=1.0.0'), headers: { 'x-test-cn': 'ferry-gateway' } })).statusCode, 403)
    t.equal((await app.inject({ url: latest('hw=esp32dev&version=1.0.0'), headers: { 'x-test-cn': 'Bad CN' } })).statusCode, 403)
  })
})

t.test('an expired release is not offered', async (t) => {
  const f = await fixture(t)
  await f.publish({ expiresInMs: DAY / 2 })
  const app = await f.app()
  t.equal((await app.inject({ url: latest('hw=esp32dev&version=1.0.0'), headers: dev })).statusCode, 204)
})

t.test('a device left out of the newest rollout gets the newest release it is in', async (t) => {
  const f = await fixture(t)
  await f.publish({ version: '1.1.0' })
  await f.publish({ version: '1.2.0', bytes: randomBytes(1000), rollout: { devices: ['dev2'] } })
  const app = await f.app()
  const v = (cn: string) => app.inject({ url: latest('hw=esp32dev&version=1.0.0'), headers: { 'x-test-cn': cn } }).then((r) => JSON.parse(Buffer.from(r.json().payload, 'base64').toString()).version)
  t.equal(await v('dev1'), '1.1.0')
  t.equal(await v('dev2'), '1.2.0')
  const onOld = await app.inject({ url: latest('hw=esp32dev&version=1.1.0'), headers: dev })
  t.equal(onOld.statusCode, 204, 'dev1 on 1.1.0 is up to date for its rollout')
})

t.test('a 50% rollout over 200 devices offers the update to about half, the same half every time', async (t) => {
  const f = await fixture(t)
  await f.publish({ rollout: { percent: 50 } })
  const app = await f.app({ rateLimit: { max: 1000, downloadMax: 1000, windowMs: 60_000 } })
  const ids = Array.from({ length: 200 }, (_, i) => `node-${i}`)
  const pick = async () => {
    const out: string[] = []
    for (const id of ids) if ((await app.inject({ url: latest('hw=esp32dev&version=1.0.0'), headers: { 'x-test-cn': id } })).statusCode === 200) out.push(id)
    return out
  }
  const first = await pick()
  t.ok(first.length >= 80 && first.length <= 120, `selected ${first.length} of 200`)
  t.same(await pick(), first)
})

t.test('with FERRY_OTA_PUB set, an envelope that does not verify is never served', async (t) => {
  const f = await fixture(t)
  await f.publish()
  const file = join(f.dir, 'releases/esp32dev/1.2.0.json')
  const env = JSON.parse(readFileSync(file, 'utf8')) as Envelope
  const payload = Buffer.from(env.payload, 'base64').toString().replace('"secure_version":2', '"secure_version":9')
  writeFileSync(file, JSON.stringify({ ...env, payload: Buffer.from(payload).toString('base64') }))
  const strict = await f.app({ trustedKeys: [createPublicKey(key.publicKeyPem)] })
  t.equal((await strict.inject({ url: latest('hw=esp32dev&version=1.0.0'), headers: dev })).statusCode, 204)
  // Without the key the server passes it on, and the device's own check refuses it.
  const lax = await f.app()
  const res = await lax.inject({ url: latest('hw=esp32dev&version=1.0.0'), headers: dev })
  t.equal(res.statusCode, 200)
  t.throws(() => verifyEnvelope(res.body, key.publicKeyPem, { now: NOW + DAY }), { code: 'FERRY_ERR_MANIFEST_SIGNATURE' })
  try {
    verifyEnvelope(res.body, key.publicKeyPem, { now: NOW + DAY })
  } catch (err) {
    t.equal(rejectReasonOf(err), 'bad_signature')
  }
})

t.test('GET /ota/images/<sha256>.bin', async (t) => {
  const f = await fixture(t)
  await f.publish()
  const app = await f.app()
  const url = () => `/ota/images/${f.sha}.bin`

  t.test('serves the whole image with a strong sha256 ETag and Accept-Ranges', async (t) => {
    const res = await app.inject({ url: url(), headers: dev })
    t.equal(res.statusCode, 200)
    t.equal(res.headers.etag, `"${f.sha}"`)
    t.equal(res.headers['accept-ranges'], 'bytes')
    t.equal(res.headers['content-length'], String(f.image.length))
    t.equal(res.headers['content-type'], 'application/octet-stream')
    t.same(res.rawPayload, f.image)
  })

  t.test('serves byte ranges with 206 and Content-Range', async (t) => {
    const cases: Array<[string, number, number]> = [['bytes=0-99', 0, 99], ['bytes=99990-', 99990, 99999], ['bytes=-10', 99990, 99999], ['bytes=50000-200000', 50000, 99999]]
    for (const [range, start, end] of cases) {
      const res = await app.inject({ url: url(), headers: { ...dev, range } })
      t.equal(res.statusCode, 206, range)
      t.equal(res.headers['content-range'], `bytes ${start}-${end}/100000`)
      t.same(res.rawPayload, f.image.subarray(start, end + 1))
    }
  })

  t.test('answers 416 to a range beyond the end', async (t) => {
    const res = await app.inject({ url: url(), headers: { ...dev, range: 'bytes=100000-' } })
    t.equal(res.statusCode, 416)
    t.equal(res.headers['content-range'], 'bytes */100000')
  })

  t.test('answers 304 to If-None-Match with the ETag', async (t) => {
    for (const inm of [`"${f.sha}"`, `W/"${f.sha}"`, `"x", "${f.sha}"`, '*']) {
      const res = await app.inject({ url: url(), headers: { ...dev, 'if-none-match': inm } })
      t.equal(res.statusCode, 304, inm)
      t.equal(res.rawPayload.length, 0)
    }
    t.equal((await app.inject({ url: url(), headers: { ...dev, 'if-none-match': '"other"' } })).statusCode, 200)
  })

  t.test('ignores Range when If-Range names another version', async (t) => {
    t.equal((await app.inject({ url: url(), headers: { ...dev, range: 'bytes=0-9', 'if-range': '"other"' } })).statusCode, 200)
    t.equal((await app.inject({ url: url(), headers: { ...dev, range: 'bytes=0-9', 'if-range': `"${f.sha}"` } })).statusCode, 206)
  })

  t.test('HEAD gives the length without the body', async (t) => {
    const res = await app.inject({ method: 'HEAD', url: url(), headers: dev })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['content-length'], '100000')
    t.equal(res.rawPayload.length, 0)
  })

  t.test('answers 404 to an unknown image and 401 without a certificate', async (t) => {
    t.equal((await app.inject({ url: `/ota/images/${'0'.repeat(64)}.bin`, headers: dev })).statusCode, 404)
    t.equal((await app.inject({ url: url() })).statusCode, 401)
  })

  t.test('refuses path traversal in every spelling without touching the file system', async (t) => {
    writeFileSync(join(f.dir, 'secret.txt'), 'SECRET')
    const attempts = [
      '/ota/images/../secret.txt',
      '/ota/images/..%2Fsecret.txt',
      '/ota/images/..%2fsecret.txt',
      '/ota/images/%2e%2e%2fsecret.txt',
      '/ota/images/%2E%2E/secret.txt',
      '/ota/images/%252e%252e%252fsecret.txt',
      '/ota/images/..%5csecret.txt',
      '/ota/images//etc/passwd',
      '/ota/images/%2fetc%2fpasswd',
      `/ota/images/${f.sha}.bin%00.txt`,
      `/ota/images/${f.sha.toUpperCase()}.bin`,
      `/ota/images/${f.sha}.bin/..`,
      '/ota/images/....//....//secret.txt',
    ]
    for (const u of attempts) {
      const res = await app.inject({ url: u, headers: dev })
      t.ok(res.statusCode === 400 || res.statusCode === 404, `${u} -> ${res.statusCode}`)
      t.notMatch(res.body, /SECRET|root:/)
    }
  })

  t.test('refuses to serve an image whose bytes no longer match its sha256', async (t) => {
    const file = join(f.dir, 'images', `${f.sha}.bin`)
    const bad = Buffer.from(f.image)
    bad[500]! ^= 0xff
    writeFileSync(file, bad)
    const res = await app.inject({ url: url(), headers: dev })
    t.equal(res.statusCode, 500)
    t.equal(res.json().code, 'FERRY_ERR_OTA_IMAGE_CORRUPT')
    writeFileSync(file, f.image)
    t.equal((await app.inject({ url: url(), headers: dev })).statusCode, 200, 'serves it again once restored')
  })

  t.test('answers 404 once an image it keeps in memory is removed from disk, and serves it again when it is back', async (t) => {
    const file = join(f.dir, 'images', `${f.sha}.bin`)
    t.equal((await app.inject({ url: url(), headers: dev })).statusCode, 200, 'served, so now kept in memory')
    rmSync(file)
    t.equal((await app.inject({ url: url(), headers: dev })).statusCode, 404)
    writeFileSync(file, f.image)
    const res = await app.inject({ url: url(), headers: dev })
    t.equal(res.statusCode, 200)
    t.same(res.rawPayload, f.image)
  })
})

t.test('answers 503 with Retry-After when downloads are at the limit', async (t) => {
  const f = await fixture(t)
  await f.publish()
  const app = await f.app({ maxDownloads: 0, retryAfterS: 42 })
  for (const u of [`/ota/images/${f.sha}.bin`, latest('hw=esp32dev&version=1.0.0')]) {
    const res = await app.inject({ url: u, headers: dev })
    t.equal(res.statusCode, 503, u)
    t.equal(res.headers['retry-after'], '42')
    t.equal(res.json().code, 'FERRY_ERR_OTA_BUSY')
  }
  t.equal((await app.inject({ url: latest('hw=esp32dev&version=1.2.0'), headers: dev })).statusCode, 204, 'an up-to-date device is still answered')
})

t.test('rate-limits each device separately', async (t) => {
  const f = await fixture(t)
  await f.publish()
  const app = await f.app({ rateLimit: { max: 3, downloadMax: 3, windowMs: 60_000 } })
  const codes = []
  for (let i = 0; i < 4; i++) codes.push((await app.inject({ url: latest('hw=esp32dev&version=1.2.0'), headers: dev })).statusCode)
  t.same(codes, [204, 204, 204, 429])
  const limited = await app.inject({ url: latest('hw=esp32dev&version=1.2.0'), headers: dev })
  t.ok(Number(limited.headers['retry-after']) > 0, 'says when to come back')
  t.equal((await app.inject({ url: latest('hw=esp32dev&version=1.2.0'), headers: { 'x-test-cn': 'dev2' } })).statusCode, 204, 'another device is not affected')
})

t.test('POST /ota/report and GET /ota/reports', async (t) => {
  const f = await fixture(t)
  const app = await f.app({ apiToken: 'a-long-enough-token' })
  const report = { deployment: 'esp32dev-1.2.0', state: 'failed', version: '1.2.0', reason: 'bad_signature' }

  t.test('records a report under the certificate CN', async (t) => {
    const res = await app.inject({ method: 'POST', url: '/ota/report', headers: dev, payload: report })
    t.equal(res.statusCode, 204)
    const lines = readFileSync(join(f.dir, 'reports.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    t.same(lines, [{ ts: NOW + DAY, device: 'dev1', source: 'http', ...report }])
  })

  t.test('refuses an invalid body with 400 and an oversize one with 413', async (t) => {
    for (const bad of [{ ...report, state: 'exploded' }, { ...report, extra: 1 }, { ...report, version: 'x' }, { state: 'failed' }]) {
      t.equal((await app.inject({ method: 'POST', url: '/ota/report', headers: dev, payload: bad })).statusCode, 400)
    }
    const big = await app.inject({ method: 'POST', url: '/ota/report', headers: dev, payload: { ...report, reason: 'x'.repeat(5000) } })
    t.equal(big.statusCode, 413)
    t.equal(big.json().code, 'FERRY_ERR_OTA_TOO_LARGE')
    t.equal((await app.inject({ method: 'POST', url: '/ota/report', payload: report })).statusCode, 401)
    t.equal(readFileSync(join(f.dir, 'reports.jsonl'), 'utf8').trim().split('\n').length, 1, 'nothing refused was recorded')
  })

  t.test('shows reports to the gateway certificate or the API token only', async (t) => {
    const gw = await app.inject({ url: '/ota/reports?device=dev1', headers: { 'x-test-cn': 'ferry-gateway' } })
    t.equal(gw.statusCode, 200)
    t.equal(gw.json().reports.length, 1)
    t.equal((await app.inject({ url: '/ota/reports', headers: { authorization: 'Bearer a-long-enough-token' } })).statusCode, 200)
    t.equal((await app.inject({ url: '/ota/reports', headers: { authorization: 'Bearer wrong-token-wrong-token' } })).statusCode, 403)
    t.equal((await app.inject({ url: '/ota/reports', headers: dev })).statusCode, 403)
    t.equal((await app.inject({ url: '/ota/reports' })).statusCode, 401)
  })
})
