import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import type { KeyObject } from 'node:crypto'
import { FerryError } from '../../../common/src/errors.js'
import type { Logger } from '../../../common/src/logger.js'
import { silentLogger } from '../../../common/src/logger.js'
import { assertManifest, type Envelope, type Manifest } from '../manifest/envelope.js'
import { inRollout } from '../manifest/rollout.js'
import { readPlan, type RolloutPlan } from '../rollout/plan.js'
import { compareSemver, isSemver } from '../manifest/semver.js'
import { decodeBase64Strict, parseEnvelope, verifyEnvelopeSignature } from '../manifest/verify.js'
import { PLAN_SUFFIX, type OtaLayout } from './layout.js'

/** A release as the server sees it: the envelope exactly as published, plus its parsed manifest. */
export interface Release {
  envelope: Envelope
  /** The envelope file's bytes, served verbatim so the server never re-encodes signed data. */
  raw: Buffer
  manifest: Manifest
  file: string
  /** The stage plan published beside it (`<version>.rollout.json`), if any; see rollout/plan.ts. */
  plan?: RolloutPlan
}

/** What a device told us in its `GET /ota/latest` query. */
export interface DeviceQuery {
  device: string
  hw: string
  version: string
  secureVersion?: number
}

export type Decision =
  | { kind: 'update'; release: Release }
  | { kind: 'up-to-date'; release?: Release }

/**
 * Reads the envelopes `ferry ota publish` wrote. It holds no private key and signs nothing: it only
 * picks which already-signed envelope to hand out. With `trustedKeys` set (FERRY_OTA_PUB) it also
 * checks each envelope's signature on load and never serves one that fails, as a second line behind
 * the device's own check.
 *
 * A hardware folder is re-read when a file in it is added, removed or changed (size or mtime).
 */
export class ReleaseStore {
  private cache = new Map<string, { stamp: string; releases: Release[] }>()

  constructor(
    private readonly layout: OtaLayout,
    private readonly opts: { trustedKeys?: KeyObject[]; log?: Logger } = {},
  ) {}

  private get log(): Logger {
    return this.opts.log ?? silentLogger
  }

  /** Every loadable release for `hw`, newest version first. Unreadable or unsigned files are skipped with a WARN. */
  releases(hw: string): Release[] {
    const dir = this.layout.hwDir(hw)
    let names: string[]
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.json') && !n.endsWith(PLAN_SUFFIX) && isSemver(n.slice(0, -5))).sort()
    } catch {
      return []
    }
    // One stat per file: cheap next to TLS, and an envelope or plan edited in place is noticed too.
    const stamp = names.map((n) => `${n}@${statOrZero(`${dir}/${n}`)}+${statOrZero(`${dir}/${n.slice(0, -5)}${PLAN_SUFFIX}`)}`).join('|')
    const hit = this.cache.get(hw)
    if (hit && hit.stamp === stamp) return hit.releases
    const releases: Release[] = []
    for (const name of names) {
      const file = `${dir}/${name}`
      try {
        releases.push(this.load(file, hw, name.slice(0, -5)))
      } catch (err) {
        this.log.warn({ file, err }, 'skipping a release file that cannot be served; publish it again')
      }
    }
    releases.sort((a, b) => compareSemver(b.manifest.version, a.manifest.version))
    this.cache.set(hw, { stamp, releases })
    return releases
  }

  private load(file: string, hw: string, version: string): Release {
    const raw = readFileSync(file)
    const envelope = parseEnvelope(raw)
    let payload: Buffer
    if (this.opts.trustedKeys?.length) payload = verifyEnvelopeSignature(envelope, this.opts.trustedKeys).payload
    else payload = decodeBase64Strict(envelope.payload, 'payload')
    const manifest: unknown = JSON.parse(payload.toString('utf8'))
    assertManifest(manifest)
    if (manifest.hw !== hw || manifest.version !== version) {
      throw new FerryError(
        'FERRY_ERR_RELEASE',
        `${file}: the file name says ${hw}/${version} but the manifest says ${manifest.hw}/${manifest.version}; publish the release again with "ferry ota publish" instead of renaming or copying release files`,
      )
    }
    if (!existsSync(this.layout.image(`${manifest.image.sha256}.bin`))) {
      throw new FerryError('FERRY_ERR_RELEASE', `image ${manifest.image.sha256}.bin is missing from ${this.layout.imagesDir}; publish the release again with "ferry ota publish"`)
    }
    // A plan that cannot be read means nobody knows whom the release may reach: it is not served.
    const planFile = this.layout.plan(hw, version)
    const plan = existsSync(planFile) ? readPlan(planFile) : undefined
    return { envelope, raw, manifest, file, ...(plan ? { plan } : {}) }
  }

  /**
   * The release policy for one device, newest first: skip expired releases, releases below the
   * device's secure_version and releases whose rollout excludes the device; the first one left is the
   * device's current release. Newer than what it runs: update; otherwise it is up to date.
   * A device left out of the newest rollout so still gets the newest release it is included in.
   * `admit` adds the server's own rollout decision (rollout/engine.ts: stages and halts); it can only
   * leave a release out, never add one the signed manifest's rollout excludes.
   */
  decide(q: DeviceQuery, now: number, admit?: (release: Release) => boolean): Decision {
    for (const release of this.releases(q.hw)) {
      const m = release.manifest
      if (m.expires <= now) continue
      if (q.secureVersion !== undefined && m.secure_version < q.secureVersion) continue
      if (!inRollout(m, q.device)) continue
      if (admit && !admit(release)) continue
      return compareSemver(m.version, q.version) > 0 ? { kind: 'update', release } : { kind: 'up-to-date', release }
    }
    return { kind: 'up-to-date' }
  }

  /** Every hardware id that has a releases folder. */
  hardware(): string[] {
    if (!existsSync(this.layout.releasesDir)) return []
    return readdirSync(this.layout.releasesDir).filter((n) => /^[a-z0-9][a-z0-9_-]{0,62}$/.test(n)).sort()
  }
}

function statOrZero(file: string): string {
  try {
    const s = statSync(file)
    return `${s.size}:${s.mtimeMs}`
  } catch {
    return '0'
  }
}
