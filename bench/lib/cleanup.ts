/**
 * Nothing a benchmark starts outlives `npm run bench`, however the run ends.
 *
 * - Every open teardown scope (harness.ts `Scope`: processes, brokers, influxd, temp dirs) is known
 *   here, so a signal or an unexpected error can close them all, newest first.
 * - Every process started through procs.ts `start` is known by pid.
 * - As a last resort every descendant of this process (found through /proc, so also what
 *   common/ code spawned, or an nginx worker whose master is gone) is sent SIGKILL.
 *
 * `installExitGuards()` (bench/run.ts) ties this to SIGINT, SIGTERM, SIGHUP, uncaught exceptions,
 * unhandled rejections and process exit. With `FERRY_BENCH_TRACE=1` every start and stop is logged
 * to stderr (`bench-trace: started pid <pid>: <command line>`).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { constants } from 'node:os'

/** What cleanup needs from a teardown scope (harness.ts `Scope`). */
export interface Closable {
  close(): Promise<void>
  /** Runs what is left synchronously (for process exit), not waiting for anything asynchronous. */
  closeSync(): void
}

const scopes = new Set<Closable>()
const children = new Map<number, string>()
const started: Array<{ pid: number; command: string }> = []
let shuttingDown = false

export function trace(msg: string): void {
  if (process.env.FERRY_BENCH_TRACE === '1') process.stderr.write(`bench-trace: ${msg}\n`)
}

export function trackScope(s: Closable): void {
  scopes.add(s)
}

export function untrackScope(s: Closable): void {
  scopes.delete(s)
}

export function trackChild(pid: number, command: string): void {
  children.set(pid, command)
  started.push({ pid, command })
  if (started.length > 1000) started.shift()
  trace(`started pid ${pid}: ${command}`)
}

export function untrackChild(pid: number): void {
  if (children.delete(pid)) trace(`exited pid ${pid}`)
}

/** Processes started through procs.ts `start` in this process, oldest first (the last 1000). */
export function startedChildren(): ReadonlyArray<{ pid: number; command: string }> {
  return started
}

/** Processes started through procs.ts `start` that have not exited yet. */
export function liveChildren(): ReadonlyMap<number, string> {
  return children
}

/** True once a signal or an unexpected error has started the final cleanup: start nothing new. */
export function isShuttingDown(): boolean {
  return shuttingDown
}

/** All descendants of `root` (children, their children, …), from /proc. Empty where /proc is missing. */
export function descendantsOf(root = process.pid): number[] {
  const kids = new Map<number, number[]>()
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8')
      // The command name may hold spaces and parentheses; the fields after the last ')' are state, ppid, …
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      const list = kids.get(ppid) ?? []
      list.push(Number(e))
      kids.set(ppid, list)
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = []
  const queue = [root]
  while (queue.length) {
    for (const k of kids.get(queue.shift()!) ?? []) {
      out.push(k)
      queue.push(k)
    }
  }
  return out
}

/** Sends `signal` to every descendant of this process and to every tracked child; returns the pids signalled. */
export function killDescendantsSync(signal: NodeJS.Signals = 'SIGKILL'): number[] {
  const pids = new Set([...descendantsOf(), ...children.keys()])
  const hit: number[] = []
  for (const pid of pids) {
    try {
      process.kill(pid, signal)
      hit.push(pid)
    } catch {
      // already gone
    }
  }
  return hit
}

/**
 * Closes every open scope, newest first (each stops its processes gracefully and removes its temp
 * dirs), gives up waiting after `timeoutMs`, then kills whatever is still running below this process
 * and runs what is left of the scopes synchronously.
 */
export async function cleanupAll(timeoutMs = 10_000): Promise<void> {
  shuttingDown = true
  const closing = (async () => {
    for (const s of [...scopes].reverse()) await s.close()
  })()
  let timer: NodeJS.Timeout | undefined
  await Promise.race([closing, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))])
  clearTimeout(timer)
  cleanupAllSync()
}

/** The synchronous part, also run on process exit: SIGKILL to every descendant, then the scopes' remaining teardowns. */
export function cleanupAllSync(): void {
  shuttingDown = true
  const killed = killDescendantsSync('SIGKILL')
  if (killed.length) trace(`killed ${killed.join(', ')}`)
  for (const s of [...scopes].reverse()) s.closeSync()
}

/**
 * Makes every way out of the bench runner clean up first: SIGINT, SIGTERM and SIGHUP (exit code
 * 128 + signal number; a second signal skips the graceful part), uncaught exceptions and unhandled
 * rejections (exit code 1), and process exit. Returns a function that removes the handlers.
 */
export function installExitGuards(opts: { log?: (msg: string) => void; timeoutMs?: number } = {}): () => void {
  const log = opts.log ?? ((m: string) => process.stderr.write(`bench: ${m}\n`))
  let bailing = false
  const bail = (why: string, code: number) => {
    if (bailing) {
      cleanupAllSync()
      process.exit(code)
    }
    bailing = true
    const n = new Set([...descendantsOf(), ...children.keys()]).size
    log(`${why}; stopping ${n} process${n === 1 ? '' : 'es'} and removing temp dirs`)
    void cleanupAll(opts.timeoutMs).finally(() => process.exit(code))
  }
  const onSignal = (sig: NodeJS.Signals) => bail(`interrupted by ${sig}`, 128 + (constants.signals[sig] ?? 0))
  const onError = (err: unknown) => {
    const e = err as Error | undefined
    log(`unexpected error: ${e?.stack ?? String(err)}`)
    bail('cleaning up after the unexpected error', 1)
  }
  const onExit = () => cleanupAllSync()
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
  for (const s of signals) process.on(s, onSignal)
  process.on('uncaughtException', onError)
  process.on('unhandledRejection', onError)
  process.on('exit', onExit)
  return () => {
    for (const s of signals) process.off(s, onSignal)
    process.off('uncaughtException', onError)
    process.off('unhandledRejection', onError)
    process.off('exit', onExit)
  }
}
