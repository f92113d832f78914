/**
 * Writes the firmware's OTA test vectors with the TypeScript signer (ota-server/src/manifest/), so the
 * C++ verifier is tested against envelopes it did not make itself:
 *
 *   npx tsx firmware/test/vectors/generate.ts
 *
 * Every run makes a fresh release key pair. Only the public half is written (test-release.pub); the
 * private key lives in memory and is gone when the script ends, so no signing key is ever committed.
 * index.json lists each envelope with the device facts and the outcome both verifiers must reach;
 * the script checks the TypeScript verifier agrees before writing anything, and
 * test/test_vectors/test_vectors.cpp checks the C++ one (make -C firmware test).
 */
import { createPrivateKey, sign } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  generateReleaseKey,
  rejectReasonOf,
  sha256Hex,
  signEnvelope,
  signManifest,
  verifyEnvelope,
  type Envelope,
  type ManifestInput,
} from '../../../ota-server/src/manifest/index.js'

const dir = dirname(fileURLToPath(import.meta.url))
const DAY = 86_400_000
const ISSUED = Date.UTC(2026, 0, 1)
/** The device's clock in every case. */
const NOW = Date.UTC(2026, 5, 1)
/** Far enough ahead that `verify_manifest test-release.pub valid.json` passes when run by hand. */
const FAR = Date.UTC(2100, 0, 1)
/** min_spiffs.csv app slot. */
const SLOT = 0x1e0000

const device = { hw: 'esp32dev', version: '1.3.0', secure_version: 2, now: NOW, max_image_size: SLOT }

// A small stand-in image: ESP image magic byte first, then deterministic filler.
const image = Buffer.alloc(4096 + 123)
image[0] = 0xe9
for (let i = 1; i < image.length; i++) image[i] = (i * 31 + 7) & 0xff
const tamperedImage = Buffer.from(image)
tamperedImage[2048] = (tamperedImage[2048] ?? 0) ^ 0x01

const release = generateReleaseKey()
const other = generateReleaseKey()
const base: ManifestInput = {
  hw: 'esp32dev',
  version: '1.4.0',
  secureVersion: 2,
  image: { size: image.length, sha256: sha256Hex(image) },
  issuedAt: ISSUED,
  expires: FAR,
}

function signed(overrides: Partial<ManifestInput> = {}, key = release.privateKeyPem): Envelope {
  return signManifest({ ...base, ...overrides }, key).envelope
}

const valid = signed()

function tamperPayload(env: Envelope): Envelope {
  // One byte of the signed manifest changes ("1.4.0" -> "1.5.0"); the JSON stays valid.
  const bytes = Buffer.from(env.payload, 'base64')
  const at = bytes.indexOf('"version":"1.4.0"') + '"version":"1.'.length
  if (at < '"version":"1.'.length) throw new Error('version field not found in the payload')
  bytes[at] = '5'.charCodeAt(0)
  return { ...env, payload: bytes.toString('base64') }
}

function truncateSignature(env: Envelope): Envelope {
  const first = env.signatures[0]!
  const der = Buffer.from(first.sig, 'base64')
  return { ...env, signatures: [{ keyid: first.keyid, sig: der.subarray(0, der.length - 2).toString('base64') }] }
}

function rawSignature(env: Envelope): Envelope {
  // IEEE P1363 r||s (what WebCrypto produces) instead of DER: both verifiers must refuse it.
  const payload = Buffer.from(env.payload, 'base64')
  const sig = sign('sha256', payload, { key: createPrivateKey(release.privateKeyPem), dsaEncoding: 'ieee-p1363' })
  return { ...env, signatures: [{ keyid: release.keyid, sig: sig.toString('base64') }] }
}

function forgedKeyid(): Envelope {
  // Signed by another key but claiming the release key's id.
  const env = signed({}, other.privateKeyPem)
  return { ...env, signatures: [{ keyid: release.keyid, sig: env.signatures[0]!.sig }] }
}

interface Case {
  name: string
  file: string
  content: string
  image?: string
  expect: string
  why: string
}

const json = (e: Envelope) => JSON.stringify(e)
const validText = json(valid)
const cases: Case[] = [
  { name: 'valid', file: 'valid.json', content: validText, image: 'image.bin', expect: 'ok', why: 'signed by the release key, newer, right hw, image matches' },
  { name: 'image-tampered', file: 'valid.json', content: validText, image: 'image-tampered.bin', expect: 'sha256', why: 'one image bit differs from the signed sha256' },
  { name: 'payload-byte-changed', file: 'payload-byte-changed.json', content: json(tamperPayload(valid)), expect: 'bad_signature', why: 'one payload byte changed after signing' },
  { name: 'other-key', file: 'other-key.json', content: json(signed({}, other.privateKeyPem)), expect: 'bad_signature', why: 'signed by a key the device does not trust' },
  { name: 'forged-keyid', file: 'forged-keyid.json', content: json(forgedKeyid()), expect: 'bad_signature', why: "another key's signature under the release keyid" },
  { name: 'truncated-signature', file: 'truncated-signature.json', content: json(truncateSignature(valid)), expect: 'bad_signature', why: 'DER signature missing its last two bytes' },
  { name: 'raw-signature', file: 'raw-signature.json', content: json(rawSignature(valid)), expect: 'bad_signature', why: '64-byte r||s instead of DER' },
  { name: 'expired', file: 'expired.json', content: json(signed({ expires: ISSUED + DAY })), expect: 'expired', why: 'expired before the device clock' },
  { name: 'wrong-hw', file: 'wrong-hw.json', content: json(signed({ hw: 'esp32c3' })), expect: 'wrong_hw', why: 'built for other hardware' },
  { name: 'downgrade', file: 'downgrade.json', content: json(signed({ version: '1.2.0' })), expect: 'not_newer', why: 'older than the running 1.3.0' },
  { name: 'same-version', file: 'same-version.json', content: json(signed({ version: '1.3.0' })), expect: 'not_newer', why: 'the running version again' },
  { name: 'secure-version-low', file: 'secure-version-low.json', content: json(signed({ secureVersion: 1 })), expect: 'secure_version_too_low', why: 'below the anti-rollback counter 2' },
  { name: 'too-large', file: 'too-large.json', content: json(signed({ image: { size: SLOT + 1, sha256: sha256Hex(image) } })), expect: 'image_too_large', why: 'bigger than the OTA slot' },
  { name: 'malformed-json', file: 'malformed-json.json', content: validText.slice(0, -1), expect: 'malformed_envelope', why: 'envelope JSON cut short' },
  { name: 'malformed-base64', file: 'malformed-base64.json', content: json({ ...valid, payload: '*' + valid.payload.slice(1) }), expect: 'malformed_envelope', why: 'payload is not base64' },
  { name: 'key-rotation', file: 'key-rotation.json', content: json(signEnvelope(Buffer.from(valid.payload, 'base64'), [other.privateKeyPem, release.privateKeyPem])), image: 'image.bin', expect: 'ok', why: 'signed by an unknown key and the release key' },
]

// Both verifiers must agree: check the TypeScript one here, the C++ one in test_vectors.cpp.
for (const c of cases) {
  let got = 'ok'
  try {
    const { manifest } = verifyEnvelope(c.content, release.publicKeyPem, {
      now: device.now,
      hw: device.hw,
      secureVersion: device.secure_version,
      currentVersion: device.version,
      maxImageSize: device.max_image_size,
    })
    if (c.image) {
      const img = c.image === 'image.bin' ? image : tamperedImage
      if (img.length !== manifest.image.size) got = 'size'
      else if (sha256Hex(img) !== manifest.image.sha256) got = 'sha256'
    }
  } catch (err) {
    got = rejectReasonOf(err) ?? `error: ${(err as Error).message}`
  }
  if (got !== c.expect) throw new Error(`vector ${c.name}: the TypeScript verifier says ${got}, expected ${c.expect}`)
}

mkdirSync(dir, { recursive: true })
writeFileSync(join(dir, 'test-release.pub'), release.publicKeyPem)
writeFileSync(join(dir, 'image.bin'), image)
writeFileSync(join(dir, 'image-tampered.bin'), tamperedImage)
for (const c of cases) writeFileSync(join(dir, c.file), c.content + '\n')
const index = {
  comment: 'Generated by generate.ts with the TypeScript signer; do not edit. Each case: envelope file, optional image, expected outcome for this device.',
  key: 'test-release.pub',
  keyid: release.keyid,
  device,
  cases: cases.map(({ name, file, image: img, expect, why }) => ({ name, envelope: file, ...(img ? { image: img } : {}), expect, why })),
}
writeFileSync(join(dir, 'index.json'), JSON.stringify(index, null, 2) + '\n')
process.stdout.write(`wrote ${cases.length} vectors to ${dir} (release keyid ${release.keyid})\n`)
