import { verify as cryptoVerify } from 'node:crypto'
import { assertManifest, checkEnvelope, MAX_PAYLOAD_BYTES, type Envelope, type Manifest } from './envelope.js'
import { EnvelopeSignatureError, ManifestError } from './errors.js'
import { keyIdOf, toPublicKey, type KeyInput } from './keys.js'
import { compareSemver, isSemver } from './semver.js'

/** What the device knows about itself; each check runs only when its field is given, except expiry. */
export interface VerifyOptions {
  /** The verifier's clock, epoch ms or Date; defaults to now. Expiry is always checked. */
  now?: number | Date
  /** The device's hardware id; the manifest's `hw` must equal it. */
  hw?: string
  /** The device's anti-rollback counter; the manifest's `secure_version` must be ≥ it. */
  secureVersion?: number
  /** The running firmware version; the manifest's `version` must be strictly newer. */
  currentVersion?: string
  /** The largest image the device can hold (its OTA slot, e.g. 0x1E0000 with min_spiffs). */
  maxImageSize?: number
  /** How many distinct trusted keys must have signed; default 1 (rotation means "old or new key"). */
  threshold?: number
}

export interface VerifiedManifest {
  manifest: Manifest
  /** The exact signed bytes. */
  payload: Buffer
  /** Key ids of the trusted keys whose signatures verified. */
  keyids: string[]
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * Strict base64: Node's decoder skips junk characters, which would let two different strings carry the
 * same payload. Only canonical standard base64 with padding is accepted.
 */
export function decodeBase64Strict(text: string, what: string): Buffer {
  if (!BASE64_RE.test(text)) throw new EnvelopeSignatureError('malformed_envelope', `${what} is not canonical base64`)
  const bytes = Buffer.from(text, 'base64')
  if (bytes.toString('base64') !== text) throw new EnvelopeSignatureError('malformed_envelope', `${what} is not canonical base64`)
  return bytes
}

/** Reads an envelope from JSON text, bytes or an already parsed value and checks its shape (not its signature). */
export function parseEnvelope(input: unknown): Envelope {
  let value = input
  if (typeof input === 'string' || input instanceof Uint8Array) {
    try {
      value = JSON.parse(Buffer.from(input as Uint8Array | string).toString('utf8'))
    } catch (err) {
      throw new EnvelopeSignatureError('malformed_envelope', `envelope is not JSON: ${(err as Error).message}`)
    }
  }
  if (!checkEnvelope.Check(value)) {
    const first = [...checkEnvelope.Errors(value)][0]
    throw new EnvelopeSignatureError('malformed_envelope', `not an OTA envelope: ${first?.instancePath || '/'} ${first?.message ?? 'is invalid'}`)
  }
  return value
}

/**
 * Checks that at least `threshold` trusted keys signed the exact payload bytes and returns those bytes.
 * Signatures by unknown keys are ignored (they may belong to a rotated-out or a future key); a
 * signature claiming a trusted keyid that does not verify is also just not counted.
 * Throws EnvelopeSignatureError ('malformed_envelope' or 'bad_signature').
 */
export function verifyEnvelopeSignature(input: unknown, trustedKeys: KeyInput | KeyInput[], threshold = 1): { payload: Buffer; keyids: string[] } {
  const envelope = parseEnvelope(input)
  const trusted = new Map<string, ReturnType<typeof toPublicKey>>()
  for (const k of Array.isArray(trustedKeys) ? trustedKeys : [trustedKeys]) {
    const pub = toPublicKey(k)
    trusted.set(keyIdOf(pub), pub)
  }
  if (trusted.size === 0) throw new TypeError('verifyEnvelope needs at least one trusted public key')
  if (!(Number.isInteger(threshold) && threshold >= 1 && threshold <= trusted.size)) {
    throw new RangeError(`threshold must be 1..${trusted.size} (the number of trusted keys), got ${threshold}`)
  }
  const payload = decodeBase64Strict(envelope.payload, 'payload')
  if (payload.length > MAX_PAYLOAD_BYTES) throw new EnvelopeSignatureError('malformed_envelope', `payload is ${payload.length} bytes, more than ${MAX_PAYLOAD_BYTES}`)
  const ok = new Set<string>()
  for (const s of envelope.signatures) {
    const key = trusted.get(s.keyid)
    if (!key || ok.has(s.keyid)) continue
    const sig = decodeBase64Strict(s.sig, `signature of key ${s.keyid.slice(0, 16)}…`)
    // OpenSSL re-encodes the parsed (r, s) and refuses DER that does not round-trip, so padded or
    // trailing-byte signatures fail here exactly as they do in mbedTLS
    // (docs/firmware-notes.md#mbedtls-signature-verification).
    if (cryptoVerify('sha256', payload, { key, dsaEncoding: 'der' }, sig)) ok.add(s.keyid)
  }
  if (ok.size < threshold) {
    const known = envelope.signatures.filter((s) => trusted.has(s.keyid)).length
    throw new EnvelopeSignatureError(
      'bad_signature',
      known === 0
        ? `no signature by a trusted release key (envelope keyids ${envelope.signatures.map((s) => s.keyid.slice(0, 16) + '…').join(', ')}; trusted ${[...trusted.keys()].map((k) => k.slice(0, 16) + '…').join(', ')}); was it signed with another key?`
        : `the release signature does not verify over the payload (${ok.size} of ${threshold} needed); the envelope was altered or signed with another key`,
    )
  }
  return { payload, keyids: [...ok] }
}

/**
 * Everything a device checks before downloading, in this order: signature over the exact bytes, then
 * (only then) parse and schema, `hw`, expiry, `secure_version`, newer `version`, image size.
 * Returns the manifest; throws EnvelopeSignatureError or ManifestError, both with a `reason`.
 */
export function verifyEnvelope(input: unknown, trustedKeys: KeyInput | KeyInput[], opts: VerifyOptions = {}): VerifiedManifest {
  const { payload, keyids } = verifyEnvelopeSignature(input, trustedKeys, opts.threshold)
  let parsed: unknown
  try {
    parsed = JSON.parse(payload.toString('utf8'))
  } catch (err) {
    throw new ManifestError('malformed_manifest', `signed payload is not JSON: ${(err as Error).message}`)
  }
  assertManifest(parsed)
  const m = parsed
  checkManifestPolicy(m, opts)
  return { manifest: m, payload, keyids }
}

/**
 * The non-cryptographic checks of `verifyEnvelope`, for callers that already verified the signature.
 * Throws ManifestError with reason `wrong_hw`, `expired`, `secure_version_too_low`, `not_newer` or
 * `image_too_large`.
 */
export function checkManifestPolicy(m: Manifest, opts: VerifyOptions = {}): void {
  if (opts.hw !== undefined && m.hw !== opts.hw) {
    throw new ManifestError('wrong_hw', `manifest is for hardware "${m.hw}", this device is "${opts.hw}"`)
  }
  const now = opts.now === undefined ? Date.now() : opts.now instanceof Date ? opts.now.getTime() : opts.now
  if (!(m.expires > now)) {
    throw new ManifestError('expired', `manifest expired at ${new Date(m.expires).toISOString()} (now ${new Date(now).toISOString()}); publish the release again to renew it`)
  }
  if (opts.secureVersion !== undefined && m.secure_version < opts.secureVersion) {
    throw new ManifestError('secure_version_too_low', `manifest secure_version ${m.secure_version} is below the device's ${opts.secureVersion}; a downgrade past an anti-rollback step is never installed`)
  }
  if (opts.currentVersion !== undefined) {
    if (!isSemver(opts.currentVersion)) throw new TypeError(`current version "${opts.currentVersion}" is not a semantic version`)
    if (compareSemver(m.version, opts.currentVersion) <= 0) {
      throw new ManifestError('not_newer', `manifest version ${m.version} is not newer than the running ${opts.currentVersion}`)
    }
  }
  if (opts.maxImageSize !== undefined && m.image.size > opts.maxImageSize) {
    throw new ManifestError('image_too_large', `image is ${m.image.size} bytes, the device holds at most ${opts.maxImageSize}`)
  }
}
