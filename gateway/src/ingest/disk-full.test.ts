import { once, EventEmitter } from 'node:events'
import t from 'tap'
import { silentLogger } from '../../../common/src/logger.js'
import { DiskFullGuard, isDiskFull } from './disk-full.js'

t.test('the codes that mean "no space" and nothing else', async (t) => {
  for (const code of ['SQLITE_FULL', 'ENOSPC', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC']) t.ok(isDiskFull(code), code)
  for (const code of ['SQLITE_BUSY', 'SQLITE_CORRUPT', 'UNKNOWN']) t.notOk(isDiskFull(code), code)
})

t.test('pauses once, probes until a write commits, then resumes by itself', async (t) => {
  const journal: string[] = []
  const events = new EventEmitter()
  let freeSpace = false
  const guard = new DiskFullGuard({
    probeWrite: () => {
      journal.push('probe')
      if (journal.filter((j) => j === 'probe').length === 3) freeSpace = true
      if (!freeSpace) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
    },
    pause: () => journal.push('pause'),
    resume: () => {
      journal.push('resume')
      events.emit('resumed')
    },
    log: silentLogger,
    probeEveryMs: 5,
  })
  t.teardown(() => guard.stop())

  t.equal(guard.enter(), true, 'first failure enters the disk-full state')
  t.equal(guard.enter(), false, 'a second failure while paused changes nothing')
  t.ok(guard.active)
  await once(events, 'resumed')
  t.same(journal, ['pause', 'probe', 'probe', 'probe', 'resume'], 'paused once, resumed after the first probe that committed')
  t.notOk(guard.active, 'no longer in the disk-full state')
  t.equal(guard.enter(), true, 'a later failure enters it again')
})

t.test('stop() leaves the state without resuming (the gateway is shutting down)', async (t) => {
  const guard = new DiskFullGuard({ probeWrite: () => {}, pause: () => {}, resume: () => t.fail('resumed after stop'), log: silentLogger, probeEveryMs: 60_000 })
  guard.enter()
  guard.stop()
  t.notOk(guard.active)
  t.equal(guard.enter(), true, 'can enter again')
  guard.stop()
})
