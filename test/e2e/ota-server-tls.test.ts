/**
 * The OTA server over real TLS, driven by the real curl and openssl binaries: the acceptance lines of
 * the OTA issue. In-process server (startOtaServer), real PKI, real release key.
 */
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import { randomBytes, createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { makePki } from '../helpers/pki.js'
import { freePort } from '../helpers/ports.js'
import { tempDir } from '../helpers/tmp.js'
import { initPki, issueDevice, revokeDevice } from '../../common/src/pki/pki.js'
import { startOtaServer } from '../../ota-server/src/server.js'
import { run as ota } from '../../ota-server/src/release-cli.js'
import type { OtaServerConfig } from '../../ota-server/src/config.js'
import type { Envelope, Manifest } from '../../ota-server/src/manifest/index.js'
import { quiet } from '../helpers/quiet.js'

const exec = promisify(execFile)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** curl with a device identity; resolves with status code and body, rejects when curl fails (e.g. TLS refused). */
async function curl(args: string[], opts: { ca: string; cert?: string; key?: string }) {
  const tls = ['--cacert', opts.ca, ...(opts.cert ? ['--cert', opts.cert, '--key', opts.key!] : [])]
  const { stdout } = await exec('curl', ['-sS', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', ...tls, ...args], { encoding: 'buffer', maxBuffer: 16 << 20 })
  const nl = stdout.lastIndexOf(0x0a)
  return { status: Number(stdout.subarray(nl + 1).toString()), body: stdout.subarray(0, nl) }
}

t.test('OTA server over mutual TLS', async (t) => {
  const pki = await makePki(t, ['dev1', 'dev2', 'dev3'])
  const root = tempDir(t)
  const dir = join(root, 'ota')
  const image = randomBytes(300_000)
  const sha = createHash('sha256').update(image).digest('hex')
  writeFileSync(join(root, 'fw.bin'), image)
  await quiet(() => ota(['keygen', '--out', join(root, 'keys')]))
  await quiet(() => ota(['publish', join(root, 'fw.bin'), '--version', '2.0.0', '--hw', 'esp32dev', '--secure-version', '4', '--key', join(root, 'keys/release.key'), '--dir', dir]))

  const config: OtaServerConfig = {
    FERRY_OTA_PORT: await freePort(),
    FERRY_OTA_HOST: '127.0.0.1',
    FERRY_OTA_DIR: dir,
    FERRY_OTA_CERT: pki.files.serverCert,
    FERRY_OTA_KEY: pki.files.serverKey,
    FERRY_OTA_CA: pki.files.caCert,
    FERRY_OTA_CRL: pki.files.crl,
    FERRY_OTA_PUB: join(root, 'keys/release.pub'),
    FERRY_OTA_RATE_LIMIT_MAX: 100,
    FERRY_OTA_DOWNLOAD_RATE_LIMIT_MAX: 100,
    FERRY_OTA_RATE_LIMIT_WINDOW_MS: 60_000,
    FERRY_OTA_MAX_DOWNLOADS: 4,
    FERRY_OTA_MAX_DOWNLOADS_PER_DEVICE: 16, // above the total: the 503 test below fills it from one device
    FERRY_OTA_RETRY_AFTER_S: 5,
  }
  const server = await startOtaServer(config)
  t.teardown(() => server.close())
  // The certificate's SANs are localhost and 127.0.0.1, so curl checks the server name for real.
  const base = `https://localhost:${server.port}`
  const as = (id: string) => ({ ca: pki.files.caCert, cert: pki.files.deviceCert(id), key: pki.files.deviceKey(id) })
  const latestUrl = `${base}/ota/latest?hw=esp32dev&version=1.9.0&secure_version=4`

  t.test('openssl dgst -verify accepts the served envelope with release.pub', async (t) => {
    const res = await curl([latestUrl], as('dev1'))
    t.equal(res.status, 200)
    const env = JSON.parse(res.body.toString()) as Envelope
    writeFileSync(join(root, 'payload.bin'), Buffer.from(env.payload, 'base64'))
    writeFileSync(join(root, 'sig.der'), Buffer.from(env.signatures[0]!.sig, 'base64'))
    const { stdout } = await exec('openssl', ['dgst', '-sha256', '-verify', join(root, 'keys/release.pub'), '-signature', join(root, 'sig.der'), join(root, 'payload.bin')])
    t.match(stdout, /Verified OK/)
    // And the CLI verifier accepts the served envelope plus the image.
    writeFileSync(join(root, 'served.json'), res.body)
    t.equal(await quiet(() => ota(['verify', join(root, 'served.json'), '--pub', join(root, 'keys/release.pub'), '--image', join(root, 'fw.bin')])), 0)
  })

  t.test('curl downloads the image in two Range requests that match the manifest sha256', async (t) => {
    const env = JSON.parse((await curl([latestUrl], as('dev1'))).body.toString()) as Envelope
    const m = JSON.parse(Buffer.from(env.payload, 'base64').toString()) as Manifest
    const url = `${base}${m.image.path}`
    const half = Math.floor(m.image.size / 2)
    const a = await curl(['-r', `0-${half - 1}`, '-D', join(root, 'h1.txt'), url], as('dev1'))
    const b = await curl(['-r', `${half}-`, url], as('dev1'))
    t.equal(a.status, 206)
    t.equal(b.status, 206)
    t.equal(a.body.length, half)
    t.equal(b.body.length, m.image.size - half)
    t.equal(createHash('sha256').update(a.body).update(b.body).digest('hex'), m.image.sha256)
    t.equal(m.image.sha256, sha)
    const headers = readFileSync(join(root, 'h1.txt'), 'utf8').toLowerCase()
    t.match(headers, `etag: "${sha}"`)
    t.match(headers, 'accept-ranges: bytes')
    t.match(headers, `content-range: bytes 0-${half - 1}/${m.image.size}`)
    const cached = await curl(['-H', `If-None-Match: "${sha}"`, url], as('dev1'))
    t.equal(cached.status, 304)
  })

  t.test('refuses a connection without a client certificate', async (t) => {
    await t.rejects(curl([latestUrl], { ca: pki.files.caCert }))
  })

  t.test('refuses a certificate from another CA', async (t) => {
    const other = join(tempDir(t), 'pki')
    await initPki(other)
    await issueDevice(other, 'dev1')
    await t.rejects(curl([latestUrl], { ca: pki.files.caCert, cert: join(other, 'devices/dev1.crt'), key: join(other, 'devices/dev1.key') }))
  })

  t.test('refuses a revoked certificate once the CRL is reloaded (SIGHUP path)', async (t) => {
    t.equal((await curl([latestUrl], as('dev2'))).status, 200, 'dev2 works before revocation')
    await revokeDevice(pki.dir, 'dev2')
    server.reloadTls()
    await t.rejects(curl([latestUrl], as('dev2')))
    t.equal((await curl([latestUrl], as('dev1'))).status, 200, 'other devices are unaffected')
  })

  t.test('notices a changed CRL file without a signal', async (t) => {
    t.equal((await curl([latestUrl], as('dev3'))).status, 200)
    await revokeDevice(pki.dir, 'dev3')
    // The watcher polls once a second; wait for the refusal with a deadline rather than a fixed sleep.
    const deadline = Date.now() + 10_000
    let refused = false
    while (!refused && Date.now() < deadline) {
      refused = await curl([latestUrl], as('dev3')).then(() => false, () => true)
      if (!refused) await new Promise((r) => setTimeout(r, 200))
    }
    t.ok(refused, 'dev3 is refused after the CRL changed on disk')
  })

  t.test('refuses path traversal sent verbatim over the wire', async (t) => {
    writeFileSync(join(dir, 'secret.txt'), 'SECRET')
    for (const p of ['/ota/images/../secret.txt', '/ota/images/..%2fsecret.txt', '/ota/images/%2e%2e%2fsecret.txt', '/ota/images/%252e%252e%252fsecret.txt', '/ota/images/..%2f..%2f..%2fetc%2fpasswd', '/ota/images//etc/passwd', '/ota/../../etc/passwd']) {
      const res = await curl(['--path-as-is', `${base}${p}`], as('dev1'))
      t.ok(res.status === 400 || res.status === 404, `${p} -> ${res.status}`)
      t.notMatch(res.body.toString(), /SECRET|root:/)
    }
  })

  t.test('answers 503 with Retry-After while downloads are at the limit', async (t) => {
    // Four slow downloads hold every slot: curl reads at 1 KiB/s, and the image is larger than what
    // loopback socket buffers absorb, so none of them finishes during the test.
    const big = randomBytes(32 << 20)
    const bigSha = createHash('sha256').update(big).digest('hex')
    writeFileSync(join(root, 'big.bin'), big)
    await quiet(() => ota(['publish', join(root, 'big.bin'), '--version', '1.0.0', '--hw', 'bigboard', '--secure-version', '0', '--key', join(root, 'keys/release.key'), '--dir', dir]))
    const slow = Array.from({ length: 4 }, () => spawn('curl', ['-sS', '--limit-rate', '1K', '-o', '/dev/null', '--cacert', pki.files.caCert, '--cert', pki.files.deviceCert('dev1'), '--key', pki.files.deviceKey('dev1'), `${base}/ota/images/${bigSha}.bin`]))
    t.teardown(() => slow.forEach((c) => c.kill()))
    // Polled, not slept: four TLS handshakes can take many seconds while other tests load the machine.
    const deadline = Date.now() + 60_000
    let res = await curl(['-D', '-', `${base}/ota/images/${sha}.bin`, '-r', '0-0'], as('dev1'))
    while (res.status !== 503 && Date.now() < deadline && slow.every((c) => c.exitCode === null)) {
      await new Promise((r) => setTimeout(r, 100))
      res = await curl(['-D', '-', `${base}/ota/images/${sha}.bin`, '-r', '0-0'], as('dev1'))
    }
    t.equal(res.status, 503)
    t.match(res.body.toString().toLowerCase(), 'retry-after: 5')
    slow.forEach((c) => c.kill())
    await Promise.all(slow.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)))
    const after = Date.now() + 60_000
    let ok = 0
    while (ok !== 206 && Date.now() < after) {
      ok = (await curl(['-r', '0-0', `${base}/ota/images/${sha}.bin`], as('dev1'))).status
      if (ok !== 206) await new Promise((r) => setTimeout(r, 100))
    }
    t.equal(ok, 206, 'slots free up when the downloads end')
  })
})

t.test('ferry ota-server runs as a process and stops on SIGTERM', async (t) => {
  const pki = await makePki(t, ['dev1'])
  const root = tempDir(t)
  const port = await freePort()
  const entry = join(root, 'ferry.mjs')
  writeFileSync(entry, `import { main } from ${JSON.stringify(join(ROOT, 'cli/ferry.ts'))}\nprocess.exitCode = await main(process.argv.slice(2))\n`)
  const env = {
    ...process.env,
    FERRY_ENV_FILE: join(root, 'none.env'),
    FERRY_OTA_PORT: String(port),
    FERRY_OTA_HOST: '127.0.0.1',
    FERRY_OTA_DIR: join(root, 'ota'),
    FERRY_OTA_CERT: pki.files.serverCert,
    FERRY_OTA_KEY: pki.files.serverKey,
    FERRY_OTA_CA: pki.files.caCert,
    FERRY_OTA_CRL: pki.files.crl,
  }
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'ota-server'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => child.kill('SIGKILL'))
  let log = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      log += d
      if (log.includes('OTA server listening')) resolve()
    })
    child.stderr.on('data', (d) => (log += d))
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${log}`)))
  })
  const res = await curl([`https://127.0.0.1:${port}/ota/latest?hw=esp32dev&version=1.0.0`], { ca: pki.files.caCert, cert: pki.files.deviceCert('dev1'), key: pki.files.deviceKey('dev1') })
  t.equal(res.status, 204, 'nothing published yet')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
})

t.test('ferry ota-server stops with exit 2 and names the variable when the config is bad', async (t) => {
  const root = tempDir(t)
  const entry = join(root, 'ferry.mjs')
  writeFileSync(entry, `import { main } from ${JSON.stringify(join(ROOT, 'cli/ferry.ts'))}\nprocess.exitCode = await main(process.argv.slice(2))\n`)
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_')))
  const r = await exec(process.execPath, ['--import', 'tsx', entry, 'ota-server'], { cwd: ROOT, env: { ...env, FERRY_ENV_FILE: join(root, 'none.env'), FERRY_OTA_PORT: 'x' } }).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e)
  t.equal(r.code, 2)
  t.match(r.stderr, /FERRY_OTA_PORT/)
  t.match(r.stderr, /FERRY_OTA_DIR/)
})
