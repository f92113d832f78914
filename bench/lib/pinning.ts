/**
 * `--cpus N`: Ferry on N cores of its own, everything else on the rest, as on a Pi where the gateway
 * gets one core. The ratio then says whether Ferry or the load side was the limit, and the rate per
 * Ferry core is comparable across machines with different core counts.
 *
 * - Ferry's side: every `ferry` process (procs.ts `startFerry`) and every baseline that stands in for
 *   Ferry (a benchmark starts it with `cores: 'ferry'`), so both sides of a ratio get the same cores.
 * - The load side: everything else procs.ts `start`s, and the runner itself (`pinSelf`), so what
 *   common/ code spawns without going through procs.ts (mosquitto, influxd) inherits it too.
 *
 * Both are set with `taskset` (util-linux), which sets the affinity and then execs the command, so
 * the pid (and its /proc readings) stays the command's own.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { delimiter } from 'node:path'
import { findTool, TOOLS } from './preflight.js'

const TASKSET = TOOLS.taskset

/** Which cores a process runs on. */
export type Side = 'ferry' | 'load'

export interface Pinning {
  /** `--cpus N` */
  cpus: number
  /** CPU numbers for Ferry (the first N this process may use) and for everything else (the rest). */
  ferry: number[]
  load: number[]
}

/** Parses a kernel CPU list such as `0-3,6,8-9` (Cpus_allowed_list, taskset -c). */
export function parseCpuList(text: string): number[] {
  const out: number[] = []
  for (const part of text.trim().split(',')) {
    if (!part) continue
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (!m) throw new Error(`cannot read CPU list "${text}"`)
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])]
    for (let c = a; c <= b; c++) out.push(c)
  }
  return out
}

/** The inverse: `[0,1,2,5]` → `0-2,5`. */
export function formatCpuList(cpus: number[]): string {
  const s = [...new Set(cpus)].sort((a, b) => a - b)
  const parts: string[] = []
  for (let i = 0; i < s.length; ) {
    let j = i
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++
    parts.push(j === i ? String(s[i]) : `${s[i]}-${s[j]}`)
    i = j + 1
  }
  return parts.join(',')
}

/**
 * The CPUs this process may run on. Read from the kernel, not os.cpus(): a container or cgroup (or an
 * outer taskset) may allow fewer than the machine has, and only those can be given out.
 */
export function allowedCpus(status?: string): number[] {
  const text = status ?? readFileSync('/proc/self/status', 'utf8')
  const m = /^Cpus_allowed_list:\s*(\S+)/m.exec(text)
  if (!m) throw new Error('no Cpus_allowed_list in /proc/self/status')
  return parseCpuList(m[1]!)
}

/** Splits `allowed` into N cores for Ferry and the rest for the load, or says why it cannot. */
export function planPinning(cpus: number, allowed: number[]): { ok: true; pinning: Pinning } | { ok: false; message: string } {
  if (allowed.length <= cpus) {
    return {
      ok: false,
      message: `bench: --cpus ${cpus} needs more than ${cpus} CPU${cpus === 1 ? '' : 's'} (${cpus} for Ferry and at least one for the broker and the load), but this process may use ${allowed.length} (${formatCpuList(allowed)}). Nothing was started.`,
    }
  }
  return { ok: true, pinning: { cpus, ferry: allowed.slice(0, cpus), load: allowed.slice(cpus) } }
}

/** `taskset -c <cores>` for a process on `side`. */
export function tasksetArgs(p: Pinning, side: Side): string[] {
  return ['-c', formatCpuList(side === 'ferry' ? p.ferry : p.load)]
}

/**
 * How procs.ts starts `cmd args` under `p`: `taskset -c <cores> cmd args`. A command that cannot be
 * found on `pathVar` is left unwrapped, so spawning it still fails with ENOENT and the usual message
 * instead of taskset's "failed to execute" exit.
 */
export function pinnedCommand(p: Pinning | undefined, side: Side, cmd: string, args: string[], pathVar = process.env.PATH ?? ''): { cmd: string; args: string[] } {
  if (!p) return { cmd, args }
  const taskset = findTool(TASKSET, pathVar)
  const found = cmd.includes('/') ? cmd : findTool({ command: cmd }, pathVar)
  if (!taskset || !found) return { cmd, args }
  return { cmd: taskset, args: [...tasksetArgs(p, side), cmd, ...args] }
}

let current: Pinning | undefined

/** Set once by the runner for `--cpus N`; procs.ts reads it for every process it starts. */
export function setPinning(p: Pinning | undefined): void {
  current = p
}

/** The pinning in force (undefined without `--cpus`). */
export function pinning(): Pinning | undefined {
  return current
}

/**
 * Moves every thread of this process onto the load CPUs. Children inherit the affinity, so the broker
 * and influxd (spawned by common/ code, not through procs.ts) run there too, and so does the
 * runner's own polling of the buffer. Throws when taskset fails.
 */
export function pinSelf(p: Pinning, pid = process.pid, pathVar = process.env.PATH ?? ''): void {
  const taskset = findTool(TASKSET, pathVar) ?? 'taskset'
  // -a: every thread, not only the main one (libuv's and V8's threads already exist).
  const r = spawnSync(taskset, ['-a', '-p', ...tasksetArgs(p, 'load'), String(pid)], { encoding: 'utf8' })
  if (r.error || r.status !== 0) throw new Error(`taskset could not pin the bench runner: ${r.error?.message ?? r.stderr.trim()}`)
}

/** One line for the output and the JSON environment. */
export function describePinning(p: Pinning): string {
  const n = (xs: number[]) => `${xs.length === 1 ? 'CPU' : 'CPUs'} ${formatCpuList(xs)}`
  return `pinned with taskset: Ferry and the baselines standing in for it on ${n(p.ferry)}; broker, load, InfluxDB and the runner on ${n(p.load)}`
}

/** PATH as seen by a process started with `env` (procs.ts passes the child's own environment). */
export function pathOf(env: NodeJS.ProcessEnv | undefined): string {
  return env?.PATH ?? process.env.PATH ?? ['/usr/local/bin', '/usr/bin', '/bin'].join(delimiter)
}
