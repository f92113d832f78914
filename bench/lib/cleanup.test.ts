// The bench harness's safety: a command that cannot be started rejects instead of crashing, and a
// benchmark that fails (or a runner that is interrupted or crashes) after starting processes leaves
// no process and no temp dir behind. Never gets as far as a benchmark's measurements: every case
// fails (or is stopped) before the first timed sample.
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { tempDir } from '../../test/helpers/tmp.js'
import { withScope } from './harness.js'
import { ROOT, SpawnError, start, waitListening } from './procs.js'
import { liveChildren, startedChildren } from './cleanup.js'
import { findTool } from './preflight.js'

/** True when no process `pid` runs any more (gone, or a zombie waiting for its parent). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return true
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true
  } catch {
    return true
  }
}

async function eventually(check: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 25))
  }
  return true
}

/** PATH without any folder that holds `cmd`. */
function pathWithout(cmd: string): string {
  return (process.env.PATH ?? '').split(delimiter).filter((d) => d && !existsSync(join(d, cmd))).join(delimiter)
}

/** Temp entries a benchmark made (test/helpers/tmp.ts prefixes them all with ferry-). */
const ferryTemps = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('ferry-'))

t.test('a command that is not on PATH rejects exited/waitFor/waitListening with a clear error, and does not crash', async (t) => {
  await withScope(async (s) => {
    const p = start(s, 'ferry-no-such-command', ['--x'])
    t.equal(p.pid, -1)
    t.equal(p.alive(), false)
    const e = await p.exited.then(() => undefined, (err: unknown) => err)
    t.type(e, SpawnError)
    t.match((e as Error).message, /could not start ferry-no-such-command: not found on PATH \(spawn ferry-no-such-command ENOENT\)/)
    await t.rejects(p.waitFor(/x/), /could not start ferry-no-such-command/)
    const t0 = Date.now()
    await t.rejects(waitListening(p, 1, 10_000), /could not start ferry-no-such-command/)
    t.ok(Date.now() - t0 < 2000, 'fails at once, not after the timeout')
  })
  // An unobserved failure must not become an unhandled rejection either (tap fails the file if it does).
  await withScope(async (s) => void start(s, 'ferry-no-such-command', []))
  await new Promise((r) => setTimeout(r, 50))
})

t.test('a scope that fails after starting a process stops it', async (t) => {
  let pid = 0
  await t.rejects(
    withScope(async (s) => {
      pid = start(s, 'sleep', ['300']).pid
      t.ok(pid > 0 && !gone(pid), 'sleep runs')
      await waitListening(start(s, 'ferry-no-such-command', []), 1)
    }),
    /could not start ferry-no-such-command/,
  )
  t.ok(gone(pid), 'sleep stopped')
  t.notOk(liveChildren().has(pid), 'and no longer tracked')
})

t.test('the OTA benchmark without nginx on PATH fails, and the ota-server and temp dirs it made are gone', async (t) => {
  const tmp = tempDir(t, 'bench-cleanup-')
  const saved = { PATH: process.env.PATH, TMPDIR: process.env.TMPDIR }
  process.env.PATH = pathWithout('nginx')
  process.env.TMPDIR = tmp
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })
  t.equal(findTool({ command: 'nginx' }), undefined, 'nginx is not on PATH')
  const { bench } = await import('../ota-download.bench.js')
  const before = startedChildren().length
  await t.rejects(bench.run({ quick: true, log: () => {} }), /could not start nginx: not found on PATH/)
  const mine = startedChildren().slice(before)
  const server = mine.find((c) => / ota-server$/.test(c.command))
  t.ok(server, `the ota-server was started first (${mine.map((c) => c.command).join('; ')})`)
  t.ok(server && gone(server.pid), `ota-server pid ${server?.pid} is gone`)
  t.same(mine.filter((c) => !gone(c.pid)), [], 'nothing it started still runs')
  t.same(ferryTemps(tmp), [], 'its temp dirs are removed')
})

/** Runs `npm run bench`'s entry (bench/run.ts) with `env`; `onTrace` sees every stderr line as it comes. */
function runner(args: string[], env: Record<string, string>, onLine: (line: string, child: ReturnType<typeof spawn>) => void = () => {}) {
  const child = spawn(process.execPath, ['--import=tsx', join(ROOT, 'bench', 'run.ts'), ...args], {
    cwd: ROOT,
    env: { HOME: process.env.HOME ?? '/root', FERRY_BENCH_TRACE: '1', FERRY_SKIP_BENCH_INSTALL: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  let partial = ''
  child.stdout!.on('data', (b: Buffer) => (out += b))
  child.stderr!.on('data', (b: Buffer) => {
    err += b
    const lines = (partial + b.toString()).split('\n')
    partial = lines.pop() ?? ''
    for (const l of lines) onLine(l, child)
  })
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })))
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
  return {
    done: done.finally(() => clearTimeout(timer)),
    output: () => ({ out, err }),
    /** pid and command line of every process it started (FERRY_BENCH_TRACE=1). */
    started: () => [...err.matchAll(/^bench-trace: started pid (\d+): (.*)$/gm)].map((m) => ({ pid: Number(m[1]), command: m[2]! })),
  }
}

/** A folder for PATH with stand-ins: nginx runs `nginxBody`, curl fails (it is never reached). */
function fakeBin(t: { teardown(fn: () => unknown): void }, nginxBody: string): string {
  const bin = tempDir(t, 'bench-bin-')
  for (const [name, body] of [['nginx', nginxBody], ['curl', 'exit 1']] as const) {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`)
    chmodSync(join(bin, name), 0o755)
  }
  return bin
}

for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
  t.test(`npm run bench stopped by ${sig} while its processes run: exit ${code}, no process or temp dir left`, async (t) => {
    const tmp = tempDir(t, 'bench-cleanup-')
    // nginx that never listens: the runner sits waiting for its port, with the ota-server running.
    const bin = fakeBin(t, 'exec /bin/sleep 300')
    let sent = false
    const r = runner(['--quick', '--only', 'ota'], { PATH: bin, TMPDIR: tmp }, (line, child) => {
      if (!sent && /^bench-trace: started pid \d+: nginx /.test(line)) {
        sent = true
        child.kill(sig)
      }
    })
    const end = await r.done
    const { err } = r.output()
    t.ok(sent, `the runner started nginx:\n${err}`)
    t.same(end, { code, signal: null }, err)
    t.match(err, new RegExp(`bench: interrupted by ${sig}; stopping \\d+ process`))
    const started = r.started()
    t.ok(started.some((c) => / ota-server$/.test(c.command)), 'the ota-server had been started')
    t.ok(await eventually(() => started.every((c) => gone(c.pid))), `all gone: ${started.filter((c) => !gone(c.pid)).map((c) => `${c.pid} ${c.command}`).join('; ')}`)
    t.same(ferryTemps(tmp), [], 'temp dirs removed')
  })
}

t.test('npm run bench with an nginx that fails: the benchmark is reported FAILED, exit 1, nothing left behind', async (t) => {
  const tmp = tempDir(t, 'bench-cleanup-')
  const r = runner(['--quick', '--only', 'ota'], { PATH: fakeBin(t, 'echo "nginx: [emerg] stand-in fails" >&2; exit 1'), TMPDIR: tmp })
  const end = await r.done
  const { out, err } = r.output()
  t.same(end, { code: 1, signal: null }, err)
  t.match(out, /FAILED to run: nginx .* exited \(code 1\) before it listened on port \d+/)
  t.match(out, /nginx: \[emerg\] stand-in fails/)
  const started = r.started()
  t.ok(started.some((c) => / ota-server$/.test(c.command)), 'the ota-server had been started')
  t.same(started.filter((c) => !gone(c.pid)), [], 'nothing it started still runs')
  t.same(ferryTemps(tmp), [], 'temp dirs removed')
})

t.test('the exit guards clean up after an uncaught exception and an unhandled rejection (exit 1)', async (t) => {
  for (const how of ['throw', 'reject']) {
    const dir = tempDir(t, 'bench-cleanup-')
    const lib = (f: string) => pathToFileURL(join(ROOT, 'bench', 'lib', f)).href
    // A runner that starts a process and a temp dir in a scope it never closes, then fails outside any try.
    const script = `
      import { installExitGuards } from '${lib('cleanup.ts')}'
      import { Scope } from '${lib('harness.ts')}'
      import { start } from '${lib('procs.ts')}'
      import { tempDir } from '${pathToFileURL(join(ROOT, 'test', 'helpers', 'tmp.ts')).href}'
      installExitGuards()
      const s = new Scope()
      tempDir(s, 'ferry-guard-')
      start(s, 'sleep', ['300'])
      setTimeout(() => { ${how === 'throw' ? "throw new Error('boom')" : "void Promise.reject(new Error('boom'))"} }, 200)
      setTimeout(() => {}, 60_000)
    `
    writeFileSync(join(dir, 'fixture.mts'), script)
    const child = spawn(process.execPath, ['--import=tsx', join(dir, 'fixture.mts')], {
      cwd: ROOT,
      env: { ...process.env, FERRY_BENCH_TRACE: '1', TMPDIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let err = ''
    child.stderr.on('data', (b: Buffer) => (err += b))
    const code = await new Promise<number | null>((r) => child.on('exit', r))
    t.equal(code, 1, `${how}: exit 1\n${err}`)
    t.match(err, /bench: unexpected error: Error: boom/, how)
    const pid = Number(/started pid (\d+): sleep 300/.exec(err)?.[1] ?? 0)
    t.ok(pid > 0, `${how}: sleep was started`)
    t.ok(await eventually(() => gone(pid)), `${how}: sleep ${pid} is gone`)
    t.same(ferryTemps(dir), [], `${how}: temp dir removed`)
  }
})
