import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../../../test/helpers/tmp.js'
import {
  buildManifest,
  encodeManifest,
  generateReleaseKey,
  inRollout,
  keyIdOf,
  rejectReasonOf,
  rolloutBucket,
  sha256Hex,
  signEnvelope,
  signManifest,
  verifyEnvelope,
  type Envelope,
  type ManifestInput,
} from './index.js'

const run = promisify(execFile)
const NOW = Date.UTC(2026, 0, 1)
const DAY = 86_400_000
const key = generateReleaseKey()
const other = generateReleaseKey()
const image = { size: 1234, sha256: sha256Hex('firmware image') }
const input: ManifestInput = { hw: 'esp32dev', version: '1.2.0', secureVersion: 3, image, issuedAt: NOW, expires: NOW + 30 * DAY }
const device = { now: NOW + DAY, hw: 'esp32dev', secureVersion: 3, currentVersion: '1.1.0' }

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return `${(err as { code?: string }).code}:${rejectReasonOf(err)}`
  }
  return 'accepted'
}

t.test('a signed envelope verifies and yields the manifest', async (t) => {
  const { envelope, manifest } = signManifest(input, key.privateKeyPem)
  const v = verifyEnvelope(envelope, key.publicKeyPem, device)
  t.same(v.manifest, manifest)
  t.same(v.keyids, [key.keyid])
  t.equal(manifest.deployment, 'esp32dev-1.2.0')
  t.equal(manifest.image.path, `/ota/images/${image.sha256}.bin`)
})

t.test('the same input always encodes to the same bytes, keys in schema order', async (t) => {
  const a = buildManifest(input).bytes
  const b = encodeManifest(JSON.parse(a.toString()))
  t.same(a, b)
  t.match(a.toString(), /^\{"schema":1,"deployment":"esp32dev-1\.2\.0","hw":"esp32dev","version":"1\.2\.0","secure_version":3,"issued_at":\d+,"expires":\d+,"image":\{"path":"[^"]+","size":1234,"sha256":"[0-9a-f]{64}"\}\}$/)
})

t.test('keyid is the sha256 of the public key DER, from either half of the pair', async (t) => {
  t.equal(keyIdOf(key.publicKeyPem), key.keyid)
  t.equal(keyIdOf(key.privateKeyPem), key.keyid)
  t.not(keyIdOf(other.publicKeyPem), key.keyid)
})

t.test('openssl dgst -verify accepts the payload and DER signature', async (t) => {
  const dir = tempDir(t)
  const { envelope } = signManifest(input, key.privateKeyPem)
  writeFileSync(join(dir, 'release.pub'), key.publicKeyPem)
  writeFileSync(join(dir, 'payload.bin'), Buffer.from(envelope.payload, 'base64'))
  writeFileSync(join(dir, 'sig.der'), Buffer.from(envelope.signatures[0]!.sig, 'base64'))
  const { stdout } = await run('openssl', ['dgst', '-sha256', '-verify', join(dir, 'release.pub'), '-signature', join(dir, 'sig.der'), join(dir, 'payload.bin')])
  t.match(stdout, /Verified OK/)
  // …and refuses the same signature over one changed byte, so the check above can fail.
  const tampered = Buffer.from(envelope.payload, 'base64')
  tampered[10]! ^= 1
  writeFileSync(join(dir, 'payload.bin'), tampered)
  await t.rejects(run('openssl', ['dgst', '-sha256', '-verify', join(dir, 'release.pub'), '-signature', join(dir, 'sig.der'), join(dir, 'payload.bin')]))
})

t.test('key rotation: an envelope signed by old and new key verifies with either public key', async (t) => {
  const { envelope } = signManifest(input, [key.privateKeyPem, other.privateKeyPem])
  t.equal(envelope.signatures.length, 2)
  t.equal(verifyEnvelope(envelope, key.publicKeyPem, device).keyids[0], key.keyid)
  t.equal(verifyEnvelope(envelope, other.publicKeyPem, device).keyids[0], other.keyid)
  t.equal(verifyEnvelope(envelope, [key.publicKeyPem, other.publicKeyPem], { ...device, threshold: 2 }).keyids.length, 2)
})

t.test('refuses every tampering and policy violation with a stable reason', async (t) => {
  const good = signManifest(input, key.privateKeyPem).envelope
  const payload = Buffer.from(good.payload, 'base64')
  const flip = (buf: Buffer, at: number) => {
    const c = Buffer.from(buf)
    c[at]! ^= 1
    return c
  }
  const sign = (over: Partial<ManifestInput>) => signManifest({ ...input, ...over }, key.privateKeyPem).envelope
  const cases: Array<[string, () => unknown, string]> = [
    ['tampered payload', () => verifyEnvelope({ ...good, payload: flip(payload, 40).toString('base64') }, key.publicKeyPem, device), 'FERRY_ERR_MANIFEST_SIGNATURE:bad_signature'],
    ['tampered signature', () => verifyEnvelope({ ...good, signatures: [{ ...good.signatures[0]!, sig: flip(Buffer.from(good.signatures[0]!.sig, 'base64'), 20).toString('base64') }] }, key.publicKeyPem, device), 'FERRY_ERR_MANIFEST_SIGNATURE:bad_signature'],
    ['signature with a trailing byte', () => verifyEnvelope({ ...good, signatures: [{ ...good.signatures[0]!, sig: Buffer.concat([Buffer.from(good.signatures[0]!.sig, 'base64'), Buffer.from([0])]).toString('base64') }] }, key.publicKeyPem, device), 'FERRY_ERR_MANIFEST_SIGNATURE:bad_signature'],
    ['signed by another key', () => verifyEnvelope(signManifest(input, other.privateKeyPem).envelope, key.publicKeyPem, device), 'FERRY_ERR_MANIFEST_SIGNATURE:bad_signature'],
    ['another key claiming our keyid', () => verifyEnvelope({ ...signEnvelope(payload, other.privateKeyPem), signatures: [{ keyid: key.keyid, sig: signEnvelope(payload, other.privateKeyPem).signatures[0]!.sig }] }, key.publicKeyPem, device), 'FERRY_ERR_MANIFEST_SIGNATURE:bad_signature'],
    ['non-canonical base64 payload', () => verifyEnvelope({ ...good, payload: ' ' + good.payload }, key.publicKeyPem, device), 'FERRY_ERR_MANIFEST_SIGNATURE:malformed_envelope'],
    ['extra envelope field', () => verifyEnvelope({ ...good, extra: 1 }, key.publicKeyPem, device), 'FERRY_ERR_MANIFEST_SIGNATURE:malformed_envelope'],
    ['no signatures', () => verifyEnvelope({ ...good, signatures: [] }, key.publicKeyPem, device), 'FERRY_ERR_MANIFEST_SIGNATURE:malformed_envelope'],
    ['not JSON', () => verifyEnvelope('{"payload":', key.publicKeyPem, device), 'FERRY_ERR_MANIFEST_SIGNATURE:malformed_envelope'],
    ['signed non-manifest', () => verifyEnvelope(signEnvelope(Buffer.from('{"hello":1}'), key.privateKeyPem), key.publicKeyPem, device), 'FERRY_ERR_MANIFEST:malformed_manifest'],
    ['signed non-JSON', () => verifyEnvelope(signEnvelope(Buffer.from('hello'), key.privateKeyPem), key.publicKeyPem, device), 'FERRY_ERR_MANIFEST:malformed_manifest'],
    ['expired', () => verifyEnvelope(good, key.publicKeyPem, { ...device, now: NOW + 31 * DAY }), 'FERRY_ERR_MANIFEST:expired'],
    ['wrong hw', () => verifyEnvelope(good, key.publicKeyPem, { ...device, hw: 'esp32s3' }), 'FERRY_ERR_MANIFEST:wrong_hw'],
    ['lower secure_version', () => verifyEnvelope(sign({ secureVersion: 2 }), key.publicKeyPem, device), 'FERRY_ERR_MANIFEST:secure_version_too_low'],
    ['same version', () => verifyEnvelope(good, key.publicKeyPem, { ...device, currentVersion: '1.2.0' }), 'FERRY_ERR_MANIFEST:not_newer'],
    ['older version', () => verifyEnvelope(good, key.publicKeyPem, { ...device, currentVersion: '1.10.0' }), 'FERRY_ERR_MANIFEST:not_newer'],
    ['image larger than the slot', () => verifyEnvelope(good, key.publicKeyPem, { ...device, maxImageSize: 1000 }), 'FERRY_ERR_MANIFEST:image_too_large'],
  ]
  for (const [name, fn, want] of cases) t.equal(reasonOf(fn), want, name)
  // The untouched envelope passes the same checks, so each refusal above is caused by its change.
  t.equal(reasonOf(() => verifyEnvelope(good, key.publicKeyPem, device)), 'accepted')
  t.equal(reasonOf(() => verifyEnvelope(sign({ secureVersion: 4 }), key.publicKeyPem, device)), 'accepted', 'a higher secure_version is fine')
})

t.test('buildManifest refuses bad input before anything is signed', async (t) => {
  const bad: Array<[string, Partial<ManifestInput>]> = [
    ['version', { version: '1.2' }],
    ['hw', { hw: '../esp32' }],
    ['sha256', { image: { size: 1, sha256: 'ABC' } }],
    ['size', { image: { size: 0, sha256: image.sha256 } }],
    ['expiry before issue', { expires: NOW - 1 }],
    ['secure_version', { secureVersion: -1 }],
    ['rollout', { rollout: { percent: 101 } }],
    ['deployment', { deployment: 'a/b' }],
  ]
  for (const [name, over] of bad) t.equal(reasonOf(() => buildManifest({ ...input, ...over })), 'FERRY_ERR_MANIFEST:malformed_manifest', name)
})

t.test('a 50% rollout over 200 device ids selects about half, the same half every run', async (t) => {
  const ids = Array.from({ length: 200 }, (_, i) => `dev-${i}`)
  const m = { deployment: 'esp32dev-1.2.0', rollout: { percent: 50 } }
  const chosen = ids.filter((id) => inRollout(m, id))
  t.ok(chosen.length >= 80 && chosen.length <= 120, `selected ${chosen.length} of 200`)
  t.same(ids.filter((id) => inRollout(m, id)), chosen, 'same selection on a second pass')
  // Pinned: the bucket of a fixed id never changes (other implementations must agree).
  t.equal(rolloutBucket('esp32dev-1.2.0', 'dev-0'), rolloutBucket('esp32dev-1.2.0', 'dev-0'))
  t.equal(rolloutBucket('d', 'x'), Buffer.from(sha256Hex('d:x'), 'hex').readUInt32BE(0) % 100)
  // Widening keeps everyone already in.
  const wider = ids.filter((id) => inRollout({ ...m, rollout: { percent: 70 } }, id))
  t.ok(chosen.every((id) => wider.includes(id)), 'raising the percentage only adds devices')
  t.equal(ids.filter((id) => inRollout({ ...m, rollout: { percent: 0 } }, id)).length, 0)
  t.equal(ids.filter((id) => inRollout({ ...m, rollout: { percent: 100 } }, id)).length, 200)
  t.same(ids.filter((id) => inRollout({ deployment: 'x', rollout: { devices: ['dev-3', 'dev-9'] } }, id)), ['dev-3', 'dev-9'])
})

t.test('the envelope type is what JSON.stringify writes', async (t) => {
  const { envelope } = signManifest(input, key.privateKeyPem)
  const round: Envelope = JSON.parse(JSON.stringify(envelope))
  t.ok(verifyEnvelope(round, key.publicKeyPem, device))
  t.ok(verifyEnvelope(JSON.stringify(envelope), key.publicKeyPem, device), 'JSON text is accepted too')
})
