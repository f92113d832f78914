import { mkdtempSync, rmSync, chmodSync } from 'node:fs'
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
