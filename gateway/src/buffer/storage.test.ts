/**
 * How a reading is laid out on disk (migration 7, docs/buffer-storage.md): columns only when they
 * say everything the device sent, the raw bytes otherwise; integer device ids; 1 KiB pages for a new
 * file; and an older file migrated with its rows, ids and cursors intact.
 */
import t from 'tap'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { openBuffer } from './open.js'
import { RingBuffer, idRangeSql } from './ring-buffer.js'
import { migrations } from './migrations.js'
import { queryStatus } from './status.js'
import { toIngestItem } from '../ingest/handlers/index.js'
import { tempDir } from '../../../test/helpers/tmp.js'

const limits = { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 60_000, maxEvents: 100 }
const NOW = Date.UTC(2026, 10, 30, 12)

function item(device: string, payload: string, receivedAt = NOW) {
  return toIngestItem(`sensors/${device}/telemetry`, Buffer.from(payload), receivedAt, 2048)
}

/** What the `reading_rows` table holds for each reading, and what the `readings` view shows. */
function stored(db: Database.Database) {
  return db.prepare('SELECT r.seq, r.payload IS NOT NULL AS raw, r.size, CAST(v.payload AS TEXT) AS shown FROM reading_rows r JOIN readings v ON v.id = r.id ORDER BY r.id').all() as Array<{ seq: number; raw: 0 | 1; size: number; shown: string }>
}

t.test('a reading that is exactly its fields is stored as columns, and the view gives back the same JSON', async (t) => {
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, limits, () => NOW)
  const exact = [
    `{"seq":1,"boot":7,"ts":${NOW - 5},"pot":4095,"switch":1,"led":100}`, // as the firmware and device-sim write it
    `{"seq":2,"boot":7,"ts":${NOW - 4},"pot":0,"switch":0}`, // no led
  ]
  const kept = [
    `{"seq":3,"boot":7,"ts":${NOW - 3},"pot":1,"switch":0,"temp":21.5}`, // a field this gateway does not know
    `{"seq":4,"boot":7,"pot":1,"switch":0}`, // no ts: the point time is the receive time, not the device's
    `{"seq":5,"boot":7,"ts":5,"pot":1,"switch":0}`, // an implausible ts (1970): the point time is not it
    `{"seq":6,"boot":7,"ts":${NOW - 1000},"pot":1,"switch":0}`, // earlier than the last: the point time moves on
  ]
  const out = buf.ingest([...exact, ...kept].map((p) => item('dev-a', p)))
  t.equal(out.stored, 6)
  const rows = stored(db)
  t.same(rows.map((r) => [r.seq, r.raw]), [[1, 0], [2, 0], [3, 1], [4, 1], [5, 1], [6, 1]], 'raw bytes kept only where the columns cannot say it all')
  t.same(rows.map((r) => r.shown), [...exact, ...kept], 'the view shows every payload byte for byte')
  t.same(rows.map((r) => r.size), [...exact, ...kept].map((p) => Buffer.byteLength(p)), 'size is the received length')
  t.same(buf.size(), { rows: 6, bytes: [...exact, ...kept].reduce((a, p) => a + Buffer.byteLength(p), 0) }, 'the byte limit counts received bytes, as before')
  t.equal(queryStatus(db).buffered.bytes, buf.size().bytes, 'status counts the same bytes')
})

t.test('a reading written in another key order or spacing keeps its fields, rebuilt in the documented order', async (t) => {
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, limits, () => NOW)
  buf.ingest([item('dev-a', `{ "boot": 2, "seq": 9, "switch": 1, "pot": 12, "ts": ${NOW} }`)])
  const [row] = stored(db)
  t.equal(row!.raw, 0)
  t.same(JSON.parse(row!.shown), { seq: 9, boot: 2, ts: NOW, pot: 12, switch: 1 })
})

t.test('devices get small integer ids; dedupe, drops and reads still go by device name', async (t) => {
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, { ...limits, maxRows: 4 }, () => NOW)
  buf.ensureSink('s')
  const r = (d: string, seq: number) => item(d, `{"seq":${seq},"boot":1,"ts":${NOW - 100 + seq},"pot":1,"switch":0}`)
  const first = buf.ingest([r('dev-a', 1), r('dev-b', 1), r('dev-a', 2)])
  const again = buf.ingest([r('dev-b', 1), r('dev-a', 2), r('dev-b', 2), r('dev-c', 1), r('dev-c', 2)])
  t.same([first.stored, again.stored, again.duplicates, again.dropped], [3, 3, 2, 2])
  t.same(db.prepare('SELECT id, device FROM device_ids ORDER BY id').all(), [{ id: 1, device: 'dev-a' }, { id: 2, device: 'dev-b' }, { id: 3, device: 'dev-c' }])
  t.same(db.prepare('SELECT device, count FROM drops ORDER BY device').all(), [{ device: 'dev-a', count: 1 }, { device: 'dev-b', count: 1 }], 'drops are counted by name')
  t.same(buf.read('s', 10).map((x) => `${x.device}/${x.seq}`), ['dev-a/2', 'dev-b/2', 'dev-c/1', 'dev-c/2'])
})

t.test('a failed commit forgets the device ids it gave', async (t) => {
  const { db } = openBuffer(':memory:')
  const buf = new RingBuffer(db, { ...limits, maxRows: 2, onFull: 'backpressure' }, () => NOW)
  buf.ensureSink('s')
  const r = (d: string, seq: number) => item(d, `{"seq":${seq},"boot":1,"ts":${NOW},"pot":1,"switch":0}`)
  t.throws(() => buf.ingest([r('dev-a', 1), r('dev-b', 1), r('dev-c', 1)]), { code: 'FERRY_ERR_BUFFER_BACKPRESSURE' })
  buf.ingest([r('dev-c', 1)])
  t.same(buf.read('s', 10).map((x) => x.device), ['dev-c'], 'the id given to dev-c in the refused commit was not reused for another device')
  t.same(db.prepare('SELECT device FROM device_ids').all(), [{ device: 'dev-c' }])
})

t.test('a new file has 1 KiB pages; a file that exists keeps its page size', async (t) => {
  const dir = tempDir(t)
  const fresh = openBuffer(join(dir, 'new.db')).db
  t.equal(fresh.pragma('page_size', { simple: true }), 1024)
  fresh.close()
  const old = new Database(join(dir, 'old.db'))
  old.pragma('page_size = 4096')
  old.pragma('journal_mode = WAL')
  old.exec('CREATE TABLE x (y)')
  old.close()
  const reopened = openBuffer(join(dir, 'old.db')).db
  t.equal(reopened.pragma('page_size', { simple: true }), 4096)
  reopened.close()
})

t.test('migration 7 moves the rows of an older file: ids, payloads, cursors and the id high-water mark', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  const old = new Database(path)
  for (const m of migrations.slice(0, 6)) old.exec(m)
  old.pragma('user_version = 6')
  old.exec(`INSERT INTO readings (id, device, boot, seq, ts_us, received_at, pot, switch, led, payload) VALUES
      (5, 'dev-b', 1, 1, 1000, 1, 7, 1, 50, '{"seq":1,"boot":1,"ts":1,"pot":7,"switch":1,"led":50}'),
      (6, 'dev-a', 1, 1, 2000, 2, 8, 0, NULL, '{"seq":1,"boot":1,"pot":8,"switch":0,"x":1}'),
      (9, 'dev-b', 1, 2, 3000, 3, 9, 0, NULL, '{"seq":2,"boot":1,"pot":9,"switch":0}');
    DELETE FROM readings WHERE id = 9;
    INSERT INTO sink_state (name, cursor) VALUES ('influxdb', 5);`)
  old.close()
  const { db } = openBuffer(path)
  t.equal(db.pragma('user_version', { simple: true }), migrations.length)
  t.same(db.prepare('SELECT id, device, seq, CAST(payload AS TEXT) AS p, size FROM readings ORDER BY id').all(), [
    { id: 5, device: 'dev-b', seq: 1, p: '{"seq":1,"boot":1,"ts":1,"pot":7,"switch":1,"led":50}', size: 53 },
    { id: 6, device: 'dev-a', seq: 1, p: '{"seq":1,"boot":1,"pot":8,"switch":0,"x":1}', size: 43 },
  ])
  const buf = new RingBuffer(db, limits, () => NOW)
  t.same(buf.read('influxdb', 10).map((r) => [r.id, r.device]), [[6, 'dev-a']], 'the cursor still points at the same row')
  buf.ingest([item('dev-a', `{"seq":2,"boot":1,"ts":${NOW},"pot":1,"switch":0}`), item('dev-b', `{"seq":1,"boot":1,"ts":${NOW},"pot":1,"switch":0}`)])
  t.same(db.prepare('SELECT id, device, seq FROM readings WHERE id > 6 ORDER BY id').all(), [{ id: 10, device: 'dev-a', seq: 2 }], 'ids go on after the largest ever given (9); dev-b/1/1 is still a duplicate')
  t.same(buf.size(), { rows: 3, bytes: 53 + 43 + Buffer.byteLength(`{"seq":2,"boot":1,"ts":${NOW},"pot":1,"switch":0}`) })
  db.close()
})

t.test('the id range is read from both ends of the primary key, not by scanning the table', async (t) => {
  const { db } = openBuffer(':memory:')
  const plan = (db.prepare(`EXPLAIN QUERY PLAN ${idRangeSql('reading_rows')}`).all() as Array<{ detail: string }>).map((r) => r.detail)
  t.notOk(plan.some((d) => /^SCAN reading_rows/.test(d)), plan.join('; '))
  t.ok(plan.some((d) => /^SEARCH reading_rows/.test(d)), 'a search at each end')
})
