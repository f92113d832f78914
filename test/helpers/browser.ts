/**
 * System Chromium (headless, via playwright-core) that trusts one CA the way a user's browser would:
 * the CA is imported into the NSS certificate database of a fresh home folder, which Chromium on
 * Linux reads as the user's own trust store. Certificates are fully verified (chain, names, validity):
 * no `ignoreHTTPSErrors`, no `--ignore-certificate-errors*`. Needs `certutil` (Debian: libnss3-tools,
 * installed by scripts/bootstrap.sh).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'

interface T {
  teardown(fn: () => unknown): void
}

export const CHROMIUM = process.env.FERRY_CHROMIUM ?? '/usr/bin/chromium'

/** Launches Chromium trusting `caFile` (PEM) for server authentication; closed at teardown. */
export async function launchChromiumTrusting(t: T, caFile: string): Promise<Browser> {
  const home = mkdtempSync(join(tmpdir(), 'ferry-chromium-home-'))
  const removeHome = () => rmSync(home, { recursive: true, force: true })
  let browser: Browser
  try {
    const nssdb = join(home, '.pki', 'nssdb')
    mkdirSync(nssdb, { recursive: true })
    certutil(nssdb, ['-N', '--empty-password'])
    // "C,,": a trusted CA for TLS server certificates only (not for e-mail or code signing).
    certutil(nssdb, ['-A', '-t', 'C,,', '-n', 'Ferry test CA', '-i', caFile])
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      env: { ...process.env, HOME: home },
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    })
  } catch (err) {
    removeHome()
    throw err
  }
  // The home goes only after the browser has closed: until then it may still use its NSS files.
  t.teardown(async () => {
    await browser.close()
    removeHome()
  })
  return browser
}

function certutil(nssdb: string, args: string[]): void {
  try {
    execFileSync('certutil', ['-d', `sql:${nssdb}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer }
    throw new Error(e.code === 'ENOENT' ? 'certutil not found: install libnss3-tools (scripts/bootstrap.sh)' : `certutil ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`, { cause: err })
  }
}
