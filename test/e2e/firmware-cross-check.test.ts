// Cross-check between the release tooling and the firmware (issue 8 acceptance): an envelope made by
// `ferry ota publish` is accepted by the firmware's own verifier (firmware/build/host/verify_manifest,
// the same C++ and mbedTLS code the ESP32 runs), and the same envelope with one payload byte changed,
// or signed by another key, is refused. openssl checks the signature as a third implementation.
// Lives in test/e2e because the tap config excludes firmware/**.
import t from 'tap'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { run as otaCli } from '../../ota-server/src/release-cli.js'
import { tempDir } from '../helpers/tmp.js'

const exec = promisify(execFile)
const firmware = fileURLToPath(new URL('../../firmware/', import.meta.url))
const verifier = join(firmware, 'build/host/verify_manifest')

interface Verdict {
  code: number
  result: { ok: boolean; reason: string; detail: string; version?: string }
}

async function verify(args: string[]): Promise<Verdict> {
  try {
    const { stdout } = await exec(verifier, args)
    return { code: 0, result: JSON.parse(stdout) }
  } catch (err) {
    const e = err as { code?: number; stdout?: string }
    if (typeof e.code !== 'number') throw err
    return { code: e.code, result: e.stdout ? JSON.parse(e.stdout) : { ok: false, reason: '', detail: '' } }
  }
}

/** `ferry ota <argv>` in-process, with its stdout kept out of the TAP stream. */
async function ferryOta(argv: string[]): Promise<number> {
  const write = process.stdout.write
  process.stdout.write = (() => true) as typeof process.stdout.write
  try {
    return await otaCli(argv)
  } finally {
    process.stdout.write = write
  }
}

t.before(async () => {
  // Incremental: rebuilds only when the core changed, so a stale binary never answers for new code.
  await exec('make', ['-C', firmware, 'build/host/verify_manifest'])
})

t.test('verify_manifest accepts what ferry ota publish signs, and refuses any change', async (t) => {
  const dir = tempDir(t, 'ferry-fw-xcheck-')
  const image = join(dir, 'firmware.bin')
  writeFileSync(image, Buffer.concat([Buffer.from([0xe9]), randomBytes(64 * 1024 + 17)]))
  t.equal(await ferryOta(['keygen', '--out', join(dir, 'keys')]), 0)
  t.equal(await ferryOta(['keygen', '--out', join(dir, 'other-keys')]), 0)
  const pub = join(dir, 'keys/release.pub')
  const publish = (key: string, ota: string) =>
    ferryOta(['publish', image, '--version', '1.4.0', '--hw', 'esp32dev', '--secure-version', '2', '--key', key, '--dir', ota, '--expires', '30d'])
  t.equal(await publish(join(dir, 'keys/release.key'), join(dir, 'ota')), 0)
  t.equal(await publish(join(dir, 'other-keys/release.key'), join(dir, 'ota-other')), 0)
  const envelopeFile = join(dir, 'ota/releases/esp32dev/1.4.0.json')
  const device = ['--hw', 'esp32dev', '--secure-version', '2', '--version', '1.3.0']

  t.test('accepts the published envelope and its image', async (t) => {
    const v = await verify([pub, envelopeFile, ...device, '--image', image])
    t.equal(v.code, 0, v.result.detail)
    t.equal(v.result.ok, true)
    t.equal(v.result.version, '1.4.0')
  })

  t.test('refuses the envelope after one payload byte changed', async (t) => {
    const env = JSON.parse(readFileSync(envelopeFile, 'utf8'))
    const payload = Buffer.from(env.payload, 'base64')
    const at = payload.indexOf('"version":"1.4.0"') + '"version":"1.'.length
    t.ok(at > 20, 'control: the version field is in the payload')
    payload[at] = '5'.charCodeAt(0) // still valid JSON, now claims 1.5.0
    const tampered = join(dir, 'tampered.json')
    writeFileSync(tampered, JSON.stringify({ ...env, payload: payload.toString('base64') }))
    const v = await verify([pub, tampered, ...device])
    t.equal(v.code, 1)
    t.equal(v.result.reason, 'bad_signature')
  })

  t.test('refuses an envelope signed by another release key', async (t) => {
    const v = await verify([pub, join(dir, 'ota-other/releases/esp32dev/1.4.0.json'), ...device])
    t.equal(v.code, 1)
    t.equal(v.result.reason, 'bad_signature')
  })

  t.test('refuses an image that differs from the signed sha256', async (t) => {
    const bytes = readFileSync(image)
    bytes[1000] = (bytes[1000] ?? 0) ^ 0x01
    const other = join(dir, 'other.bin')
    writeFileSync(other, bytes)
    const v = await verify([pub, envelopeFile, ...device, '--image', other])
    t.equal(v.code, 1)
    t.equal(v.result.reason, 'sha256')
  })

  t.test('applies the device policy: wrong hw, downgrade, secure_version', async (t) => {
    t.equal((await verify([pub, envelopeFile, '--hw', 'esp32c3'])).result.reason, 'wrong_hw')
    t.equal((await verify([pub, envelopeFile, '--version', '1.4.0'])).result.reason, 'not_newer')
    t.equal((await verify([pub, envelopeFile, '--secure-version', '3'])).result.reason, 'secure_version_too_low')
    const late = String(Date.now() + 31 * 86_400_000)
    t.equal((await verify([pub, envelopeFile, '--now', late])).result.reason, 'expired')
  })

  t.test('openssl verifies the same signature over the same bytes', async (t) => {
    const env = JSON.parse(readFileSync(envelopeFile, 'utf8'))
    writeFileSync(join(dir, 'payload.bin'), Buffer.from(env.payload, 'base64'))
    writeFileSync(join(dir, 'sig.der'), Buffer.from(env.signatures[0].sig, 'base64'))
    const { stdout } = await exec('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', join(dir, 'sig.der'), join(dir, 'payload.bin')])
    t.match(stdout, /Verified OK/)
  })

  t.test('exits 2 on bad usage', async (t) => {
    t.equal((await verify([pub])).code, 2)
    t.equal((await verify([join(dir, 'missing.pub'), envelopeFile])).code, 2)
  })
})
