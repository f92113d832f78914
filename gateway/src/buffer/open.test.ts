import t from 'tap'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { openBuffer } from './open.js'
import { migrations } from './migrations.js'
import { RingBuffer } from './ring-buffer.js'
import { tempDir } from '../../../test/helpers/tmp.js'

t.test('migration 3 carries each device clock into devices, so point times keep increasing', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  // A database as version 2 left it, with a device clock.
  const old = new Database(path)
  old.pragma('journal_mode = WAL')
  for (const m of migrations.slice(0, 2)) old.exec(m)
  old.pragma('user_version = 2')
  old.prepare('INSERT INTO device_clock (device, last_ts_us) VALUES (?, ?)').run('dev1', 4_000_000_000_000_000)
  old.close()

  const { db } = openBuffer(path)
  t.teardown(() => db.close())
  t.equal(db.pragma('user_version', { simple: true }), migrations.length)
  t.same(db.prepare('SELECT device, last_ts_us FROM devices').all(), [{ device: 'dev1', last_ts_us: 4_000_000_000_000_000 }])
  const buf = new RingBuffer(db, { maxRows: 100, maxBytes: 1e6, dedupWindowMs: 0, maxEvents: 100 })
  buf.ingest([{ type: 'reading', topic: 'sensors/dev1/telemetry', device: 'dev1', boot: 1, seq: 1, receivedAt: Date.now(), pot: 1, switch: 0, led: null, payload: Buffer.from('{}') }])
  const ts = (db.prepare('SELECT ts_us FROM readings').get() as { ts_us: number }).ts_us
  t.equal(ts, 4_000_000_000_000_001, 'the next reading is after the migrated clock')
})

t.test('a file that is not a database is moved aside and a fresh buffer starts', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'buffer.db')
  const { writeFileSync, readdirSync } = await import('node:fs')
  writeFileSync(path, 'this is not sqlite at all, and long enough to be read as a header.....................................')
  const { db, recovered } = openBuffer(path)
  t.teardown(() => db.close())
  t.ok(recovered)
  t.match(recovered!.error, /SQLITE_NOTADB|SQLITE_CORRUPT/)
  t.equal(readdirSync(dir).filter((f) => f.startsWith('buffer.db.corrupt-')).length, 1)
  t.equal(db.pragma('user_version', { simple: true }), migrations.length)
})
