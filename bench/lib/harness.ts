/**
 * The bench harness: a teardown scope that the test helpers accept in place of tap's `t`, sample
 * statistics, the result shape written by `--json`, and the table printer.
 */
import { cpus, loadavg, release } from 'node:os'
import { trackScope, untrackScope, type Closable } from './cleanup.js'

/**
 * Collects cleanups the way tap's `t.teardown` does, and runs them in reverse order on `close()`.
 * A scope with cleanups pending is known to cleanup.ts, so a signal or an unexpected error closes it
 * too (bench/run.ts installs those guards).
 */
export class Scope implements Closable {
  private fns: Array<() => unknown> = []
  private closing: Promise<void> | undefined

  teardown(fn: () => unknown): void {
    this.fns.push(fn)
    trackScope(this)
  }

  /** Runs the cleanups, newest first; a second call while one is running waits for the same run. */
  close(): Promise<void> {
    if (this.closing) return this.closing
    const run = async () => {
      for (let fn = this.fns.pop(); fn; fn = this.fns.pop()) {
        try {
          await fn()
        } catch (err) {
          process.stderr.write(`bench: cleanup failed: ${(err as Error).message}\n`)
        }
      }
      untrackScope(this)
    }
    const p = run().finally(() => {
      if (this.closing === p) this.closing = undefined
    })
    this.closing = p
    return p
  }

  closeSync(): void {
    for (let fn = this.fns.pop(); fn; fn = this.fns.pop()) {
      try {
        const r = fn()
        if (r instanceof Promise) r.catch(() => {})
      } catch {
        // best effort on the way out
      }
    }
    untrackScope(this)
  }
}

/** Runs `fn` with a fresh scope and always cleans it up (processes, ports, temp dirs). */
export async function withScope<T>(fn: (s: Scope) => Promise<T>): Promise<T> {
  const s = new Scope()
  try {
    return await fn(s)
  } finally {
    await s.close()
  }
}

/** Samples of one quantity and their summary. */
export interface Measure {
  samples: number[]
  median: number
  min: number
  max: number
  /** Half the range as a percentage of the median: the ± a reader should allow. */
  spreadPct: number
}

export function measure(samples: number[]): Measure {
  const s = [...samples].sort((a, b) => a - b)
  const n = s.length
  const median = n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2
  const min = s[0] ?? NaN
  const max = s[n - 1] ?? NaN
  return { samples, median, min, max, spreadPct: median ? ((max - min) / 2 / median) * 100 : 0 }
}

/** The p-th percentile (0..100) by nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN
  const s = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * s.length)
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!
}

/** A target on the ratio (ferry / baseline) or on Ferry's own figure. */
export interface Target {
  of: 'ratio' | 'ferry'
  op: '>=' | '<='
  value: number
}

/** Ferry's own CPU time over a benchmark's timed window, where the benchmark measures it. */
export interface CpuUse {
  /** µs of CPU (user + system) per unit of work, median over the samples. */
  us: number
  /** The unit of work, e.g. `message`, `reading`. */
  per: string
  /** CPU seconds per second of the timed window (1 = one core busy all the time), median over the samples. */
  cores: number
}

/** With `--cpus N`: the rates divided by Ferry's N cores (both sides of the ratio ran on them). */
export interface PerCore {
  /** N */
  cores: number
  ferry: number
  baseline?: number
  /** `cpu.cores / N`: how busy Ferry kept its cores (near 1: Ferry was the limit). */
  busy?: number
}

/** One line of the summary table and of the JSON file. */
export interface Result {
  /** Stable id, e.g. `ingest.normal`; `--only` matches its prefix. */
  id: string
  title: string
  unit: string
  ferry: Measure
  baseline?: Measure & { name: string }
  /** ferry.median / baseline.median. */
  ratio?: number
  targets: Target[]
  /** Undefined when there is no target (information only). */
  pass?: boolean
  cpu?: CpuUse
  /** Set by the runner for rates (units ending in /s) when run with `--cpus`. */
  perCore?: PerCore
  notes: string[]
}

/** `r` with its per-core rates under `--cpus cores`; unchanged when it is not a rate. */
export function withPerCore(r: Result, cores: number): Result {
  if (!r.unit.endsWith('/s')) return r
  return {
    ...r,
    perCore: {
      cores,
      ferry: r.ferry.median / cores,
      ...(r.baseline ? { baseline: r.baseline.median / cores } : {}),
      ...(r.cpu ? { busy: r.cpu.cores / cores } : {}),
    },
  }
}

export function result(r: Omit<Result, 'ratio' | 'pass' | 'notes' | 'targets' | 'perCore'> & { targets?: Target[]; notes?: string[] }): Result {
  const ratio = r.baseline ? r.ferry.median / r.baseline.median : undefined
  const targets = r.targets ?? []
  const holds = (t: Target) => {
    const v = t.of === 'ratio' ? ratio : r.ferry.median
    if (v === undefined || !Number.isFinite(v)) return false
    return t.op === '>=' ? v >= t.value : v <= t.value
  }
  return { ...r, targets, notes: r.notes ?? [], ...(ratio !== undefined ? { ratio } : {}), ...(targets.length ? { pass: targets.every(holds) } : {}) }
}

/** Facts about the machine and the moment, recorded next to the numbers. */
export function environment() {
  const c = cpus()
  return {
    date: new Date().toISOString(),
    node: process.version,
    kernel: release(),
    cpu: `${c.length} × ${c[0]?.model ?? 'unknown'}`,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
  }
}

export function fmt(v: number | undefined, unit = ''): string {
  if (v === undefined || !Number.isFinite(v)) return '–'
  const abs = Math.abs(v)
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2
  return `${v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 })}${unit ? ` ${unit}` : ''}`
}

export function targetText(t: Target, unit: string): string {
  return `${t.of === 'ratio' ? '' : 'ferry '}${t.op === '>=' ? '≥' : '≤'} ${t.value}${t.of === 'ratio' ? '×' : ` ${unit}`}`
}

/** Prints one benchmark's samples as it finishes, so a long run shows progress. */
export function printDetail(r: Result, out: (s: string) => void = (s) => process.stdout.write(s)): void {
  const line = (label: string, m: Measure) =>
    `    ${label.padEnd(30)} median ${fmt(m.median, r.unit).padStart(16)}  ±${fmt(m.spreadPct)}%  samples ${m.samples.map((x) => fmt(x)).join(', ')}\n`
  out(`  ${r.id}: ${r.title}\n`)
  out(line('ferry', r.ferry))
  if (r.baseline) out(line(r.baseline.name, r.baseline))
  if (r.ratio !== undefined || r.targets.length) {
    out(`    ratio ${ratioText(r)}${r.targets.length ? `  target ${r.targets.map((t) => targetText(t, r.unit)).join(' and ')}  ${r.pass ? 'PASS' : 'MISS'}` : ''}\n`)
  }
  if (r.cpu) out(`    ferry CPU ${fmt(r.cpu.us)} µs per ${r.cpu.per}, ${fmt(r.cpu.cores)} core${r.cpu.cores === 1 ? '' : 's'} busy\n`)
  if (r.perCore) out(`    per Ferry core (${r.perCore.cores}): ${perCoreText(r)}${r.baseline && r.perCore.baseline !== undefined ? `; ${r.baseline.name} ${fmt(r.perCore.baseline, r.unit)}` : ''}\n`)
  for (const n of r.notes) out(`    note: ${n}\n`)
}

/** `0.45×`, or `–` when there is no ratio or it could not be computed (a failed measurement). */
function ratioText(r: Result): string {
  return r.ratio === undefined || !Number.isFinite(r.ratio) ? '–' : `${fmt(r.ratio)}×`
}

function perCoreText(r: Result): string {
  const p = r.perCore!
  return `${fmt(p.ferry, r.unit)}${p.busy === undefined ? '' : ` (${Math.round(p.busy * 100)}% busy)`}`
}

function cpuText(r: Result): string {
  return r.cpu ? `${fmt(r.cpu.us)} µs/${r.cpu.per}` : '–'
}

/**
 * The summary: `benchmark | ferry | baseline | ratio | target | pass`, then `ferry CPU` when a result
 * measured it (next to the ratio it explains) and `per Ferry core` under `--cpus`.
 */
export function table(results: Result[]): string {
  const withCpu = results.some((r) => r.cpu)
  const withPer = results.some((r) => r.perCore)
  const head = ['benchmark', 'ferry', 'baseline', 'ratio', 'target', 'pass', ...(withCpu ? ['ferry CPU'] : []), ...(withPer ? ['per Ferry core'] : [])]
  const rows = results.map((r) => [
    r.id,
    fmt(r.ferry.median, r.unit),
    r.baseline ? `${fmt(r.baseline.median, r.unit)} (${r.baseline.name})` : '–',
    ratioText(r),
    r.targets.length ? r.targets.map((t) => targetText(t, r.unit)).join(', ') : '–',
    r.pass === undefined ? '–' : r.pass ? 'yes' : 'NO',
    ...(withCpu ? [cpuText(r)] : []),
    ...(withPer ? [r.perCore ? perCoreText(r) : '–'] : []),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const fmtRow = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [fmtRow(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(fmtRow)].join('\n')
}
