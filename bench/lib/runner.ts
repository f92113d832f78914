/**
 * What `npm run bench` does, given the list of benchmarks (bench/run.ts owns that list, its help
 * text and the exit guards): arguments, `--cpus` checks and pinning, the preflight, running the
 * selected benchmarks in order, the tables, and the JSON document.
 *
 * Where the output goes: progress always to stderr; the samples and tables to stdout, except with a
 * bare `--json` (or `--json -`), where they go to stderr too and stdout carries exactly one JSON
 * document, so `… --json > results.json` or `| jq` works.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { FerryError } from '../../common/src/errors.js'
import { parseBenchArgs } from './args.js'
import { environment, printDetail, table, targetText, withPerCore, type Result } from './harness.js'
import { ferryCommand } from './procs.js'
import { isShuttingDown } from './cleanup.js'
import { allowedCpus, describePinning, formatCpuList, pinSelf, planPinning, setPinning, type Pinning } from './pinning.js'
import { preflight as realPreflight, TOOLS, type Needs, type PreflightOptions, type PreflightResult } from './preflight.js'
import type { Bench } from './context.js'

export interface RunnerOptions {
  benches: Record<string, () => Promise<Bench>>
  help: string
  /** Default: process.stdout / process.stderr. */
  stdout?: (s: string) => void
  stderr?: (s: string) => void
  /** The CPUs that may be given out (default: this process's, from /proc/self/status). */
  allowedCpus?: () => number[]
  /** Moves the runner onto the load CPUs (default pinning.ts `pinSelf`). */
  pinSelf?: (p: Pinning) => void
  preflight?: (needs: Needs, opts: PreflightOptions) => Promise<PreflightResult>
}

/** One result as the JSON document has it: every key present, `null` where there is nothing. */
function jsonResult(r: Result) {
  return {
    id: r.id,
    title: r.title,
    unit: r.unit,
    ferry: r.ferry,
    baseline: r.baseline ?? null,
    // NaN (a failed measurement) would otherwise become null silently in some places and not others.
    ratio: r.ratio !== undefined && Number.isFinite(r.ratio) ? r.ratio : null,
    target: r.targets.length ? r.targets.map((t) => targetText(t, r.unit)).join(' and ') : null,
    targets: r.targets,
    pass: r.pass ?? null,
    cpu: r.cpu ?? null,
    perCore: r.perCore ?? null,
    notes: r.notes,
  }
}

/**
 * `npm run` (npm 7 and later) prints a `> name@version script` banner on stdout before the script
 * starts, unless its log level is silent (`npm run -s`); nothing the runner does can take it back.
 */
export function npmBannerOnStdout(env: NodeJS.ProcessEnv): boolean {
  return env.npm_lifecycle_event !== undefined && env.npm_config_loglevel !== 'silent'
}

/** Runs the benchmarks; resolves with the exit code (0 ran, 1 one failed to run, 2 bad arguments or missing commands). */
export async function runBenchmarks(argv: string[], opts: RunnerOptions): Promise<number> {
  const stdout = opts.stdout ?? ((s: string) => void process.stdout.write(s))
  const stderr = opts.stderr ?? ((s: string) => void process.stderr.write(s))
  let args
  try {
    args = parseBenchArgs(argv, opts.help)
  } catch (err) {
    if (err instanceof FerryError && err.code === 'FERRY_ERR_USAGE') {
      stderr(`bench: ${err.message}\n`)
      return 2
    }
    throw err
  }
  if (args.help) {
    stdout(`${opts.help}\n`)
    return 0
  }
  const names = args.only ?? Object.keys(opts.benches)
  const unknown = names.filter((n) => !(n in opts.benches))
  if (unknown.length) {
    stderr(`bench: unknown benchmark ${unknown.join(', ')}; choose from ${Object.keys(opts.benches).join(', ')}\n`)
    return 2
  }

  let pin: Pinning | undefined
  if (args.cpus !== undefined) {
    const plan = planPinning(args.cpus, (opts.allowedCpus ?? allowedCpus)())
    if (!plan.ok) {
      stderr(`${plan.message}\n`)
      return 2
    }
    pin = plan.pinning
  }

  const selected: Array<[string, Bench]> = []
  for (const name of names) selected.push([name, await opts.benches[name]!()])
  const needs: Needs = selected.map(([name, b]) => ({ bench: name, tools: b.needs.map((n) => TOOLS[n]) }))
  if (pin) needs.push({ bench: `--cpus ${pin.cpus}`, tools: [TOOLS.taskset] })
  const check = await (opts.preflight ?? realPreflight)(needs, { log: (m) => stderr(`bench: ${m}\n`) })
  if (!check.ok) {
    stderr(`${check.message}\n`)
    return 2
  }

  // With a bare --json, stdout is the JSON document's alone; everything a person reads goes to stderr.
  const out = args.json?.to === 'stdout' ? stderr : stdout
  if (args.json?.to === 'stdout' && npmBannerOnStdout(process.env)) {
    stderr('bench: note: npm printed its "> ferry@… bench" banner on stdout ahead of the JSON; `npm run -s bench -- …` (or `--json <file>`) keeps stdout to the JSON alone\n')
  }
  if (pin) {
    try {
      ;(opts.pinSelf ?? pinSelf)(pin)
    } catch (err) {
      stderr(`bench: ${(err as Error).message}. Nothing was started.\n`)
      return 2
    }
    setPinning(pin)
  }
  try {
    const quick = args.quick
    const env = {
      ...environment(),
      runtime: ferryCommand().runtime,
      quick,
      pinning: pin ? { cpus: pin.cpus, ferryCpus: formatCpuList(pin.ferry), loadCpus: formatCpuList(pin.load), description: describePinning(pin) } : null,
    }
    const started = Date.now()
    out(`Ferry benchmarks (${quick ? 'quick' : 'full'}) ${env.date}\n${env.cpu}, Node ${env.node}, Linux ${env.kernel}, load average ${env.loadavg.join(' ')}, ferry from ${env.runtime}\n`)
    if (pin) out(`${describePinning(pin)}\n`)
    out('\n')
    if (env.runtime === 'tsx') out('note: no build in dist/; the gateway runs through tsx, which adds memory and start-up time (npm run build)\n\n')
    const results: Result[] = []
    const failures: Array<{ bench: string; error: string }> = []
    for (const [name, bench] of selected) {
      if (isShuttingDown()) break
      out(`${name}: ${bench.description}\n`)
      const t0 = Date.now()
      try {
        let rs = await bench.run({ quick, log: (m) => stderr(`  … ${m}\n`) })
        if (pin) {
          const where = `--cpus ${pin.cpus}: on CPU ${formatCpuList(pin.ferry)} ${bench.onFerryCores ?? 'the ferry processes'}; everything else on CPU ${formatCpuList(pin.load)}`
          rs = rs.map((r) => ({ ...withPerCore(r, pin.cpus), notes: [...r.notes, where] }))
        }
        for (const r of rs) printDetail(r, out)
        results.push(...rs)
      } catch (err) {
        // Interrupted: the exit guard is stopping everything and sets the exit code.
        if (isShuttingDown()) return 1
        const e = err as Error
        failures.push({ bench: name, error: e.stack ?? e.message })
        out(`  FAILED to run: ${e.message}\n`)
      }
      out(`  (${((Date.now() - t0) / 1000).toFixed(1)} s)\n\n`)
    }
    out(`${table(results)}\n\nTotal ${((Date.now() - started) / 1000).toFixed(1)} s. Ratios are Ferry / baseline, measured in this run; see bench/README.md.\n`)
    if (args.json) {
      const doc = JSON.stringify({ environment: { ...env, loadavgAfter: environment().loadavg, seconds: (Date.now() - started) / 1000 }, results: results.map(jsonResult), failures }, null, 2) + '\n'
      if (args.json.to === 'stdout') stdout(doc)
      else {
        const file = resolve(args.json.file)
        mkdirSync(dirname(file), { recursive: true })
        writeFileSync(file, doc)
        out(`Results written to ${file}\n`)
      }
    }
    return failures.length ? 1 : 0
  } finally {
    setPinning(undefined)
  }
}
