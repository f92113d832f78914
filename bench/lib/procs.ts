/**
 * Child processes for the benchmarks: the `ferry` command (built, so RSS and I/O are the gateway's
 * own and not the TypeScript loader's), any other binary with its output captured, and readings from
 * `/proc/<pid>` (RSS, peak RSS, bytes written).
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitForPort } from '../../common/src/broker/broker.js'
import { SpawnError, start as startProcess, type Proc, type StartOptions } from '../../test/helpers/process.js'
import { isShuttingDown, trackChild, untrackChild } from './cleanup.js'
import type { Scope } from './harness.js'
import { pathOf, pinnedCommand, pinning, type Side } from './pinning.js'

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

export { SpawnError, type Proc }

/** Where the not-found message of a `SpawnError` points. */
const SPAWN_HINT = 'bench/run.ts checks for and installs what the benchmarks need first, see bench/README.md'

/**
 * test/helpers/process.ts `start` (output lines, `waitFor`, stopped when `scope` closes; a command
 * that cannot be started rejects `exited` and `waitFor` instead of crashing the runner), plus: every
 * process is known to cleanup.ts until it exits, so a signal or a crash of the runner still stops
 * it, and nothing new starts once the runner is shutting down.
 *
 * `cores`: with `--cpus`, which side's cores it runs on: `'load'` (the default: load generators,
 * clients, servers Ferry talks to) or `'ferry'` (a baseline that stands in for Ferry, so both sides
 * of a ratio get the same cores).
 */
export function start(scope: Scope, cmd: string, args: string[], opts: Omit<StartOptions, 'track' | 'hint'> & { cores?: Side } = {}): Proc {
  if (isShuttingDown()) throw new Error(`not starting ${cmd}: the bench runner is shutting down`)
  const { cores, ...rest } = opts
  // With --cpus, `taskset -c <cores> cmd args` (pinning.ts); the pid is still cmd's, taskset execs it.
  const run = pinnedCommand(pinning(), cores ?? 'load', cmd, args, pathOf(rest.env))
  return startProcess(scope, run.cmd, run.args, {
    ...rest,
    hint: SPAWN_HINT,
    track: (pid, command) => {
      trackChild(pid, command)
      return () => untrackChild(pid)
    },
  })
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

/**
 * `ferry <args>` with exactly the given environment (plus PATH and HOME) and the shipped Node options;
 * on Ferry's cores with `--cpus`.
 */
export function startFerry(scope: Scope, args: string[], env: Record<string, string>, opts: { nodeArgs?: string[] } = {}): Proc {
  const { argv } = ferryCommand()
  // FERRY_BENCH_NODE_ARGS adds Node options for profiling, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const extra = process.env.FERRY_BENCH_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []
  return start(scope, process.execPath, [...shippedNodeOptions(), ...extra, ...(opts.nodeArgs ?? []), ...argv, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    cores: 'ferry',
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
