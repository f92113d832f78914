/**
 * `npm run bench [-- --quick] [-- --json <file>] [-- --only <name>[,<name>]]`
 *
 * Runs the benchmarks in bench/*.bench.ts one after another, each measuring Ferry and its baseline
 * in the same run on the same machine, prints each one's samples as it finishes and then one summary
 * table (`benchmark | ferry | baseline | ratio | target | pass`). Never part of `npm test`.
 * Before anything starts, every external command the selected benchmarks spawn is checked (and, as
 * root on Debian, installed with apt-get; lib/preflight.ts). Whatever a benchmark starts is stopped
 * and its temp dirs removed on every way out, including SIGINT/SIGTERM and crashes (lib/cleanup.ts).
 * Exit code: 0 when every benchmark ran (targets missed or not), 1 when one failed to run, 2 on bad
 * arguments or missing commands, 128 + n when stopped by signal n. See bench/README.md for what each
 * number means.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { parseCli } from '../common/src/cli-args.js'
import { environment, printDetail, table, type Result } from './lib/harness.js'
import { ferryCommand } from './lib/procs.js'
import { installExitGuards, isShuttingDown } from './lib/cleanup.js'
import { preflight, TOOLS } from './lib/preflight.js'
import type { Bench } from './lib/context.js'

const HELP = `usage: npm run bench -- [--quick] [--json <file>] [--only <name>[,<name>...]]

  --quick        fewer samples and smaller sizes (the whole run takes about three minutes)
  --json <file>  also write the results, samples and machine facts as JSON
  --only <names> run only these benchmarks: ingest, drain, backlog, ota, latency, soak,
                 scale-out

Each figure is a ratio against a baseline measured in the same run; see bench/README.md.`

const BENCHES: Record<string, () => Promise<Bench>> = {
  ingest: async () => (await import('./ingest.bench.js')).bench,
  drain: async () => (await import('./drain.bench.js')).bench,
  backlog: async () => (await import('./backlog.bench.js')).bench,
  ota: async () => (await import('./ota-download.bench.js')).bench,
  latency: async () => (await import('./latency.bench.js')).bench,
  soak: async () => (await import('./soak.bench.js')).bench,
  'scale-out': async () => (await import('./scale-out.bench.js')).bench,
}

async function main(argv: string[]): Promise<number> {
  const { values, help } = parseCli(argv, { quick: { type: 'boolean' }, json: { type: 'string' }, only: { type: 'string' } }, HELP, false)
  if (help) {
    process.stdout.write(`${HELP}\n`)
    return 0
  }
  const only = values.only ? values.only.split(',').map((x) => x.trim()).filter(Boolean) : Object.keys(BENCHES)
  const unknown = only.filter((n) => !(n in BENCHES))
  if (unknown.length) {
    process.stderr.write(`bench: unknown benchmark ${unknown.join(', ')}; choose from ${Object.keys(BENCHES).join(', ')}\n`)
    return 2
  }
  const quick = values.quick === true
  const selected: Array<[string, Bench]> = []
  for (const name of only) selected.push([name, await BENCHES[name]!()])
  const check = await preflight(selected.map(([name, b]) => ({ bench: name, tools: b.needs.map((n) => TOOLS[n]) })), {
    log: (m) => process.stderr.write(`bench: ${m}\n`),
  })
  if (!check.ok) {
    process.stderr.write(`${check.message}\n`)
    return 2
  }
  const env = { ...environment(), runtime: ferryCommand().runtime, quick }
  const started = Date.now()
  process.stdout.write(`Ferry benchmarks (${quick ? 'quick' : 'full'}) ${env.date}\n${env.cpu}, Node ${env.node}, Linux ${env.kernel}, load average ${env.loadavg.join(' ')}, ferry from ${env.runtime}\n\n`)
  if (env.runtime === 'tsx') process.stdout.write('note: no build in dist/; the gateway runs through tsx, which adds memory and start-up time (npm run build)\n\n')
  const results: Result[] = []
  const failures: Array<{ bench: string; error: string }> = []
  for (const [name, bench] of selected) {
    if (isShuttingDown()) break
    process.stdout.write(`${name}: ${bench.description}\n`)
    const t0 = Date.now()
    try {
      const rs = await bench.run({ quick, log: (m) => process.stderr.write(`  … ${m}\n`) })
      for (const r of rs) printDetail(r)
      results.push(...rs)
    } catch (err) {
      // Interrupted: the exit guard is stopping everything and sets the exit code.
      if (isShuttingDown()) return 1
      const e = err as Error
      failures.push({ bench: name, error: e.stack ?? e.message })
      process.stdout.write(`  FAILED to run: ${e.message}\n`)
    }
    process.stdout.write(`  (${((Date.now() - t0) / 1000).toFixed(1)} s)\n\n`)
  }
  process.stdout.write(`${table(results)}\n\nTotal ${((Date.now() - started) / 1000).toFixed(1)} s. Ratios are Ferry / baseline, measured in this run; see bench/README.md.\n`)
  if (values.json) {
    const file = resolve(values.json)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, JSON.stringify({ environment: { ...env, loadavgAfter: environment().loadavg, seconds: (Date.now() - started) / 1000 }, results, failures }, null, 2) + '\n')
    process.stdout.write(`Results written to ${file}\n`)
  }
  return failures.length ? 1 : 0
}

installExitGuards()
try {
  process.exitCode = await main(process.argv.slice(2))
} catch (err) {
  const e = err as Error & { code?: string }
  process.stderr.write(`bench: ${e.code === 'FERRY_ERR_USAGE' ? e.message : (e.stack ?? e.message)}\n`)
  process.exitCode = e.code === 'FERRY_ERR_USAGE' ? 2 : 1
}
