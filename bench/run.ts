/**
 * `npm run bench [-- --quick] [-- --json [<file>]] [-- --only <name>[,<name>]] [-- --cpus <n>]`
 *
 * Runs the benchmarks in bench/*.bench.ts one after another, each measuring Ferry and its baseline
 * in the same run on the same machine, prints each one's samples as it finishes and then one summary
 * table (`benchmark | ferry | baseline | ratio | target | pass`). Never part of `npm test`.
 * Before anything starts, every external command the selected benchmarks spawn is checked (and, as
 * root on Debian, installed with apt-get; lib/preflight.ts). Whatever a benchmark starts is stopped
 * and its temp dirs removed on every way out, including SIGINT/SIGTERM and crashes (lib/cleanup.ts).
 * A bare `--json` prints one JSON document to stdout and everything else to stderr; `--cpus N` pins
 * Ferry to N cores and the rest to the others (lib/pinning.ts). The work is in lib/runner.ts; this
 * file is the list of benchmarks and the help.
 * Exit code: 0 when every benchmark ran (targets missed or not), 1 when one failed to run, 2 on bad
 * arguments, missing commands or too few cores for --cpus, 128 + n when stopped by signal n. See
 * bench/README.md for what each number means.
 */
import { installExitGuards } from './lib/cleanup.js'
import { runBenchmarks } from './lib/runner.js'
import type { Bench } from './lib/context.js'

const BENCHES: Record<string, () => Promise<Bench>> = {
  ingest: async () => (await import('./ingest.bench.js')).bench,
  drain: async () => (await import('./drain.bench.js')).bench,
  backlog: async () => (await import('./backlog.bench.js')).bench,
  ota: async () => (await import('./ota-download.bench.js')).bench,
  latency: async () => (await import('./latency.bench.js')).bench,
  soak: async () => (await import('./soak.bench.js')).bench,
  'scale-out': async () => (await import('./scale-out.bench.js')).bench,
  restart: async () => (await import('./restart.bench.js')).bench,
}

// The names under --only come from BENCHES, so a new benchmark needs only its line there.
const HELP = `usage: npm run bench -- [--quick] [--json [<file>]] [--only <name>[,<name>...]] [--cpus <n>]

  --quick        fewer samples and smaller sizes (the whole run takes about three minutes)
  --json         print the results (every ratio), samples and machine facts as one JSON document
                 on stdout; the tables and progress go to stderr (use npm run -s, or npm's banner
                 comes first on stdout)
  --json <file>  write that JSON document to <file> instead, tables on stdout as usual
  --only <names> run only these benchmarks: ${Object.keys(BENCHES).join(', ')}
  --cpus <n>     Ferry (and the baselines standing in for it) on the first <n> cores, the broker,
                 the load and InfluxDB on the others (taskset); adds rates per Ferry core. Needs
                 more than <n> cores

Each figure is a ratio against a baseline measured in the same run; see bench/README.md.`

installExitGuards()
try {
  process.exitCode = await runBenchmarks(process.argv.slice(2), { benches: BENCHES, help: HELP })
} catch (err) {
  const e = err as Error
  process.stderr.write(`bench: ${e.stack ?? e.message}\n`)
  process.exitCode = 1
}
