/**
 * Child processes for the benchmarks: the `ferry` command (built, so RSS and I/O are the gateway's
 * own and not the TypeScript loader's), any other binary with its output captured, and readings from
 * `/proc/<pid>` (RSS, peak RSS, bytes written).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitForPort } from '../../common/src/broker/broker.js'
import { isShuttingDown, trackChild, untrackChild } from './cleanup.js'
import type { Scope } from './harness.js'

export const ROOT = join(import.meta.dirname, '..', '..')

/**
 * How to run `ferry`: the build in dist/ (what `npm run bench` refreshes via scripts/bootstrap.sh), or the
 * TypeScript sources through tsx when there is no build. The label goes into the results, since tsx
 * adds its own memory and start-up time.
 */
export function ferryCommand(): { argv: string[]; runtime: 'dist' | 'tsx' } {
  const built = join(ROOT, 'dist', 'cli', 'ferry.js')
  // `npm run bench` rebuilds dist/ first (scripts/bootstrap.sh) when any source is newer.
  if (existsSync(built)) {
    return { argv: [join(ROOT, 'bin', 'ferry.js')], runtime: 'dist' }
  }
  return { argv: ['--import', 'tsx', join(ROOT, 'cli', 'main.ts')], runtime: 'tsx' }
}

export interface Proc {
  child: ChildProcess
  /** -1 when the command could not be started. */
  pid: number
  /** `cmd args…`, for messages. */
  command: string
  lines: string[]
  /**
   * Resolves when the process exits; rejects (with a message naming the command) when it could not
   * be started at all, e.g. `spawn nginx ENOENT`. Never an unhandled rejection when nobody awaits it.
   */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Started and not exited yet. */
  alive(): boolean
  /** Resolves with the first output line (stdout or stderr) matching `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>
}

/** The error of a command that could not be started at all. */
export class SpawnError extends Error {
  readonly code: string | undefined
  constructor(readonly cmd: string, cause: NodeJS.ErrnoException) {
    super(cause.code === 'ENOENT'
      ? `could not start ${cmd}: not found on PATH (${cause.message}); bench/run.ts checks for and installs what the benchmarks need first, see bench/README.md`
      : `could not start ${cmd}: ${cause.message}`, { cause })
    this.code = cause.code
  }
}

/**
 * Spawns `cmd` and keeps its output lines (up to `keepLines`, oldest dropped) unless a custom
 * `onStdout` consumes stdout; stopped (SIGTERM, then SIGKILL) when `scope` closes. Like
 * test/helpers/process.ts `start`, plus: a command that cannot be started rejects `exited` and
 * `waitFor` instead of crashing the runner with an unhandled 'error' event, and every process is
 * known to cleanup.ts until it exits, so a signal or a crash of the runner still stops it.
 */
export function start(scope: Scope, cmd: string, args: string[], opts: SpawnOptions & { keepLines?: number; onStdout?: (b: Buffer) => void } = {}): Proc {
  if (isShuttingDown()) throw new Error(`not starting ${cmd}: the bench runner is shutting down`)
  const command = [cmd, ...args].join(' ')
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  const pid = child.pid ?? -1
  if (pid > 0) trackChild(pid, command)
  const lines: string[] = []
  const keep = opts.keepLines ?? 5000
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = []
  let partial = ''
  const onText = (buf: Buffer) => {
    const text = partial + buf.toString('utf8')
    const parts = text.split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) {
      if (!line) continue
      lines.push(line)
      if (lines.length > keep) lines.shift()
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve(line)
        }
      }
    }
  }
  if (opts.onStdout) child.stdout?.on('data', opts.onStdout)
  else child.stdout?.on('data', onText)
  child.stderr?.on('data', onText)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      untrackChild(pid)
      resolve({ code, signal })
    })
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Not started at all (no pid): there will be no 'exit'. Otherwise e.g. a failed kill(); the
      // process is still there and 'exit' follows.
      if (pid < 0) reject(new SpawnError(cmd, err))
      else lines.push(`${cmd}: ${err.message}`)
    })
  })
  exited.catch(() => {})
  const alive = () => pid > 0 && child.exitCode === null && child.signalCode === null
  const stop = async (graceMs = 5000) => {
    if (!alive()) return
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    await exited.catch(() => {})
    clearTimeout(killer)
  }
  scope.teardown(() => stop(3000))
  return {
    child,
    pid,
    command,
    lines,
    exited,
    alive,
    stop,
    waitFor(re: RegExp, timeoutMs = 30_000) {
      const hit = lines.find((l) => re.test(l))
      if (hit) return Promise.resolve(hit)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${cmd}: timed out waiting for ${re}; last lines:\n${lines.slice(-10).join('\n')}`)), timeoutMs)
        const w = {
          re,
          resolve: (l: string) => {
            clearTimeout(timer)
            resolve(l)
          },
        }
        waiters.push(w)
        const gone = (err?: unknown) => {
          if (!waiters.includes(w)) return
          waiters.splice(waiters.indexOf(w), 1)
          clearTimeout(timer)
          reject(err instanceof Error ? err : new Error(`${cmd} exited while waiting for ${re}; last lines:\n${lines.slice(-10).join('\n')}`))
        }
        exited.then(() => gone(), gone)
      })
    },
  }
}

/**
 * Waits until `port` on 127.0.0.1 accepts connections, failing at once (with the process's last
 * lines) when `p` could not be started or exits first.
 */
export async function waitListening(p: Proc, port: number, timeoutMs = 20_000): Promise<void> {
  await Promise.race([
    waitForPort(port, '127.0.0.1', timeoutMs, p.alive),
    p.exited.then((r) => {
      throw new Error(`${p.command} exited (${r.signal ?? `code ${r.code}`}) before it listened on port ${port}; last lines:\n${p.lines.slice(-10).join('\n')}`)
    }),
  ])
}

/** The NODE_OPTIONS the container image sets (Dockerfile), so the benchmarks measure what ships. */
export function shippedNodeOptions(): string[] {
  const m = /^ENV NODE_OPTIONS=(.+)$/m.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))
  return m ? m[1]!.replace(/^"|"$/g, '').split(/\s+/).filter(Boolean) : []
}

/** `ferry <args>` with exactly the given environment (plus PATH and HOME) and the shipped Node options. */
export function startFerry(scope: Scope, args: string[], env: Record<string, string>, opts: { nodeArgs?: string[] } = {}): Proc {
  const { argv } = ferryCommand()
  // FERRY_BENCH_NODE_ARGS adds Node options for profiling, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const extra = process.env.FERRY_BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []
  return start(scope, process.execPath, [...shippedNodeOptions(), ...extra, ...(opts.nodeArgs ?? []), ...argv, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  })
}

/** VmRSS and VmHWM (peak) of a live process, in bytes. */
export function memoryOf(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') }
  } catch {
    return undefined
  }
}

/** `/proc/<pid>/io`: `write_bytes` is what the process sent towards the block device (page cache writes included, at the time they were dirtied). */
export function ioOf(pid: number): { writeBytes: number; wchar: number; readBytes: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/io`, 'utf8')
    const v = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN)
    return { writeBytes: v('write_bytes'), wchar: v('wchar'), readBytes: v('read_bytes') }
  } catch {
    return undefined
  }
}

export { waitUntil } from '../../test/helpers/wait.js'

/** CPU time (user + system) a live process has used so far, in milliseconds. */
export function cpuMsOf(pid: number): number | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces) start at state; utime and stime are 14 and 15.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS
  } catch {
    return undefined
  }
}

/** USER_HZ; 100 on every Linux this runs on. */
const CLOCK_TICKS = 100
