// test/helpers/process.ts `start`, shared by the tests and the benchmarks (bench/lib/procs.ts): a
// command that cannot be started, or that exits before the line it is waited for, rejects at once
// with an error naming it (not after the timeout, and not as an unhandled 'error' event), and the
// tracking hook sees exactly the processes that ran.
import t from 'tap'
import { SpawnError, start } from './process.js'

const MISSING = 'ferry-no-such-command'
/** Long enough that a wait that runs into it is told apart from one that failed at once. */
const LONG = 20_000
const node = process.execPath

t.test('a missing binary: exited and waitFor reject at once with a SpawnError naming the command', async (t) => {
  const tracked: number[] = []
  const p = start(t, MISSING, ['--flag'], { track: (pid) => void tracked.push(pid) })
  t.equal(p.pid, -1)
  t.equal(p.alive(), false)
  t.equal(p.command, `${MISSING} --flag`)
  const e = await p.exited.then(() => undefined, (err: unknown) => err)
  t.type(e, SpawnError)
  t.equal((e as SpawnError).code, 'ENOENT')
  t.equal((e as SpawnError).cmd, MISSING)
  t.equal((e as Error).message, `could not start ${MISSING}: not found on PATH (spawn ${MISSING} ENOENT)`)
  const t0 = Date.now()
  await t.rejects(p.waitFor(/ready/, LONG), { name: 'Error', message: `could not start ${MISSING}: not found on PATH (spawn ${MISSING} ENOENT)` })
  t.ok(Date.now() - t0 < 2000, 'waitFor fails at once, not after its timeout')
  await p.stop()
  t.same(tracked, [], 'nothing to track')
})

t.test('a missing binary: waitFor called right away rejects too, and the hint is added', async (t) => {
  const p = start(t, MISSING, [], { hint: 'see bench/README.md' })
  const t0 = Date.now()
  await t.rejects(p.waitFor(/ready/, LONG), new RegExp(`^could not start ${MISSING}: not found on PATH \\(spawn ${MISSING} ENOENT\\); see bench/README\\.md$`))
  t.ok(Date.now() - t0 < 2000, 'fails at once, not after the timeout')
})

t.test('a missing binary nobody waits for is not an unhandled rejection', async (t) => {
  // tap fails the file on an unhandled rejection or an uncaught 'error' event.
  start(t, MISSING, [])
  await new Promise((r) => setTimeout(r, 100))
  t.pass('no crash')
})

t.test('a process that exits before it is ready: waitFor rejects at once, naming the command', async (t) => {
  const p = start(t, node, ['-e', 'console.error("boom"); process.exit(3)'])
  t.ok(p.pid > 0, 'it started')
  const t0 = Date.now()
  await t.rejects(p.waitFor(/ready/, LONG), new RegExp(`^${node.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} exited while waiting for /ready/`))
  t.ok(Date.now() - t0 < LONG / 2, 'fails when it exits, not after the timeout')
  t.same(await p.exited, { code: 3, signal: null })
  t.equal(p.alive(), false)
})

t.test('a process that gets ready: waitFor resolves, tracked from start to exit, stopped by stop()', async (t) => {
  const events: string[] = []
  const p = start(t, node, ['-e', 'console.log("ready on 1"); setInterval(() => {}, 1000)'], {
    track: (pid, command) => {
      events.push(`start ${pid} ${command}`)
      return () => events.push(`exit ${pid}`)
    },
  })
  t.equal(await p.waitFor(/^ready on \d+$/, LONG), 'ready on 1')
  t.ok(p.alive())
  t.same(events, [`start ${p.pid} ${p.command}`])
  await p.stop()
  t.same(await p.exited, { code: null, signal: 'SIGTERM' })
  t.same(events, [`start ${p.pid} ${p.command}`, `exit ${p.pid}`])
})

t.test('the process is stopped at teardown', async (t) => {
  let pid = 0
  t.test('starts a process and leaves it running', async (t) => {
    const p = start(t, node, ['-e', 'setInterval(() => {}, 1000)'])
    pid = p.pid
    t.ok(pid > 0 && p.alive())
  })
  t.test('it is gone', async (t) => {
    const deadline = Date.now() + 5000
    const running = () => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    }
    while (running() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
    t.notOk(running(), `pid ${pid} stopped`)
  })
})
