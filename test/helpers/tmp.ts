import { execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** A fresh temp folder removed when the test ends. World-traversable so a broker that dropped root can reach its files. */
export function tempDir(t: Teardown, prefix = 'ferry-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  chmodSync(dir, 0o755)
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A tmpfs mounted at `<dir>/<name>` with mount `options` (e.g. `ro,size=1m`; needs root), unmounted when the test ends. */
export function mountTmpfs(t: Teardown, dir: string, name: string, options: string): string {
  const mnt = join(dir, name)
  mkdirSync(mnt)
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', mnt])
  t.teardown(() => execFileSync('umount', ['-l', mnt]))
  return mnt
}
