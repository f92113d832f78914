/**
 * The whole buffer database checked in the background (docs/integrity.md): `PRAGMA integrity_check`
 * on its own read-only connection in a worker thread, so the event loop never waits for it (it reads
 * every page: ~1 s for 1,000,000 readings in the page cache, ~10 s from the disk). The first check
 * runs shortly after start, once start-up and the broker connection have had the machine, then one
 * every FERRY_DB_CHECK_EVERY.
 *
 * Memory: a worker that loads SQLite's bindings adds ~17 MB of RSS while it runs, ~9 MB of which
 * stay after it exits (the bindings stay loaded); the check itself adds little (measured on 1,000,000
 * readings; docs/integrity.md). Once a day by default.
 *
 * WAL: the check's read transaction does not block commits; the WAL cannot be checkpointed past the
 * check's snapshot until it ends, so it grows by what is committed meanwhile, and shrinks after.
 *
 * Damage found: logged as an error (FERRY_ERR_BUFFER_DAMAGED), reported to `onResult` (the gateway's
 * state, /healthz and a metric), and left durably beside the database as `<db>.damaged`, which
 * `ferry status` shows and which makes the next start check the whole file and move it aside
 * (open.ts). Ingest keeps acknowledging meanwhile, saying so everywhere above.
 */
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import type { Logger } from '../../../common/src/logger.js'
import { reportDamage, type DamageReport } from './integrity.js'

/** One check's outcome. */
export interface CheckResult {
  ok: boolean
  at: number
  ms: number
  /** integrity_check's answer when not ok, or why the check could not run. */
  error?: string
  /** The check could not run (e.g. the file could not be opened); says nothing about damage. */
  failed?: boolean
}

/** The longest delay setTimeout takes (2^31 - 1 ms). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/** How long after start the first check runs at most: start-up has the machine first. */
export const FIRST_CHECK_AFTER_MS = 30_000

/**
 * The worker: CommonJS text (no file to resolve, so it runs the same from dist/ and through tsx).
 * `integrity_check(20)`: up to 20 problems named, enough to say where the damage is.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.sqlite)
let db
try {
  db = new Database(workerData.path, { readonly: true, fileMustExist: true })
  db.pragma('busy_timeout = 5000')
  // Each page is read once: a cache would not be hit, only add to the worker's memory.
  db.pragma('cache_size = -256')
  const answer = db.pragma('integrity_check(20)').map((r) => r.integrity_check)
  parentPort.postMessage({ ok: answer.length === 1 && answer[0] === 'ok', answer })
} catch (err) {
  const code = String(err && err.code || '')
  // SQLite's own corruption codes while reading are damage too, not a failed check.
  parentPort.postMessage({ ok: false, answer: [code + ': ' + err.message], damage: /^SQLITE_(CORRUPT|NOTADB)/.test(code) })
} finally {
  if (db) db.close()
}
`

/** Runs one whole-file check of `path` in a worker thread. */
export function checkInBackground(path: string, now: () => number = Date.now): { result: Promise<CheckResult>; stop(): Promise<void> } {
  const at = now()
  const t0 = performance.now()
  const sqlite = createRequire(import.meta.url).resolve('better-sqlite3')
  const worker = new Worker(WORKER, { eval: true, workerData: { path, sqlite } })
  let stopped = false
  const result = new Promise<CheckResult>((resolve) => {
    const done = (r: Omit<CheckResult, 'at' | 'ms'>) => resolve({ ...r, at, ms: Math.round(performance.now() - t0) })
    worker.once('message', (m: { ok: boolean; answer: string[]; damage?: boolean }) => {
      if (m.ok) done({ ok: true })
      else if (m.damage === false) done({ ok: false, failed: true, error: m.answer.join('; ') })
      else done({ ok: false, error: `integrity_check: ${m.answer.join('; ')}` })
    })
    worker.once('error', (err) => done({ ok: false, failed: true, error: err.message }))
    worker.once('exit', (code) => done({ ok: false, failed: true, error: stopped ? 'stopped' : `the check's worker exited (${code})` }))
  })
  return {
    result,
    async stop() {
      stopped = true
      await worker.terminate()
    },
  }
}

export interface BackgroundChecksOptions {
  path: string
  /** Between checks; the first runs after min(this, FIRST_CHECK_AFTER_MS). Null: no checks. */
  everyMs: number | null
  log: Logger
  /** Every completed check (not the ones stopped at shutdown). */
  onResult(r: CheckResult): void
  now?: () => number
}

/** Runs the checks on their schedule until `stop()`; a damage found is reported (see above). */
export function startBackgroundChecks(opts: BackgroundChecksOptions): { stop(): Promise<void> } {
  const { path, everyMs, log } = opts
  if (everyMs === null) return { stop: async () => {} }
  let timer: NodeJS.Timeout | undefined
  let running: ReturnType<typeof checkInBackground> | undefined
  let stopped = false
  const schedule = (ms: number) => {
    // setTimeout takes at most ~24.8 days; longer (FERRY_DB_CHECK_EVERY=5w) would fire at once.
    timer = setTimeout(run, Math.min(ms, MAX_TIMEOUT_MS))
  }
  const run = async () => {
    running = checkInBackground(path, opts.now)
    const r = await running.result
    running = undefined
    if (stopped) return
    if (r.ok) log.info({ ms: r.ms }, 'buffer database checked: no damage found')
    else if (r.failed) log.warn({ err: r.error, ms: r.ms }, 'the background check of the buffer database could not run; trying again at the next check')
    else {
      const report: DamageReport = { at: r.at, error: r.error! }
      try {
        reportDamage(path, report)
      } catch (err) {
        log.error({ err }, 'could not leave the damage report beside the buffer database')
      }
      log.error(
        { code: 'FERRY_ERR_BUFFER_DAMAGED', error: r.error, ms: r.ms },
        'FERRY_ERR_BUFFER_DAMAGED: the background check found damage in the buffer database. The gateway keeps taking and delivering readings; let the sinks catch up (ferry status), then restart it: the next start checks the whole file and moves it aside (docs/integrity.md)',
      )
    }
    opts.onResult(r)
    if (!stopped) schedule(everyMs)
  }
  schedule(Math.min(everyMs, FIRST_CHECK_AFTER_MS))
  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      await running?.stop()
    },
  }
}
