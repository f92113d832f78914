/**
 * The OTA manifest and its signed envelope (ota-server/README.md#the-envelope). This module is the
 * single source of the format: the server, `ferry ota`, the device simulator and the firmware's
 * test vectors all build on it.
 *
 * Envelope (what `GET /ota/latest` answers):
 * ```json
 * {"payload":"<base64 of the manifest JSON bytes>","signatures":[{"keyid":"<hex sha256 of the public key DER>","sig":"<base64 DER ECDSA-SHA256>"}]}
 * ```
 * The signature covers the exact payload bytes; a verifier checks it before it parses them, so JSON
 * re-serialisation can never change what was signed (docs/firmware-notes.md#signing-the-exact-bytes).
 *
 * Manifest (the payload), keys always in this order, no whitespace:
 * ```json
 * {"schema":1,"deployment":"esp32dev-1.4.0","hw":"esp32dev","version":"1.4.0","secure_version":2,
 *  "issued_at":1767225600000,"expires":1769817600000,
 *  "image":{"path":"/ota/images/<sha256>.bin","size":1048576,"sha256":"<hex>"},"rollout":{"percent":50}}
 * ```
 * Times are Unix epoch milliseconds, like `ts` and `expires` elsewhere in Ferry.
 */
import { createHash } from 'node:crypto'
import { Type, type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { SEMVER_PATTERN, SEMVER_MAX_LENGTH, isSemver } from './semver.js'
import { ManifestError } from './errors.js'

/** The manifest schema number this code writes and reads. A verifier refuses any other. */
export const MANIFEST_SCHEMA = 1

/** Upper bound on payload bytes; keeps the device's JSON parse small and bounded (a 1000-device list fits). */
export const MAX_PAYLOAD_BYTES = 32 * 1024

/** At most this many signatures per envelope (key rotation needs two; more is an attack on CPU time). */
export const MAX_SIGNATURES = 8

/** Hardware ids: lower-case letters, digits, `_` and `-`, like device ids; they are also folder names. */
export const HW_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$'
export const HW_RE = new RegExp(HW_PATTERN)

/** Deployment ids: free text for people, safe in file names, URLs and MQTT payloads. */
export const DEPLOYMENT_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$'

/** Image file names as served and stored: the hex sha256 of the content plus `.bin`. */
export const IMAGE_NAME_RE = /^[0-9a-f]{64}\.bin$/
const SHA256_PATTERN = '^[0-9a-f]{64}$'

/** The URL path of an image, relative to the OTA server's origin. */
export function imagePathFor(sha256: string): string {
  return `/ota/images/${sha256}.bin`
}

const DeviceId = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' })

/** Optional staged rollout: a percentage of devices (by a stable hash) or an explicit device list. */
export const RolloutSchema = Type.Union([
  Type.Object({ percent: Type.Integer({ minimum: 0, maximum: 100 }) }, { additionalProperties: false }),
  Type.Object({ devices: Type.Array(DeviceId, { minItems: 1, uniqueItems: true }) }, { additionalProperties: false }),
])
export type Rollout = Static<typeof RolloutSchema>

/** The signed manifest. Unknown fields are refused, so a newer format cannot be half-understood. */
export const ManifestSchema = Type.Object(
  {
    schema: Type.Literal(MANIFEST_SCHEMA),
    deployment: Type.String({ pattern: DEPLOYMENT_PATTERN }),
    hw: Type.String({ pattern: HW_PATTERN }),
    version: Type.String({ pattern: SEMVER_PATTERN, maxLength: SEMVER_MAX_LENGTH }),
    /** Anti-rollback counter (ESP-IDF `secure_version`): a device never accepts a lower one than it runs. */
    secure_version: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
    issued_at: Type.Integer({ minimum: 0 }),
    expires: Type.Integer({ minimum: 0 }),
    image: Type.Object(
      {
        path: Type.String({ pattern: '^/ota/images/[0-9a-f]{64}\\.bin$' }),
        size: Type.Integer({ minimum: 1 }),
        sha256: Type.String({ pattern: SHA256_PATTERN }),
      },
      { additionalProperties: false },
    ),
    rollout: Type.Optional(RolloutSchema),
  },
  { additionalProperties: false },
)
export type Manifest = Static<typeof ManifestSchema>

/** One signature: who signed (keyid) and the DER signature, base64. */
export const SignatureSchema = Type.Object(
  {
    keyid: Type.String({ pattern: SHA256_PATTERN }),
    sig: Type.String({ minLength: 1, maxLength: 200 }),
  },
  { additionalProperties: false },
)

/** The envelope served by `GET /ota/latest` and written by `ferry ota publish`. */
export const EnvelopeSchema = Type.Object(
  {
    payload: Type.String({ minLength: 1, maxLength: Math.ceil(MAX_PAYLOAD_BYTES / 3) * 4 }),
    signatures: Type.Array(SignatureSchema, { minItems: 1, maxItems: MAX_SIGNATURES }),
  },
  { additionalProperties: false },
)
export type Envelope = Static<typeof EnvelopeSchema>

export const checkManifest = Compile(ManifestSchema)
export const checkEnvelope = Compile(EnvelopeSchema)

/** What `buildManifest` needs; `issued_at` defaults to now and `deployment` to `<hw>-<version>`. */
export interface ManifestInput {
  hw: string
  version: string
  secureVersion: number
  image: { size: number; sha256: string }
  /** Epoch ms or Date. */
  expires: number | Date
  issuedAt?: number | Date
  deployment?: string
  rollout?: Rollout
}

/**
 * Builds a manifest and its exact bytes. Field order is fixed and there is no whitespace, so the same
 * input always yields the same bytes (handy for test vectors). Throws ManifestError('malformed_manifest')
 * naming the first bad field.
 */
export function buildManifest(input: ManifestInput): { manifest: Manifest; bytes: Buffer } {
  const ms = (d: number | Date) => (d instanceof Date ? d.getTime() : d)
  const manifest: Manifest = {
    schema: MANIFEST_SCHEMA,
    deployment: input.deployment ?? `${input.hw}-${input.version}`,
    hw: input.hw,
    version: input.version,
    secure_version: input.secureVersion,
    issued_at: ms(input.issuedAt ?? Date.now()),
    expires: ms(input.expires),
    image: { path: imagePathFor(input.image.sha256), size: input.image.size, sha256: input.image.sha256 },
    ...(input.rollout ? { rollout: input.rollout } : {}),
  }
  assertManifest(manifest)
  if (manifest.expires <= manifest.issued_at) {
    throw new ManifestError('malformed_manifest', `expires (${new Date(manifest.expires).toISOString()}) must be after issued_at (${new Date(manifest.issued_at).toISOString()})`)
  }
  return { manifest, bytes: encodeManifest(manifest) }
}

/** The canonical bytes of a manifest: keys in schema order, no whitespace, UTF-8. */
export function encodeManifest(m: Manifest): Buffer {
  const ordered: Manifest = {
    schema: m.schema,
    deployment: m.deployment,
    hw: m.hw,
    version: m.version,
    secure_version: m.secure_version,
    issued_at: m.issued_at,
    expires: m.expires,
    image: { path: m.image.path, size: m.image.size, sha256: m.image.sha256 },
    ...(m.rollout ? { rollout: 'percent' in m.rollout ? { percent: m.rollout.percent } : { devices: [...m.rollout.devices] } } : {}),
  }
  const bytes = Buffer.from(JSON.stringify(ordered), 'utf8')
  if (bytes.length > MAX_PAYLOAD_BYTES) {
    throw new ManifestError('malformed_manifest', `manifest is ${bytes.length} bytes, more than the ${MAX_PAYLOAD_BYTES} a device accepts; shorten the device list or use a percentage rollout`)
  }
  return bytes
}

/** Throws ManifestError('malformed_manifest') with the first schema error when `m` is not a manifest. */
export function assertManifest(m: unknown): asserts m is Manifest {
  if (checkManifest.Check(m)) {
    const v = (m as Manifest).version
    if (!isSemver(v)) throw new ManifestError('malformed_manifest', `manifest version "${v}" is not a semantic version`)
    if ((m as Manifest).image.path !== imagePathFor((m as Manifest).image.sha256)) {
      throw new ManifestError('malformed_manifest', 'manifest image.path does not name the image by its sha256')
    }
    return
  }
  const first = [...checkManifest.Errors(m)][0]
  const where = first?.instancePath || '/'
  throw new ManifestError('malformed_manifest', `not a Ferry manifest: ${where} ${first?.message ?? 'is invalid'}`)
}

/** Hex sha256 of bytes. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex')
}
