import { join } from 'node:path'
import { HW_RE, IMAGE_NAME_RE } from '../manifest/envelope.js'
import { isSemver } from '../manifest/semver.js'

/**
 * The OTA folder, written by `ferry ota publish` and read by the server:
 * ```
 * <dir>/images/<sha256>.bin          images, named by their content hash
 * <dir>/releases/<hw>/<version>.json signed envelopes, one per hardware and version
 * <dir>/reports.jsonl                device progress reports, one JSON object per line
 * ```
 * Every name that comes from outside (hw, version, image name) is checked against its pattern here,
 * before any path is built, so nothing from a request reaches the file system unchecked.
 */
export function otaLayout(dir: string) {
  return {
    dir,
    imagesDir: join(dir, 'images'),
    releasesDir: join(dir, 'releases'),
    reportsFile: join(dir, 'reports.jsonl'),
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
  }
}

export type OtaLayout = ReturnType<typeof otaLayout>
