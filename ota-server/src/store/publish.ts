import { createHash } from 'node:crypto'
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync, copyFileSync, rmSync } from 'node:fs'
import { dirname } from 'node:path'
import { FerryError } from '../../../common/src/errors.js'
import { buildManifest, type Envelope, type Manifest, type Rollout } from '../manifest/envelope.js'
import type { KeyInput } from '../manifest/keys.js'
import { signEnvelope } from '../manifest/sign.js'
import { verifyEnvelope } from '../manifest/verify.js'
import { encodePlan, planProblem, readPlan, type RolloutPlan } from '../rollout/plan.js'
import { otaLayout } from './layout.js'

export interface PublishInput {
  /** The firmware image file (`.pio/build/esp32/firmware.bin`). */
  image: string
  version: string
  hw: string
  secureVersion: number
  /** One or more release private keys (two during key rotation). */
  keys: KeyInput[]
  /** The OTA folder to write into. */
  dir: string
  /** Lifetime of the manifest in ms; devices refuse it afterwards. */
  expiresInMs: number
  rollout?: Rollout
  /**
   * Stages and thresholds for the OTA server (rollout/plan.ts), written unsigned beside the envelope
   * as `<version>.rollout.json`. Absent: an existing plan of this version is kept.
   */
  plan?: RolloutPlan
  deployment?: string
  /** Replace an existing release of the same hw and version that names a different image. */
  force?: boolean
  now?: number
}

export interface PublishResult {
  manifest: Manifest
  envelope: Envelope
  envelopeFile: string
  imageFile: string
  /** The plan in force for this release (given now, or kept from an earlier publish), and its file. */
  plan?: RolloutPlan
  planFile?: string
}

/** Hashes a file by streaming it (images are up to a few MB; never read twice into memory). */
export async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256')
  let size = 0
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  return { sha256: h.digest('hex'), size }
}

function writeAtomic(path: string, data: string | Buffer, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true })
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, data, { mode })
  renameSync(tmp, path)
}

/**
 * `ferry ota publish`, offline: copies the image into `images/<sha256>.bin`, signs a manifest for it
 * and writes `releases/<hw>/<version>.json`. Both writes are rename-into-place, so a running server
 * sees the old release or the new one, never half of either; the image lands first, so no envelope
 * ever names a missing image. The result is verified with the keys' own public halves before it is
 * written. Re-publishing the same hw and version with the same image renews it (new expiry, new
 * rollout, same deployment id, so a wider rollout keeps everyone already in); a different image
 * needs `force`, because devices may already hold the old one under that version.
 */
export async function publishRelease(p: PublishInput): Promise<PublishResult> {
  const now = p.now ?? Date.now()
  if (!existsSync(p.image) || !statSync(p.image).isFile()) {
    throw new FerryError('FERRY_ERR_USAGE', `image ${p.image} does not exist or is not a file`)
  }
  const { sha256, size } = await sha256File(p.image)
  const layout = otaLayout(p.dir)
  const { manifest, bytes } = buildManifest({
    hw: p.hw,
    version: p.version,
    secureVersion: p.secureVersion,
    image: { sha256, size },
    issuedAt: now,
    expires: now + p.expiresInMs,
    rollout: p.rollout,
    deployment: p.deployment,
  })
  if (p.plan) {
    const problem = planProblem(p.plan)
    if (problem) throw new FerryError('FERRY_ERR_USAGE', problem)
  }
  const envelope = signEnvelope(bytes, p.keys)
  // Self-check with the public halves: every distinct key must have produced a valid signature.
  verifyEnvelope(envelope, p.keys, { now, threshold: envelope.signatures.length })

  const envelopeFile = layout.release(p.hw, p.version)
  if (existsSync(envelopeFile) && !p.force) {
    const old = JSON.parse(Buffer.from(JSON.parse(readFileSync(envelopeFile, 'utf8')).payload, 'base64').toString('utf8')) as Manifest
    if (old.image.sha256 !== sha256) {
      throw new FerryError('FERRY_ERR_USAGE', `${p.hw} ${p.version} is already published with another image (${old.image.sha256.slice(0, 12)}…); bump the version, or pass --force if no device can have the old one`)
    }
  }
  const imageFile = layout.image(`${sha256}.bin`)
  if (!existsSync(imageFile) || (await sha256File(imageFile)).sha256 !== sha256) {
    mkdirSync(layout.imagesDir, { recursive: true })
    const tmp = `${imageFile}.tmp-${process.pid}`
    try {
      copyFileSync(p.image, tmp)
      if ((await sha256File(tmp)).sha256 !== sha256) throw new FerryError('FERRY_ERR_USAGE', `${p.image} changed while it was being published; try again`)
      renameSync(tmp, imageFile)
    } finally {
      rmSync(tmp, { force: true })
    }
  }
  // The plan lands before the envelope: a server must never see a new staged release without its
  // stages, which would offer it to every device at once.
  const planFile = layout.plan(p.hw, p.version)
  if (p.plan) writeAtomic(planFile, encodePlan(p.plan))
  writeAtomic(envelopeFile, JSON.stringify(envelope) + '\n')
  const plan = p.plan ?? (existsSync(planFile) ? readPlan(planFile) : undefined)
  return { manifest, envelope, envelopeFile, imageFile, ...(plan ? { plan, planFile } : {}) }
}
