/**
 * Child processes for the benchmarks: the `ferry` command (built, so RSS and I/O are the gateway's
 * own and not the TypeScript loader's), any other binary with its output captured, and readings from
 * `/proc/<pid>` (RSS, peak RSS, bytes written).
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
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

import { start, type Proc } from '../../test/helpers/process.js'

export { start, type Proc }

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
