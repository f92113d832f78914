import t from 'tap'
import { randomBytes } from 'node:crypto'
import { readFileSync, statSync, writeFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../../test/helpers/tmp.js'
import { makePki } from '../../test/helpers/pki.js'
import { run } from './release-cli.js'
import { sha256Hex, type Envelope } from './manifest/index.js'

/** Runs `ferry ota …` in-process and captures what it prints. */
async function ota(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = []
  const err: string[] = []
  const o = process.stdout.write
  const e = process.stderr.write
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof o
  process.stderr.write = ((s: string) => (err.push(String(s)), true)) as typeof e
  try {
    const code = await run(argv).catch((x: Error & { code?: string }) => {
      err.push(x.message)
      return x.code === 'FERRY_ERR_USAGE' ? 2 : 1
    })
    return { code, stdout: out.join(''), stderr: err.join('') }
  } finally {
    process.stdout.write = o
    process.stderr.write = e
  }
}

t.test('keygen, publish and verify work together', async (t) => {
  const root = tempDir(t)
  const keys = join(root, 'keys')
  const dir = join(root, 'ota')
  const image = randomBytes(50_000)
  writeFileSync(join(root, 'fw.bin'), image)

  t.test('keygen writes a 0600 private key and a public key, and will not overwrite them', async (t) => {
    const r = await ota('keygen', '--out', keys)
    t.equal(r.code, 0, r.stderr)
    t.equal(statSync(join(keys, 'release.key')).mode & 0o777, 0o600)
    t.match(readFileSync(join(keys, 'release.key'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/)
    t.match(readFileSync(join(keys, 'release.pub'), 'utf8'), /^-----BEGIN PUBLIC KEY-----/)
    t.equal((await ota('keygen', '--out', keys)).code, 2)
  })

  t.test('publish copies the image by its sha256 and writes the signed envelope', async (t) => {
    const r = await ota('publish', join(root, 'fw.bin'), '--version', '1.3.0', '--hw', 'esp32dev', '--secure-version', '1', '--key', join(keys, 'release.key'), '--dir', dir, '--rollout', '25')
    t.equal(r.code, 0, r.stderr)
    t.same(readdirSync(join(dir, 'images')), [`${sha256Hex(image)}.bin`])
    t.same(readFileSync(join(dir, 'images', `${sha256Hex(image)}.bin`)), image)
    const env = JSON.parse(readFileSync(join(dir, 'releases/esp32dev/1.3.0.json'), 'utf8')) as Envelope
    const m = JSON.parse(Buffer.from(env.payload, 'base64').toString())
    t.match(m, { hw: 'esp32dev', version: '1.3.0', secure_version: 1, rollout: { percent: 25 }, image: { size: 50_000, sha256: sha256Hex(image) } })
    t.ok(m.expires - m.issued_at === 90 * 86_400_000, 'expires in 90 days by default')
  })

  t.test('verify exits 0 for the envelope and its image', async (t) => {
    const r = await ota('verify', join(dir, 'releases/esp32dev/1.3.0.json'), '--pub', join(keys, 'release.pub'), '--image', join(root, 'fw.bin'), '--hw', 'esp32dev', '--current-version', '1.2.9', '--secure-version', '1')
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /^OK esp32dev 1\.3\.0/)
  })

  t.test('verify exits 1 and names the reason for each refusal', async (t) => {
    const env = join(dir, 'releases/esp32dev/1.3.0.json')
    await ota('keygen', '--out', join(root, 'other'))
    const tamperedImage = Buffer.from(image)
    tamperedImage[123]! ^= 1
    writeFileSync(join(root, 'tampered.bin'), tamperedImage)
    writeFileSync(join(root, 'short.bin'), image.subarray(1))
    const e = JSON.parse(readFileSync(env, 'utf8')) as Envelope
    writeFileSync(join(root, 'tampered.json'), JSON.stringify({ ...e, payload: Buffer.from(Buffer.from(e.payload, 'base64').toString().replace('"secure_version":1', '"secure_version":7')).toString('base64') }))
    const pub = ['--pub', join(keys, 'release.pub')]
    const cases: Array<[string, string[], RegExp]> = [
      ['tampered image', [env, ...pub, '--image', join(root, 'tampered.bin')], /REFUSED \(image_sha256\)/],
      ['short image', [env, ...pub, '--image', join(root, 'short.bin')], /REFUSED \(image_size\)/],
      ['tampered payload', [join(root, 'tampered.json'), ...pub], /REFUSED \(bad_signature\)/],
      ['another key', [env, '--pub', join(root, 'other/release.pub')], /REFUSED \(bad_signature\)/],
      ['wrong hw', [env, ...pub, '--hw', 'esp32s3'], /REFUSED \(wrong_hw\)/],
      ['higher secure_version on the device', [env, ...pub, '--secure-version', '2'], /REFUSED \(secure_version_too_low\)/],
      ['not newer', [env, ...pub, '--current-version', '1.3.0'], /REFUSED \(not_newer\)/],
    ]
    for (const [name, args, want] of cases) {
      const r = await ota('verify', ...args)
      t.equal(r.code, 1, name)
      t.match(r.stderr, want, name)
    }
  })

  t.test('verify refuses an expired manifest', async (t) => {
    const d2 = join(root, 'ota2')
    t.equal((await ota('publish', join(root, 'fw.bin'), '--version', '1.0.0', '--hw', 'esp32dev', '--secure-version', '0', '--key', join(keys, 'release.key'), '--dir', d2, '--expires', '1ms')).code, 0)
    const r = await ota('verify', join(d2, 'releases/esp32dev/1.0.0.json'), '--pub', join(keys, 'release.pub'))
    t.equal(r.code, 1)
    t.match(r.stderr, /REFUSED \(expired\)/)
  })

  t.test('key rotation: publish with two keys, verify with either', async (t) => {
    const r = await ota('publish', join(root, 'fw.bin'), '--version', '1.3.1', '--hw', 'esp32dev', '--secure-version', '1', '--key', join(keys, 'release.key'), '--key', join(root, 'other/release.key'), '--dir', dir)
    t.equal(r.code, 0, r.stderr)
    for (const pub of [join(keys, 'release.pub'), join(root, 'other/release.pub')])
      t.equal((await ota('verify', join(dir, 'releases/esp32dev/1.3.1.json'), '--pub', pub)).code, 0)
  })

  t.test('publish refuses a different image under an existing version unless forced', async (t) => {
    const args = ['publish', join(root, 'tampered.bin'), '--version', '1.3.0', '--hw', 'esp32dev', '--secure-version', '1', '--key', join(keys, 'release.key'), '--dir', dir]
    const r = await ota(...args)
    t.equal(r.code, 2)
    t.match(r.stderr, /already published with another image/)
    t.equal((await ota(...args, '--force')).code, 0)
  })

  t.test('publish refuses bad input with exit 2 and a message naming it', async (t) => {
    const base = ['publish', join(root, 'fw.bin'), '--hw', 'esp32dev', '--secure-version', '1', '--key', join(keys, 'release.key'), '--dir', dir]
    for (const [extra, want] of [
      [['--version', '1.0'], /version/],
      [['--version', '1.0.0', '--rollout', '150'], /--rollout/],
      [['--version', '1.0.0', '--devices', 'Bad Id'], /--devices/],
      [['--version', '1.0.0', '--expires', 'soon'], /duration/],
    ] as Array<[string[], RegExp]>) {
      const r = await ota(...base, ...extra)
      t.equal(r.code, 2, extra.join(' '))
      t.match(r.stderr, want)
    }
    const noHw = await ota('publish', join(root, 'fw.bin'), '--version', '1.0.0')
    t.equal(noHw.code, 2)
  })

  t.test('list shows each release', async (t) => {
    const r = await ota('list', '--dir', dir)
    t.equal(r.code, 0)
    t.match(r.stdout, /esp32dev\s+1\.3\.1 .*rollout all.*\n.*esp32dev\s+1\.3\.0 /, 'newest first')
  })
})

t.test('reports lists what devices reported', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'reports.jsonl'), [
    JSON.stringify({ ts: 1, device: 'dev1', source: 'http', deployment: 'd1', state: 'installed', version: '1.0.0' }),
    'not json',
    JSON.stringify({ ts: 2, device: 'dev2', source: 'mqtt', deployment: 'd1', state: 'failed', version: '1.0.0', reason: 'bad_signature' }),
  ].join('\n') + '\n')
  const r = await ota('reports', '--dir', dir, '--device', 'dev2')
  t.equal(r.code, 0)
  t.match(r.stdout, /dev2 .* failed: bad_signature/)
  t.notMatch(r.stdout, /dev1/)
  const j = await ota('reports', '--dir', dir, '--json')
  t.equal(JSON.parse(j.stdout).length, 2, 'a damaged line is skipped')
})

t.test('publish --stage writes the stage plan beside the envelope, and keeps it when published again', async (t) => {
  const root = tempDir(t)
  const dir = join(root, 'ota')
  writeFileSync(join(root, 'fw.bin'), randomBytes(5000))
  t.equal((await ota('keygen', '--out', join(root, 'keys'))).code, 0)
  const base = ['publish', join(root, 'fw.bin'), '--version', '2.0.0', '--hw', 'esp32dev', '--secure-version', '0', '--key', join(root, 'keys', 'release.key'), '--dir', dir]
  const r = await ota(...base, '--stage', 'canary-1,canary-2', '--stage', '25%', '--stage', '100', '--halt-after', '3', '--halt-after', '20%', '--success', '90%', '--min-devices', '2', '--soak', '10m', '--stall-timeout', '45m')
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /stages\s+2 devices \(canary-1, canary-2\) → 25% → 100%; advance at ≥ 90% installed of ≥ 2 started, held 10m; halt at 3 failures or 20% failed; stall timeout 45m/)
  const planFile = join(dir, 'releases/esp32dev/2.0.0.rollout.json')
  t.same(JSON.parse(readFileSync(planFile, 'utf8')), {
    schema: 1,
    stages: [{ devices: ['canary-1', 'canary-2'] }, { percent: 25 }, { percent: 100 }],
    success: { percent: 90, min_devices: 2, soak_ms: 600_000 },
    halt: { failures: 3, percent: 20 },
    stall_timeout_ms: 2_700_000,
  })
  const env = JSON.parse(readFileSync(join(dir, 'releases/esp32dev/2.0.0.json'), 'utf8')) as Envelope
  t.notMatch(Buffer.from(env.payload, 'base64').toString(), /stage|halt/, 'the signed manifest knows nothing of the stages')

  const again = await ota(...base)
  t.equal(again.code, 0, again.stderr)
  t.match(again.stdout, /kept from the earlier publish/)
  t.ok(readFileSync(planFile, 'utf8').includes('"canary-1"'))
  t.match((await ota('list', '--dir', dir)).stdout, /2\.0\.0 .*deployment esp32dev-2\.0\.0\s+stages 2 devices \(canary-1, canary-2\) → 25% → 100%/)

  const defaults = await ota(...base, '--version', '2.0.1', '--stage', '10%', '--stage', '100%')
  t.equal(defaults.code, 0, defaults.stderr)
  t.match(defaults.stdout, /advance at ≥ 95% installed of ≥ 1 started; halt at 10% failed; stall timeout 30m/)

  for (const [extra, want] of [
    [['--halt-after', '3'], /--halt-after tunes a staged rollout; give the stages with --stage/],
    [['--stage', '50%', '--stage', '20%'], /stage 2 \(20%\) does not widen the rollout/],
    [['--stage', 'Bad Id'], /--stage takes a percentage \(25%\) or device ids/],
    [['--stage', '0%'], /--stage must be 1\.\.100%/],
    [['--stage', '50%', '--halt-after', '0'], /--halt-after must be at least 1 failure/],
    [['--stage', '50%', '--success', '101%'], /--success must be an integer 0\.\.100/],
  ] as Array<[string[], RegExp]>) {
    const bad = await ota(...base, '--version', '2.0.2', ...extra)
    t.equal(bad.code, 2, extra.join(' '))
    t.match(bad.stderr, want)
  }
})

t.test('rollout: usage errors are caught before any connection', async (t) => {
  for (const [argv, want] of [
    [['rollout'], /missing rollout action/],
    [['rollout', 'pause', 'd1'], /unknown rollout action "pause"/],
    [['rollout', 'halt'], /needs the deployment id/],
    [['rollout', 'status', '../x'], /is not a deployment id/],
    [['rollout', 'status', '--reason', 'x'], /--reason goes with halt, resume or advance/],
    [['rollout', 'status', '--url', 'http://localhost:8443'], /must be https/],
    [['rollout', 'status', '--pki', '/nonexistent'], /cannot read CA certificate \/nonexistent\/ca\.crt/],
  ] as Array<[string[], RegExp]>) {
    const r = await ota(...argv)
    t.equal(r.code, 2, argv.join(' '))
    t.match(r.stderr, want)
  }
  const pki = await makePki(t, [])
  const down = await ota('rollout', 'status', '--url', 'https://localhost:1', '--pki', pki.dir)
  t.equal(down.code, 1, 'an OTA server that does not answer: exit 1')
  t.match(down.stderr, /cannot reach the OTA server at https:\/\/localhost:1/)
  const help = await ota('rollout', '--help')
  t.equal(help.code, 0)
  t.match(help.stdout, /usage: ferry ota rollout <status\|halt\|resume\|advance>/)
})
