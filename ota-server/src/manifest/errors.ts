import { FerryError, ManifestSignatureError } from '../../../common/src/errors.js'

/**
 * Why a verifier refused an envelope. Stable strings: the firmware reports them on
 * `sensors/<id>/ota/status` as `reason`, and its C++ verifier uses the same names in its test vectors.
 */
export type ManifestRejectReason =
  /** The envelope is not `{payload, signatures}` with canonical base64 and hex keyids. */
  | 'malformed_envelope'
  /** No signature made by a trusted key verified over the exact payload bytes. */
  | 'bad_signature'
  /** The signed payload is not a manifest of the known schema (checked only after the signature). */
  | 'malformed_manifest'
  /** The manifest is for other hardware. */
  | 'wrong_hw'
  /** `expires` lies in the past. */
  | 'expired'
  /** `secure_version` is below the device's anti-rollback counter. */
  | 'secure_version_too_low'
  /** `version` is not newer than the running version. */
  | 'not_newer'
  /** `image.size` exceeds what the device can hold. */
  | 'image_too_large'

/** The signature part of a refusal: code `FERRY_ERR_MANIFEST_SIGNATURE`, reason `bad_signature` or `malformed_envelope`. */
export class EnvelopeSignatureError extends ManifestSignatureError {
  readonly reason: ManifestRejectReason
  constructor(reason: ManifestRejectReason, message: string) {
    super(message)
    this.reason = reason
  }
}

/** Every other refusal of a correctly signed manifest: code `FERRY_ERR_MANIFEST`, with a machine-readable reason. */
export class ManifestError extends FerryError {
  readonly reason: ManifestRejectReason
  constructor(reason: ManifestRejectReason, message: string, options?: { cause?: unknown }) {
    super('FERRY_ERR_MANIFEST', message, options)
    this.reason = reason
  }
}

/** The reason of a verifier refusal, or undefined for any other error. */
export function rejectReasonOf(err: unknown): ManifestRejectReason | undefined {
  const r = (err as { reason?: unknown } | null)?.reason
  return typeof r === 'string' ? (r as ManifestRejectReason) : undefined
}
