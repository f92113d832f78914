import { once, EventEmitter } from 'node:events'
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger, silentLogger } from '../../../common/src/logger.js'
import { PauseGuard, isDiskFull } from './pause.js'

t.test('the codes that mean "no space" and nothing else', async (t) => {
  for (const code of ['SQLITE_FULL', 'ENOSPC', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC']) t.ok(isDiskFull(code), code)
  for (const code of ['SQLITE_BUSY', 'SQLITE_CORRUPT', 'UNKNOWN', 'FERRY_ERR_BUFFER_BACKPRESSURE']) t.notOk(isDiskFull(code), code)
})

t.test('pauses once, probes until ready, then resumes by itself; one WARN in, one INFO out', async (t) => {
  const journal: string[] = []
  const lines: Array<{ level: number; msg: string; reason: string }> = []
  const log = createLogger({ level: 'info', destination: new Writable({ write: (chunk: Buffer, _e, cb) => (lines.push(JSON.parse(chunk.toString()) as (typeof lines)[0]), cb()) }) })
  const events = new EventEmitter()
  let probes = 0
  const guard = new PauseGuard({
    pause: (p) => journal.push(`pause ${p.reason} ${p.code}`),
    resume: (p) => {
      journal.push(`resume ${p.reason}`)
      events.emit('resumed')
    },
    log,
    probeEveryMs: 5,
  })
  t.teardown(() => guard.stop())

  t.equal(guard.enter('backpressure', 'full', () => ++probes === 3), true, 'the first refusal enters the paused state')
  t.equal(guard.enter('disk-full', 'SQLITE_FULL', () => true), false, 'a second failure while paused changes nothing')
  t.equal(guard.current?.reason, 'backpressure')
  await once(events, 'resumed')
  t.same(journal, ['pause backpressure FERRY_ERR_BUFFER_BACKPRESSURE', 'resume backpressure'], 'paused once, resumed after the first probe that said ready')
  t.equal(probes, 3)
  t.same(lines.map((l) => [l.level, l.reason]), [[40, 'backpressure'], [30, 'backpressure']], 'WARN on entering, INFO on leaving, nothing between')
  t.equal(guard.current, undefined, 'no longer paused')
  t.equal(guard.enter('disk-full', 'SQLITE_FULL', () => true), true, 'a later failure enters it again')
})

t.test('a probe that throws counts as not ready (disk still full)', async (t) => {
  const events = new EventEmitter()
  let probes = 0
  const guard = new PauseGuard({ pause: () => {}, resume: () => events.emit('resumed'), log: silentLogger, probeEveryMs: 5 })
  t.teardown(() => guard.stop())
  guard.enter('disk-full', 'SQLITE_FULL: database or disk is full', () => {
    if (++probes < 3) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
    return true
  })
  t.equal(guard.current?.code, 'FERRY_ERR_BUFFER_FULL_DISK')
  await once(events, 'resumed')
  t.equal(probes, 3)
})

t.test('stop() leaves the state without resuming (the gateway is shutting down)', async (t) => {
  const guard = new PauseGuard({ pause: () => {}, resume: () => t.fail('resumed after stop'), log: silentLogger, probeEveryMs: 60_000 })
  guard.enter('disk-full', 'SQLITE_FULL', () => true)
  guard.stop()
  t.equal(guard.current, undefined)
  t.equal(guard.enter('backpressure', 'full', () => true), true, 'can enter again')
  guard.stop()
})
