// One gateway per buffer database (lock.ts), and a database path that cannot be used named as such
// (open.ts unusablePathError). Across real processes: test/e2e/single-instance.test.ts.
import t from 'tap'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { tempDir } from '../../../test/helpers/tmp.js'
import { lockBuffer } from './lock.js'
import { openBuffer } from './open.js'

t.test('a second lock on the same database is refused, naming the holder; released, it can be taken again', async (t) => {
  const db = join(tempDir(t), 'buffer.db')
  const first = lockBuffer(db)
  t.equal(first.path, `${db}.lock`)
  const err = t.throws(() => lockBuffer(db), { code: 'FERRY_ERR_BUFFER_LOCKED' }) as Error
  t.match(err.message, `the buffer database ${db} (FERRY_DB) is in use by another ferry gateway (pid ${process.pid} on host ${hostname()}, started 20`)
  t.match(err.message, /Stop the other gateway first, or give this one its own FERRY_DB/)
  const other = lockBuffer(join(tempDir(t), 'buffer.db'))
  t.ok(other, 'another database has its own lock')
  other.release()

  const { db: buffer } = openBuffer(db, { readonly: false })
  const reader = openBuffer(db, { readonly: true })
  t.ok(reader.db.prepare('SELECT count(*) AS n FROM readings').get(), 'the database itself is not locked: status can read it')
  reader.db.close()
  buffer.close()

  first.release()
  first.release() // twice is harmless
  const again = lockBuffer(db)
  t.ok(again, 'taken again after the release')
  again.release()
})

t.test('a FERRY_DB under a file is a ConfigError naming the setting, the path and why', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'file'), 'x')
  const db = join(dir, 'file', 'sub', 'buffer.db')
  for (const open of [() => lockBuffer(db), () => openBuffer(db)]) {
    const err = t.throws(open, { code: 'FERRY_ERR_CONFIG' }) as Error
    t.match(err.message, `FERRY_DB=${db}: cannot create or write the buffer database: ${join(dir, 'file')} is a file, not a folder`)
    t.match(err.message, /Check the folder's owner and permissions .* the non-root uid 1000/)
  }
  const folder = join(dir, 'folder.db')
  mkdirSync(folder)
  t.throws(() => openBuffer(folder), { code: 'FERRY_ERR_CONFIG', message: `FERRY_DB=${folder}: cannot create or write the buffer database: ${folder} is a folder, not a file` })
})

t.test('a folder this user may not write is named with its owner and mode', { skip: process.getuid?.() === 0 ? 'root writes anywhere: the e2e test mounts a read-only file system instead' : false }, async (t) => {
  const dir = join(tempDir(t), 'locked')
  mkdirSync(dir)
  chmodSync(dir, 0o555)
  t.teardown(() => chmodSync(dir, 0o755))
  const db = join(dir, 'buffer.db')
  const err = t.throws(() => lockBuffer(db), { code: 'FERRY_ERR_CONFIG' }) as Error
  t.match(err.message, `FERRY_DB=${db}: cannot create or write the buffer database: ${dir} is not writable by this user (EACCES; owner uid ${process.getuid?.()}, mode 0555)`)
})

t.test('ferry status and dlq name --db when they cannot open the file', async (t) => {
  const dir = tempDir(t)
  const db = join(dir, 'buffer.db')
  mkdirSync(db)
  t.throws(() => openBuffer(db, { readonly: true, setting: '--db' }), { code: 'FERRY_ERR_CONFIG', message: `--db=${db}: cannot open the buffer database: ${db} is a folder, not a file` })
})
