// The bench runner's options: a bare `--json` prints one parseable JSON document with every ratio
// on stdout (the tables go to stderr), `--cpus N` refuses too few cores or a missing taskset before
// starting anything, and pins each kind of process where it belongs. Runs no real benchmark: the
// runner is given stand-in benchmarks that return fixed results or start `grep`/`sleep`.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../../test/helpers/tmp.js'
import { bareJsonToStdout, parseBenchArgs } from './args.js'
import { measure, result, withScope, type Result } from './harness.js'
import { allowedCpus, formatCpuList, parseCpuList, pinnedCommand, pinSelf, planPinning, type Pinning } from './pinning.js'
import { preflight, TOOLS, type Needs } from './preflight.js'
import { runBenchCli } from './run-cli.js'
import { start, startFerry } from './procs.js'
import { npmBannerOnStdout, runBenchmarks, type RunnerOptions } from './runner.js'
import type { Bench } from './context.js'

const HELP = 'usage: test'

/** Results as a benchmark returns them: with a ratio, without a baseline, and with a failed (NaN) baseline. */
function fixedResults(prefix: string): Result[] {
  return [
    result({ id: `${prefix}.rate`, title: 'a rate', unit: 'msg/s', ferry: measure([90, 110]), baseline: { name: 'base', ...measure([200, 200]) }, targets: [{ of: 'ratio', op: '>=', value: 0.9 }], cpu: { us: 13, per: 'message', cores: 0.8 } }),
    result({ id: `${prefix}.mem`, title: 'memory', unit: 'MB', ferry: measure([50]), baseline: { name: 'small', ...measure([40]) }, targets: [{ of: 'ratio', op: '<=', value: 1.1 }] }),
    result({ id: `${prefix}.info`, title: 'no baseline', unit: 'ms', ferry: measure([3]) }),
    result({ id: `${prefix}.nan`, title: 'baseline failed', unit: 'rows/s', ferry: measure([5]), baseline: { name: 'none', ...measure([]) } }),
  ]
}

function fakeBench(name: string, run: Bench['run'] = async () => fixedResults(name)): () => Promise<Bench> {
  return async () => ({ name, description: `stand-in ${name}`, needs: [], run })
}

/** Runs the runner in this process with captured stdout/stderr; never pins this process. */
async function runCaptured(argv: string[], opts: Partial<RunnerOptions> = {}) {
  let stdout = ''
  let stderr = ''
  const pinned: Pinning[] = []
  const code = await runBenchmarks(argv, {
    benches: { a: fakeBench('a'), b: fakeBench('b') },
    help: HELP,
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
    allowedCpus: () => [0, 1],
    pinSelf: (p) => void pinned.push(p),
    ...opts,
  })
  return { code, stdout, stderr, pinned }
}

t.test('arguments: --json with and without a file, --cpus', async (t) => {
  t.same(bareJsonToStdout(['--quick', '--json']), ['--quick', '--json=-'], 'last')
  t.same(bareJsonToStdout(['--json', '--only', 'ingest']), ['--json=-', '--only', 'ingest'], 'followed by an option')
  t.same(bareJsonToStdout(['--json', 'out.json']), ['--json', 'out.json'], 'with a file')
  t.same(parseBenchArgs(['--quick', '--json'], HELP), { help: false, quick: true, json: { to: 'stdout' } })
  t.same(parseBenchArgs(['--json', '-', '--only', 'a, b'], HELP), { help: false, quick: false, json: { to: 'stdout' }, only: ['a', 'b'] })
  t.same(parseBenchArgs(['--json', 'r/x.json'], HELP).json, { to: 'file', file: 'r/x.json' })
  t.same(parseBenchArgs(['--json=r/x.json', '--cpus', '2'], HELP), { help: false, quick: false, json: { to: 'file', file: 'r/x.json' }, cpus: 2 })
  for (const bad of ['0', '-1', '1.5', 'two', '']) t.throws(() => parseBenchArgs(['--cpus', bad], HELP), { code: 'FERRY_ERR_USAGE' }, `--cpus ${bad}`)
  t.throws(() => parseBenchArgs(['--json='], HELP), { code: 'FERRY_ERR_USAGE' })
  t.throws(() => parseBenchArgs(['--jsn'], HELP), { code: 'FERRY_ERR_USAGE' }, 'still strict')
})

t.test('npm run puts its banner on stdout unless -s: the runner knows when to say so', async (t) => {
  t.equal(npmBannerOnStdout({ npm_lifecycle_event: 'bench' }), true, 'npm run bench')
  t.equal(npmBannerOnStdout({ npm_lifecycle_event: 'bench', npm_config_loglevel: 'silent' }), false, 'npm run -s bench')
  t.equal(npmBannerOnStdout({}), false, 'node bench/run.ts')
})

t.test('a bare --json prints exactly one JSON document with every ratio on stdout, the tables on stderr', async (t) => {
  const r = await runCaptured(['--quick', '--json'])
  t.equal(r.code, 0, r.code === 0 ? 'exit 0' : r.stderr)
  const doc = JSON.parse(r.stdout) as { environment: Record<string, unknown>; results: Array<Record<string, unknown>>; failures: unknown[] }
  const expected = [...fixedResults('a'), ...fixedResults('b')]
  t.same(doc.results.map((x) => x.id), expected.map((x) => x.id), 'every result')
  for (const [i, x] of doc.results.entries()) {
    for (const k of ['id', 'ferry', 'baseline', 'ratio', 'target', 'pass', 'notes']) t.ok(k in x, `${String(x.id)} has ${k}`)
    const e = expected[i]!
    t.equal(x.ratio, e.ratio !== undefined && Number.isFinite(e.ratio) ? e.ratio : null, `${e.id} ratio`)
  }
  t.equal(doc.results[0]!.ratio, 0.5)
  t.equal(doc.results[0]!.target, '≥ 0.9×')
  t.equal(doc.results[0]!.pass, false)
  t.same(doc.results[0]!.cpu, { us: 13, per: 'message', cores: 0.8 })
  t.equal(doc.results[2]!.ratio, null, 'no baseline: null, not left out')
  t.equal(doc.environment.quick, true)
  t.equal(doc.environment.pinning, null)
  t.same(doc.failures, [])
  t.match(r.stderr, /\| benchmark +\| ferry +\| baseline +\| ratio +\| target +\| pass +\| ferry CPU +\|/, 'the table went to stderr')
  t.match(r.stderr, /\| a\.rate +\| 100 msg\/s +\| 200 msg\/s \(base\) +\| 0\.5× +\| ≥ 0\.9× +\| NO +\| 13 µs\/message +\|/)
  t.match(r.stderr, /Ferry benchmarks \(quick\)/)
})

t.test('a benchmark that fails to run is in the document\'s failures, and the exit code is 1', async (t) => {
  const r = await runCaptured(['--json', '--only', 'a,b'], { benches: { a: fakeBench('a'), b: fakeBench('b', async () => Promise.reject(new Error('boom'))) } })
  t.equal(r.code, 1)
  const doc = JSON.parse(r.stdout) as { results: unknown[]; failures: Array<{ bench: string; error: string }> }
  t.equal(doc.results.length, 4)
  t.equal(doc.failures[0]!.bench, 'b')
  t.match(doc.failures[0]!.error, /boom/)
})

t.test('--json <file> writes the file and keeps the tables on stdout', async (t) => {
  const file = join(tempDir(t), 'sub', 'run.json')
  const r = await runCaptured(['--json', file, '--only', 'a'])
  t.equal(r.code, 0, r.code === 0 ? 'exit 0' : r.stderr)
  t.match(r.stdout, /\| a\.rate /)
  t.match(r.stdout, new RegExp(`Results written to ${file}`))
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { results: Array<{ id: string; ratio: number | null }> }
  t.same(doc.results.map((x) => x.ratio), [0.5, 1.25, null, null])
})

t.test('--cpus on too few cores is refused before anything runs (exit 2)', async (t) => {
  let ran = false
  let checked = false
  const r = await runCaptured(['--cpus', '2', '--json'], {
    benches: { a: fakeBench('a', async () => ((ran = true), [])) },
    preflight: async () => ((checked = true), { ok: true, installed: [] }),
  })
  t.equal(r.code, 2)
  t.match(r.stderr, /bench: --cpus 2 needs more than 2 CPUs \(2 for Ferry and at least one for the broker and the load\), but this process may use 2 \(0-1\)\. Nothing was started\./)
  t.equal(r.stdout, '')
  t.notOk(ran, 'no benchmark ran')
  t.notOk(checked, 'not even the preflight (it may install packages)')
  t.same(r.pinned, [])
})

t.test('--cpus without taskset is refused by the preflight, naming util-linux (exit 2)', async (t) => {
  let needs: Needs = []
  const r = await runCaptured(['--cpus', '1', '--only', 'a'], {
    preflight: async (n, o) => {
      needs = n
      // The real check, with taskset nowhere to be found.
      return preflight(n.map((x) => ({ ...x, tools: x.tools.map((tool) => (tool === TOOLS.taskset ? { ...tool, alsoAt: [] } : tool)) })), { ...o, env: { PATH: tempDir(t) }, isRoot: false, sbinDirs: [] })
    },
  })
  t.equal(r.code, 2)
  t.same(needs.at(-1), { bench: '--cpus 1', tools: [TOOLS.taskset] })
  t.match(r.stderr, /bench: cannot run --cpus 1: this command is missing:\n {2}taskset {2}Debian package util-linux: pins processes to cores for --cpus \(--cpus 1\)/)
  t.same(r.pinned, [])
})

t.test('CPU lists and the split between Ferry and the rest', async (t) => {
  t.same(parseCpuList('0-3,6,8-9'), [0, 1, 2, 3, 6, 8, 9])
  t.equal(formatCpuList([9, 0, 1, 2, 6, 8]), '0-2,6,8-9')
  t.same(allowedCpus('Name:\tx\nCpus_allowed:\t3\nCpus_allowed_list:\t2-3,5\n'), [2, 3, 5])
  t.same(planPinning(1, [2, 3, 5]), { ok: true, pinning: { cpus: 1, ferry: [2], load: [3, 5] } })
  t.same(planPinning(2, [0, 1, 2, 3]), { ok: true, pinning: { cpus: 2, ferry: [0, 1], load: [2, 3] } })
  t.equal(planPinning(2, [0, 1]).ok, false)
  t.equal(planPinning(1, [0]).ok, false)
})

t.test('the taskset command line for each kind of process', async (t) => {
  const p: Pinning = { cpus: 2, ferry: [0, 1], load: [2, 3, 5] }
  const bin = tempDir(t)
  const PATH = `${bin}:/usr/bin:/bin`
  const taskset = pinnedCommand(p, 'ferry', 'sh', [], PATH).cmd
  t.match(taskset, /\/taskset$/)
  t.same(pinnedCommand(p, 'ferry', '/usr/bin/node', ['bin/ferry.js', 'gateway'], PATH), { cmd: taskset, args: ['-c', '0-1', '/usr/bin/node', 'bin/ferry.js', 'gateway'] }, 'ferry, and a baseline standing in for it')
  t.same(pinnedCommand(p, 'load', 'sh', ['-c', 'exec mosquitto_pub'], PATH), { cmd: taskset, args: ['-c', '2-3,5', 'sh', '-c', 'exec mosquitto_pub'] }, 'the load')
  t.same(pinnedCommand(undefined, 'ferry', 'sh', ['-c', 'x'], PATH), { cmd: 'sh', args: ['-c', 'x'] }, 'no --cpus: unchanged')
  t.same(pinnedCommand(p, 'load', 'ferry-no-such-command', ['x'], PATH), { cmd: 'ferry-no-such-command', args: ['x'] }, 'not found: left to fail with ENOENT as before')
})

t.test('--cpus pins for real: Ferry and its stand-ins on Ferry\'s core, the rest on the others, the runner moved', { skip: allowedCpus().length < 2 ? 'needs 2 CPUs' : false }, async (t) => {
  const cpus = allowedCpus()
  const ferryCpus = formatCpuList(cpus.slice(0, 1))
  const loadCpus = formatCpuList(cpus.slice(1))
  const allowedOf = async (side: 'ferry' | 'load' | undefined) =>
    withScope(async (s) => {
      const p = start(s, 'grep', ['Cpus_allowed_list', '/proc/self/status'], side ? { cores: side } : {})
      await p.exited
      return /Cpus_allowed_list:\s*(\S+)/.exec(p.lines.join('\n'))?.[1]
    })
  let seen: Record<string, unknown> = {}
  const r = await runCaptured(['--cpus', '1', '--json', '--only', 'p'], {
    allowedCpus: () => cpus,
    benches: {
      p: fakeBench('p', async () => {
        // startFerry's command line (it exits at once on --help; the line is what matters here).
        const ferryCmd = await withScope(async (s) => startFerry(s, ['--help'], {}).command)
        seen = { ferry: await allowedOf('ferry'), load: await allowedOf('load'), unspecified: await allowedOf(undefined), ferryCmd }
        return fixedResults('p')
      }),
    },
  })
  t.equal(r.code, 0, r.code === 0 ? 'exit 0' : r.stderr)
  t.equal(r.pinned.length, 1, 'the runner asked to move itself')
  t.same(r.pinned[0], { cpus: 1, ferry: cpus.slice(0, 1), load: cpus.slice(1) })
  t.equal(seen.ferry, ferryCpus, 'a baseline started with cores: ferry')
  t.equal(seen.load, loadCpus, 'the load')
  t.equal(seen.unspecified, loadCpus, 'the default is the load side')
  t.match(seen.ferryCmd, new RegExp(`taskset -c ${ferryCpus} ${process.execPath} `), 'startFerry runs under taskset on Ferry\'s core')
  const doc = JSON.parse(r.stdout) as { environment: { pinning: Record<string, unknown> }; results: Array<{ id: string; perCore: Record<string, number> | null; notes: string[] }> }
  t.same(doc.environment.pinning, { cpus: 1, ferryCpus, loadCpus, description: `pinned with taskset: Ferry and the baselines standing in for it on CPU ${ferryCpus}; broker, load, InfluxDB and the runner on CPU${cpus.length > 2 ? 's' : ''} ${loadCpus}` })
  t.same(doc.results[0]!.perCore, { cores: 1, ferry: 100, baseline: 200, busy: 0.8 }, 'rates per Ferry core')
  t.equal(doc.results[1]!.perCore, null, 'memory is not a rate')
  t.match(doc.results[0]!.notes.at(-1), new RegExp(`--cpus 1: on CPU ${ferryCpus} the ferry processes; everything else on CPU ${loadCpus}`))
  t.match(r.stderr, /\| per Ferry core +\|/)
  t.match(r.stderr, /100 msg\/s \(80% busy\)/)
  // Nothing is pinned once the run is over (the next run, or a test, starts clean).
  t.equal(await allowedOf('ferry'), formatCpuList(cpus))
})

t.test('pinSelf moves every thread of a process onto the load CPUs', { skip: allowedCpus().length < 2 ? 'needs 2 CPUs' : false }, async (t) => {
  const cpus = allowedCpus()
  await withScope(async (s) => {
    // Pinned once it runs, like the runner: its V8 and libuv threads exist by then.
    const child = start(s, process.execPath, ['-e', 'require("node:fs").readFile(__filename, () => console.log("ready")); setInterval(() => {}, 1000)'])
    await child.waitFor(/ready/)
    const tids = readdirSync(`/proc/${child.pid}/task`)
    t.ok(tids.length > 1, `${tids.length} threads`)
    pinSelf({ cpus: 1, ferry: cpus.slice(0, 1), load: cpus.slice(1) }, child.pid)
    for (const tid of tids) {
      t.equal(/Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${child.pid}/task/${tid}/status`, 'utf8'))?.[1], formatCpuList(cpus.slice(1)), `thread ${tid}`)
    }
  })
})

t.test('npm run bench --cpus with too few cores: exit 2, nothing started, stdout empty', async (t) => {
  const { code, out, err } = await runBenchCli(['--quick', '--json', '--cpus', '4096', '--only', 'ingest'], { ...process.env, FERRY_BENCH_TRACE: '1', FERRY_SKIP_BENCH_INSTALL: '1' })
  t.equal(code, 2, code === 2 ? 'exit 2' : err)
  t.match(err, /bench: --cpus 4096 needs more than 4096 CPUs/)
  t.notMatch(err, /bench-trace: started/)
  t.equal(out, '')
})
