import { join } from 'node:path'
import { DEPLOYMENT_PATTERN, HW_RE, IMAGE_NAME_RE } from '../manifest/envelope.js'
import { isSemver } from '../manifest/semver.js'

const DEPLOYMENT_RE = new RegExp(DEPLOYMENT_PATTERN)

/**
 * File name suffix of a release's stage plan, beside its `<version>.json`. `1.2.0-rc.1.rollout` is a
 * valid semantic version, so the release lister skips names with this suffix explicitly.
 */
export const PLAN_SUFFIX = '.rollout.json'

/**
 * The OTA folder, written by `ferry ota publish` and read by the server:
 * ```
 * <dir>/images/<sha256>.bin          images, named by their content hash
 * <dir>/releases/<hw>/<version>.json signed envelopes, one per hardware and version
 * <dir>/releases/<hw>/<version>.rollout.json  the release's stage plan (unsigned publishing metadata, optional)
 * <dir>/reports.jsonl                device progress reports, one JSON object per line
 * <dir>/rollouts/<deployment>.json   the server's rollout state per deployment (stage, halt, history)
 * ```
 * `releases/` and `images/` are written by `ferry ota publish` (read-only to the server under Docker
 * Compose); `reports.jsonl` and `rollouts/` are the server's own state, in its writable volume.
 * Every name that comes from outside (hw, version, image name) is checked against its pattern here,
 * before any path is built, so nothing from a request reaches the file system unchecked.
 */
export function otaLayout(dir: string) {
  return {
    dir,
    imagesDir: join(dir, 'images'),
    releasesDir: join(dir, 'releases'),
    reportsFile: join(dir, 'reports.jsonl'),
    rolloutsDir: join(dir, 'rollouts'),
    image(name: string): string {
      if (!IMAGE_NAME_RE.test(name)) throw new RangeError(`refusing image name ${JSON.stringify(name)}: want <64 hex>.bin`)
      return join(dir, 'images', name)
    },
    hwDir(hw: string): string {
      if (!HW_RE.test(hw)) throw new RangeError(`refusing hardware id ${JSON.stringify(hw)}`)
      return join(dir, 'releases', hw)
    },
    release(hw: string, version: string): string {
      if (!isSemver(version)) throw new RangeError(`refusing version ${JSON.stringify(version)}`)
      return join(this.hwDir(hw), `${version}.json`)
    },
    /** The stage plan beside a release (docs/ota-rollouts.md#where-the-stages-live). */
    plan(hw: string, version: string): string {
      if (!isSemver(version)) throw new RangeError(`refusing version ${JSON.stringify(version)}`)
      return join(this.hwDir(hw), `${version}${PLAN_SUFFIX}`)
    },
    /** The server's rollout state of a deployment. */
    rolloutState(deployment: string): string {
      if (!DEPLOYMENT_RE.test(deployment)) throw new RangeError(`refusing deployment id ${JSON.stringify(deployment)}`)
      return join(dir, 'rollouts', `${deployment}.json`)
    },
  }
}

export type OtaLayout = ReturnType<typeof otaLayout>
