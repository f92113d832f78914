import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, KeyObject } from 'node:crypto'

/** A key given as PEM text, PEM bytes or a KeyObject. Private keys: PKCS#8; public keys: SPKI. */
export type KeyInput = string | Buffer | KeyObject

/**
 * A fresh ECDSA P-256 release key pair as PEM: PKCS#8 private key, SPKI public key. The public key is
 * what the firmware compiles in (mbedtls_pk_parse_public_key reads it as is,
 * docs/firmware-notes.md#mbedtls-signature-verification).
 */
export function generateReleaseKey(): { privateKeyPem: string; publicKeyPem: string; keyid: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyid: keyIdOf(publicKey),
  }
}

/** Reads a public key (or derives it from a private key) and checks that it is EC P-256. */
export function toPublicKey(key: KeyInput): KeyObject {
  let k: KeyObject
  try {
    k = key instanceof KeyObject ? (key.type === 'private' ? createPublicKey(key) : key) : createPublicKey(key)
  } catch (err) {
    throw new TypeError(`cannot read the release public key: ${(err as Error).message}; expected an SPKI PEM ("-----BEGIN PUBLIC KEY-----") as written by "ferry ota keygen"`, { cause: err })
  }
  assertP256(k, 'public')
  return k
}

/** Reads a private key and checks that it is EC P-256. */
export function toPrivateKey(key: KeyInput): KeyObject {
  let k: KeyObject
  try {
    k = key instanceof KeyObject ? key : createPrivateKey(key)
  } catch (err) {
    throw new TypeError(`cannot read the release private key: ${(err as Error).message}; expected a PKCS#8 PEM as written by "ferry ota keygen"`, { cause: err })
  }
  if (k.type !== 'private') throw new TypeError('a private key is needed to sign, but a public key was given')
  assertP256(k, 'private')
  return k
}

function assertP256(k: KeyObject, what: string): void {
  if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    const curve = k.asymmetricKeyDetails?.namedCurve
    throw new TypeError(`the release ${what} key must be ECDSA P-256 (prime256v1), got ${k.asymmetricKeyType}${curve ? ` ${curve}` : ''}`)
  }
}

/**
 * The key id used in envelopes: hex sha256 of the public key's SubjectPublicKeyInfo DER (the same
 * bytes as `openssl pkey -pubin -outform DER | sha256sum`). Accepts a public or a private key.
 */
export function keyIdOf(key: KeyInput): string {
  const der = toPublicKey(key).export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(der).digest('hex')
}

/** Splits a PEM bundle holding several public keys (key rotation: old and new) into one PEM each. */
export function splitPemBundle(text: string): string[] {
  return text.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? []
}
