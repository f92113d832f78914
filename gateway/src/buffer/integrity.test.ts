// Corruption checks (docs/integrity.md): the cheap check at open, the exact counts it hands to the
// ring, and the background check that finds what start-up does not read. Real SQLite files, damaged
// by overwriting one page on disk.
import t from 'tap'
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { openBuffer } from './open.js'
import { RingBuffer } from './ring-buffer.js'
import { countReadings, damageFile, damageReported } from './integrity.js'
import { checkInBackground, startBackgroundChecks, type CheckResult } from './background-check.js'
import { createLogger, silentLogger } from '../../../common/src/logger.js'
import { tempDir } from '../../../test/helpers/tmp.js'
import { damageMiddleLeaf, indexOf, LIMITS, makeBuffer } from '../../../test/helpers/damage.js'

t.test('the counts the open makes are the exact ones, and counted again after a write in between', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  const { bytes } = makeBuffer(path, 1000)
  const a = openBuffer(path)
  t.teardown(() => a.db.close())
  t.same(countReadings(a.db), { rows: 1000, bytes })
  a.db.prepare('DELETE FROM reading_rows WHERE id <= 10').run()
  const scanned = a.db.prepare('SELECT count(*) AS rows, sum(size) AS bytes FROM reading_rows').get()
  t.same(countReadings(a.db), scanned, 'a scan, not the counts from before the delete')

  const b = openBuffer(path)
  t.teardown(() => b.db.close())
  // Another connection commits between the open and the ring: the kept counts no longer hold.
  a.db.prepare('DELETE FROM reading_rows WHERE id <= 20').run()
  t.equal(countReadings(b.db).rows, 980)
})

t.test('a damaged page in the readings table is still found at start: the file is moved aside', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'buffer.db')
  makeBuffer(path, 20_000)
  damageMiddleLeaf(path, 'reading_rows', 'page')
  const { db, recovered } = openBuffer(path)
  t.teardown(() => db.close())
  t.ok(recovered, 'moved aside at start')
  t.match(recovered?.error, /SQLITE_CORRUPT/)
  t.equal(readdirSync(dir).filter((f) => /^buffer\.db\.corrupt-[^.]+$/.test(f)).length, 1)
  t.equal(new RingBuffer(db, LIMITS).size().rows, 0, 'a fresh buffer')
})

t.test('damage start-up does not read is found by the background check, reported, and acted on at the next start', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'buffer.db')
  makeBuffer(path, 20_000)
  damageMiddleLeaf(path, indexOf(path), 'rowid')

  // Start-up reads the table, not its dedupe index: it starts on this file as it is.
  const first = openBuffer(path)
  t.equal(first.recovered, undefined, 'the cheap check at start does not see it')
  const ring = new RingBuffer(first.db, LIMITS)
  t.equal(ring.size().rows, 20_000)

  // The schedule runs the whole check in a worker while the gateway's connection stays open.
  const logged: Array<{ level: number; code?: string; msg: string }> = []
  const log = createLogger({ level: 'info', destination: new Writable({ write: (c: Buffer, _e, cb) => (logged.push(JSON.parse(c.toString())), cb()) }) })
  const result = await new Promise<CheckResult>((resolve) => {
    const checks = startBackgroundChecks({ path, everyMs: 10, log, onResult: (r) => void checks.stop().then(() => resolve(r)) })
  })
  t.equal(result.ok, false)
  t.notOk(result.failed, 'the check ran; it found damage')
  t.match(result.error, /^integrity_check: row \d+ missing from index/)
  t.ok(logged.some((l) => l.level === 50 && l.code === 'FERRY_ERR_BUFFER_DAMAGED'), 'an error is logged with its code')
  t.match(damageReported(path), { error: result.error }, 'the report is left beside the database for the next start and ferry status')
  first.db.close()

  // The next start checks the whole file because of the report, and moves it aside with the report.
  const next = openBuffer(path, { log: silentLogger })
  t.teardown(() => next.db.close())
  t.ok(next.recovered)
  t.match(next.recovered?.error, /integrity_check/)
  t.notOk(existsSync(damageFile(path)), 'no report for the fresh file')
  const moved = readdirSync(dir).filter((f) => f.startsWith('buffer.db.corrupt-'))
  t.equal(moved.filter((f) => f.endsWith('.damaged')).length, 1, 'the report went along with the file it describes')
  t.equal(new RingBuffer(next.db, LIMITS).size().rows, 0)
})

t.test('an intact file passes the background check; a stale report costs one whole check and is cleared', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'buffer.db')
  makeBuffer(path, 2000)
  const check = checkInBackground(path)
  t.teardown(() => check.stop())
  t.match(await check.result, { ok: true })
  t.notOk(existsSync(damageFile(path)))

  writeFileSync(damageFile(path), JSON.stringify({ at: 1, error: 'integrity_check: an old report' }))
  const { db, recovered } = openBuffer(path, { log: silentLogger })
  t.teardown(() => db.close())
  t.equal(recovered, undefined, 'kept: the whole check passed')
  t.notOk(existsSync(damageFile(path)), 'the report is cleared')
  t.equal(new RingBuffer(db, LIMITS).size().rows, 2000)
})

t.test('a page the check cannot decode is damage too, not a failed check', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  makeBuffer(path, 20_000)
  damageMiddleLeaf(path, indexOf(path), 'page')
  const check = checkInBackground(path)
  t.teardown(() => check.stop())
  const r = await check.result
  t.equal(r.ok, false)
  t.notOk(r.failed)
  t.match(r.error, /SQLITE_CORRUPT/)
})

t.test('a check that cannot run says so and is not taken for damage', async (t) => {
  const check = checkInBackground(join(tempDir(t), 'missing.db'))
  const r = await check.result
  t.equal(r.ok, false)
  t.equal(r.failed, true)
})
