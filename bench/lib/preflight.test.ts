// The bench runner's preflight: missing commands are named clearly, apt-get runs only when allowed
// (and is injected here, never run), and `npm run bench` stops before starting anything.
// Runs no benchmark.
import t from 'tap'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../../test/helpers/tmp.js'
import { findTool, preflight, TOOLS, type Needs, type Tool } from './preflight.js'
import { runBenchCli } from './run-cli.js'
import { ROOT } from './procs.js'
import { bench as ingest } from '../ingest.bench.js'
import { bench as drain } from '../drain.bench.js'
import { bench as backlog } from '../backlog.bench.js'
import { bench as ota } from '../ota-download.bench.js'
import { bench as latency } from '../latency.bench.js'
import { bench as soak } from '../soak.bench.js'

/** An executable stand-in for `name` in `dir`. */
function fake(dir: string, name: string, body = 'exit 0'): string {
  const f = join(dir, name)
  writeFileSync(f, `#!/bin/sh\n${body}\n`)
  chmodSync(f, 0o755)
  return f
}

const NEEDS: Needs = [
  { bench: 'ota', tools: [TOOLS.nginx, TOOLS.curl] },
  { bench: 'drain', tools: [TOOLS.curl, TOOLS.influxd] },
]

/** An install step that must not be called, and records it if it is. */
function spies() {
  const installs: string[][] = []
  const stopped: string[] = []
  return { installs, stopped, install: (pkgs: string[]) => void installs.push(pkgs), stopService: (n: string) => void stopped.push(n) }
}

t.test('not root: names every missing command, its package and the benchmarks, prints the apt-get command, does not run apt-get', async (t) => {
  const empty = tempDir(t)
  const s = spies()
  const r = await preflight(NEEDS, { env: { PATH: empty }, isRoot: false, isDebian: true, install: s.install, stopService: s.stopService, sbinDirs: [] })
  t.equal(r.ok, false)
  if (r.ok) return
  t.same(s.installs, [], 'apt-get not attempted')
  t.same(s.stopped, [])
  t.same(r.missing.map((m) => [m.tool.command, m.benches]), [['nginx', ['ota']], ['curl', ['ota', 'drain']], ['influxd', ['drain']]])
  t.match(r.message, /^bench: cannot run ota, drain: these commands are missing:/)
  t.match(r.message, /\n {2}nginx {4}Debian package nginx: .*\(ota\)\n/)
  t.match(r.message, /\n {2}curl {5}Debian package curl: .*\(ota, drain\)\n/)
  t.match(r.message, /\n {2}influxd {2}Debian package influxdb: .*\(drain\)\n/)
  t.match(r.message, /Nothing was started\. Not installed automatically: not running as root\./)
  t.match(r.message, /\n {2}sudo apt-get update && sudo apt-get install -y --no-install-recommends nginx curl influxdb$/)
})

t.test('root on Debian with FERRY_SKIP_BENCH_INSTALL=1 (or bootstrap\'s FERRY_SKIP_APT=1): no apt-get, the switch is named', async (t) => {
  const empty = tempDir(t)
  for (const sw of ['FERRY_SKIP_BENCH_INSTALL', 'FERRY_SKIP_APT']) {
    const s = spies()
    const r = await preflight(NEEDS, { env: { PATH: empty, [sw]: '1' }, isRoot: true, isDebian: true, install: s.install, stopService: s.stopService, sbinDirs: [] })
    t.equal(r.ok, false, sw)
    t.same(s.installs, [], `${sw}: apt-get not attempted`)
    if (!r.ok) {
      t.match(r.message, new RegExp(`Not installed automatically: ${sw}=1 is set\\.`))
      t.match(r.message, /\n {2}apt-get update && apt-get install -y --no-install-recommends nginx curl influxdb$/, 'no sudo for root')
    }
  }
})

t.test('root but not Debian: no apt-get', async (t) => {
  const s = spies()
  const r = await preflight(NEEDS, { env: { PATH: tempDir(t) }, isRoot: true, isDebian: false, install: s.install, stopService: s.stopService, sbinDirs: [] })
  t.equal(r.ok, false)
  t.same(s.installs, [])
  if (!r.ok) t.match(r.message, /no apt-get here \(not Debian\)/)
})

t.test('root on Debian: installs each missing package once, stops the nginx service, checks again', async (t) => {
  const bin = tempDir(t)
  const s = spies()
  const r = await preflight(
    [...NEEDS, { bench: 'ingest', tools: [TOOLS.mosquitto_pub, TOOLS.mosquitto_sub] }],
    {
      env: { PATH: bin },
      isRoot: true,
      isDebian: true,
      sbinDirs: [],
      stopService: s.stopService,
      install: (pkgs) => {
        s.installs.push(pkgs)
        for (const c of ['nginx', 'curl', 'influxd', 'mosquitto_pub', 'mosquitto_sub']) fake(bin, c)
      },
    },
  )
  t.same(r, { ok: true, installed: ['nginx', 'curl', 'influxdb', 'mosquitto-clients'] })
  t.same(s.installs, [['nginx', 'curl', 'influxdb', 'mosquitto-clients']], 'one apt-get run, each package once')
  t.same(s.stopped, ['nginx', 'influxdb'], 'the services the packages start are stopped')
})

t.test('a failing apt-get stops the run with the reason and the command to run by hand', async (t) => {
  const s = spies()
  const r = await preflight(NEEDS, {
    env: { PATH: tempDir(t) },
    isRoot: true,
    isDebian: true,
    sbinDirs: [],
    stopService: s.stopService,
    install: () => {
      throw new Error('apt-get install exited with 100')
    },
  })
  t.equal(r.ok, false)
  if (!r.ok) {
    t.match(r.message, /Not installed automatically: apt-get failed \(apt-get install exited with 100\)\./)
    t.match(r.message, /apt-get install -y --no-install-recommends nginx curl influxdb/)
  }
  t.same(s.stopped, ['nginx', 'influxdb'], 'services stopped even after a partial install')
})

t.test('apt-get that succeeds without providing the command still fails the check', async (t) => {
  const r = await preflight([{ bench: 'ota', tools: [TOOLS.nginx] }], { env: { PATH: tempDir(t) }, isRoot: true, isDebian: true, sbinDirs: [], install: () => {}, stopService: () => {} })
  t.equal(r.ok, false)
  if (!r.ok) {
    t.same(r.installed, ['nginx'])
    t.match(r.message, /still missing after apt-get install nginx/)
  }
})

t.test('everything present: ok, no apt-get', async (t) => {
  const bin = tempDir(t)
  for (const c of ['nginx', 'curl', 'influxd']) fake(bin, c)
  const s = spies()
  const r = await preflight(NEEDS, { env: { PATH: `/nonexistent:${bin}` }, isRoot: true, isDebian: true, install: s.install, stopService: s.stopService })
  t.same(r, { ok: true, installed: [] })
  t.same(s.installs, [])
})

t.test('a non-executable file on PATH does not count', async (t) => {
  const bin = tempDir(t)
  writeFileSync(join(bin, 'nginx'), '')
  t.equal(findTool(TOOLS.nginx, bin), undefined)
  chmodSync(join(bin, 'nginx'), 0o755)
  t.equal(findTool(TOOLS.nginx, bin), join(bin, 'nginx'))
})

t.test('installed in an sbin folder that is not on PATH: says so instead of suggesting apt-get, and does not install', async (t) => {
  const sbin = tempDir(t)
  fake(sbin, 'nginx')
  const s = spies()
  const r = await preflight([{ bench: 'ota', tools: [TOOLS.nginx] }], { env: { PATH: tempDir(t) }, isRoot: true, isDebian: true, sbinDirs: [sbin], install: s.install, stopService: s.stopService })
  t.equal(r.ok, false)
  t.same(s.installs, [])
  if (!r.ok) {
    t.match(r.message, new RegExp(`installed as ${sbin}/nginx, but ${sbin} is not on PATH`))
    t.match(r.message, new RegExp(`PATH="\\$PATH:${sbin}" npm run bench`))
    t.notMatch(r.message, /apt-get install/)
  }
})

t.test('absolute fallbacks are honoured like the code that starts the command (mosquitto in /usr/sbin)', async (t) => {
  const dir = tempDir(t)
  const tool: Tool = { command: 'mosq', pkg: 'mosq', role: 'x', alsoAt: [join(dir, 'nope'), fake(dir, 'mosq-abs')] }
  t.equal(findTool(tool, ''), join(dir, 'mosq-abs'))
  t.same(await preflight([{ bench: 'x', tools: [tool] }], { env: { PATH: '' }, isRoot: false }), { ok: true, installed: [] })
})

t.test('every command a benchmark file spawns is in its `needs`', async (t) => {
  for (const [file, b] of [['ingest', ingest], ['drain', drain], ['backlog', backlog], ['ota-download', ota], ['latency', latency], ['soak', soak]] as const) {
    const src = readFileSync(join(ROOT, 'bench', `${file}.bench.ts`), 'utf8')
    const spawned = new Set([...src.matchAll(/\bstart\(\w+, '([^']+)'/g)].map((m) => m[1]!))
    if (/\bstartTestBroker\(/.test(src)) spawned.add('mosquitto')
    if (/\bstartInfluxd\(/.test(src)) spawned.add('influxd')
    if (/\b(publishLoad|warmUp|publishOne)\(/.test(src)) spawned.add('mosquitto_pub')
    spawned.delete('sh') // essential on Debian; used as `sh -c 'exec mosquitto_pub …'`
    t.ok(spawned.size > 0, `${file}: found what it spawns`)
    t.same([...spawned].filter((c) => !(b.needs as string[]).includes(c)), [], `${file}.bench.ts declares everything it spawns`)
  }
})

t.test('npm run bench stops before starting anything when commands are missing and install is off (exit 2)', async (t) => {
  const empty = tempDir(t)
  const { code, out, err } = await runBenchCli(['--quick', '--only', 'ota,drain'], { HOME: process.env.HOME, PATH: empty, FERRY_SKIP_BENCH_INSTALL: '1', FERRY_BENCH_TRACE: '1' })
  t.equal(code, 2, err)
  t.match(err, /bench: cannot run ota, drain: these commands are missing:/)
  for (const c of ['nginx', 'curl', 'influxd']) t.match(err, new RegExp(`\\n {2}${c} +Debian package`), `names ${c}`)
  // nginx may be installed in /usr/sbin here, which is then named instead of installed again.
  t.match(err, /apt-get install -y --no-install-recommends (nginx )?curl influxdb\n/)
  t.notMatch(err, /bench-trace: started/, 'no process was started')
  t.equal(out, '', 'no benchmark began')
})
