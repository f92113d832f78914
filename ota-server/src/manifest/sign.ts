import { sign, verify } from 'node:crypto'
import { buildManifest, MAX_PAYLOAD_BYTES, type Envelope, type Manifest, type ManifestInput } from './envelope.js'
import { ManifestSignatureError } from '../../../common/src/errors.js'
import { keyIdOf, toPrivateKey, toPublicKey, type KeyInput } from './keys.js'

/**
 * Signs the exact payload bytes with one or more release keys (several during key rotation, so that
 * devices holding either public key accept the release). Signatures are DER ECDSA-SHA256, the
 * format `openssl dgst -verify` and `mbedtls_pk_verify` take
 * (docs/firmware-notes.md#signature-encoding). Each signature is checked against its own public key
 * before it is returned, so a broken key never produces a release.
 *
 * This runs offline, in `ferry ota publish`; the OTA server never calls it.
 */
export function signEnvelope(payload: Uint8Array, privateKeys: KeyInput | KeyInput[]): Envelope {
  const keys = (Array.isArray(privateKeys) ? privateKeys : [privateKeys]).map(toPrivateKey)
  if (keys.length === 0) throw new TypeError('signEnvelope needs at least one private key')
  if (payload.length === 0 || payload.length > MAX_PAYLOAD_BYTES) {
    throw new RangeError(`payload must be 1..${MAX_PAYLOAD_BYTES} bytes, got ${payload.length}`)
  }
  const seen = new Set<string>()
  const signatures: Envelope['signatures'] = []
  for (const key of keys) {
    const keyid = keyIdOf(key)
    if (seen.has(keyid)) continue
    seen.add(keyid)
    const sig = sign('sha256', payload, { key, dsaEncoding: 'der' })
    if (!verify('sha256', payload, { key: toPublicKey(key), dsaEncoding: 'der' }, sig)) {
      throw new ManifestSignatureError(
        `self-check failed: the signature by key ${keyid} does not verify; the key file may be damaged. Nothing was published: restore the key from its backup, or make a new one with "ferry ota keygen" and give devices its public key`,
      )
    }
    signatures.push({ keyid, sig: sig.toString('base64') })
  }
  return { payload: Buffer.from(payload).toString('base64'), signatures }
}

/** `buildManifest` then `signEnvelope`: the whole release record in one call. */
export function signManifest(input: ManifestInput, privateKeys: KeyInput | KeyInput[]): { envelope: Envelope; manifest: Manifest; bytes: Buffer } {
  const { manifest, bytes } = buildManifest(input)
  return { envelope: signEnvelope(bytes, privateKeys), manifest, bytes }
}
