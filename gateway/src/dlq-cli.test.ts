import t from 'tap'
import { join } from 'node:path'
import { tempDir } from '../../test/helpers/tmp.js'
import { captureRun, RAW_CONTROL } from '../../test/helpers/cli-output.js'
import { DeviceQueries } from './api/queries.js'
import { openBuffer, queryStatus, RingBuffer, type DeadLetter } from './buffer/index.js'
import { run } from './dlq-cli.js'
import { toIngestItem } from './ingest/handlers/index.js'

const LIMITS = { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 600_000, maxEvents: 100 }
const telemetry = (seq: number, extra = '') => Buffer.from(`{"seq":${seq},"boot":1,"pot":${seq * 10},"switch":0${extra}}`)

/**
 * A buffer file as a gateway leaves it: sinks `file` and `slow`; dev1's readings 1..5, of which `file`
 * took all but 3 (refused: dead letter 1) and `slow` none yet; and dev2's reading 1, dead-lettered at
 * ingest for its size under a smaller FERRY_INGEST_MAX_PAYLOAD_BYTES (dead letter 2).
 */
function gatewayLeftBuffer(tt: { teardown(fn: () => unknown): void }): string {
  const path = join(tempDir(tt), 'buffer.db')
  const { db } = openBuffer(path)
  const buf = new RingBuffer(db, LIMITS)
  buf.ensureSink('file')
  buf.ensureSink('slow')
  buf.ingest([1, 2, 3, 4, 5].map((s) => toIngestItem('sensors/dev1/telemetry', telemetry(s), Date.now(), 2048)))
  const batch = buf.read('file', 100)
  buf.settle('file', batch, { accepted: batch.filter((r) => r.seq !== 3).map((r) => r.id), rejected: [{ id: batch[2]!.id, reason: 'partial write: field type conflict' }] })
  buf.ingest([toIngestItem('sensors/dev2/telemetry', telemetry(1, `,"note":"${'x'.repeat(80)}"`), Date.now(), 64)])
  db.close()
  return path
}

/** Runs `ferry dlq` in this process and captures what it writes (its body is synchronous). */
const dlq = (argv: string[]) => captureRun(run, argv)

function inspect(path: string) {
  const { db } = openBuffer(path)
  const buf = new RingBuffer(db, LIMITS)
  const ids = (db.prepare('SELECT id FROM readings ORDER BY id').all() as Array<{ id: number }>).map((r) => r.id)
  const backlog = Object.fromEntries(['file', 'slow'].map((s) => [s, { estimate: buf.backlogEstimate(s), read: buf.read(s, 100).map((r) => `${r.device}/${r.seq}`) }]))
  const status = queryStatus(db)
  const api = new DeviceQueries(db).readings('dev1', 0, 100).readings.map((r) => r.seq)
  db.close()
  return { ids, backlog, status, api }
}

t.test('ferry dlq list: newest first, tab-separated or JSON, filtered by source', async (t) => {
  const path = gatewayLeftBuffer(t)
  const list = await dlq(['list', '--db', path])
  t.equal(list.code, 0)
  const lines = list.stdout.trimEnd().split('\n').map((l) => l.split('\t'))
  t.same(lines.map((l) => [l[0], l[2], l[3], l[4]]), [
    ['2', 'ingest', 'sensors/dev2/telemetry', 'payload is 128 bytes, more than FERRY_INGEST_MAX_PAYLOAD_BYTES=64'],
    ['1', 'sink:file', 'sensors/dev1/telemetry', 'partial write: field type conflict'],
  ])
  t.match(lines[0]![1], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'an ISO time')
  t.equal(lines[1]![5], telemetry(3).toString(), 'the raw payload')
  t.equal(lines[0]![5]!.length, 120, 'cut to 120 characters')

  const json = JSON.parse((await dlq(['list', '--db', path, '--json', '--source', 'sink:file'])).stdout) as DeadLetter[]
  t.match(json, [{ id: 1, source: 'sink:file', device: 'dev1', readingId: 3, payload: telemetry(3).toString(), requeuedAt: null }])
  t.equal(json.length, 1)
  t.same((await dlq(['list', '--db', path, '--limit', '1'])).stdout.split('\t')[0], '2')
})

t.test('ferry dlq requeue: each becomes a new reading at the end; ids stay contiguous and backlogs exact', async (t) => {
  const path = gatewayLeftBuffer(t)
  const r = await dlq(['requeue', '1', '2', '--db', path])
  t.same(r, { code: 0, stdout: 'requeued 2 of 2\n', stderr: '' })
  const after = inspect(path)
  t.same(after.ids, [1, 2, 3, 4, 5, 6, 7], 'contiguous ids: the refused copy of dev1/3 is not deleted from the middle')
  for (const s of ['file', 'slow']) {
    const exact = after.status.sinks.find((x) => x.name === s)!.rows
    t.equal(after.backlog[s]!.estimate, exact, `${s}: the gateway's backlogEstimate equals the exact count`)
  }
  t.same(after.backlog.file!.read, ['dev1/3', 'dev2/1'], 'the sink that refused it receives both, in requeue order')
  t.same(after.backlog.slow!.read, ['dev1/1', 'dev1/2', 'dev1/4', 'dev1/5', 'dev1/3', 'dev2/1'], 'a sink behind receives dev1/3 once')
  t.same(after.api, [1, 2, 4, 5, 3], 'the API shows dev1/3 once')
  const dl = after.status.deadLetters
  t.same([dl.total, dl.bySource, dl.held.rows], [0, {}, 2], 'none left to requeue; both still held, as requeued')
  t.equal((await dlq(['list', '--db', path])).stdout, '', 'none left to list')
})

t.test('ferry dlq requeue keeps the point time: the refused reading its own, the ingest one its receive time', async (t) => {
  const path = gatewayLeftBuffer(t)
  const { db } = openBuffer(path)
  const original = new RingBuffer(db, LIMITS).read('slow', 100).find((r) => r.seq === 3)!.tsUs
  db.close()
  const listed = JSON.parse((await dlq(['list', '--db', path, '--json'])).stdout) as DeadLetter[]
  t.same(listed.map((d) => [d.id, d.tsUs]), [[2, null], [1, original]], 'list --json shows the point time a sink refused')
  const receivedAt = listed[0]!.at

  t.equal((await dlq(['requeue', '1', '2', '--db', path])).code, 0)
  const after = openBuffer(path)
  const backlog = new RingBuffer(after.db, LIMITS).read('file', 100).map((r) => [`${r.device}/${r.seq}`, r.tsUs])
  after.db.close()
  t.same(backlog, [['dev1/3', original], ['dev2/1', receivedAt * 1000]], 'the sink that refused it gets it with its original time; the ingest one with the time it first arrived')
})

t.test('ferry dlq requeue: a bad id fails (1) and names it; bad usage is a usage error (2)', async (t) => {
  const path = gatewayLeftBuffer(t)
  const r = await dlq(['requeue', '2', '99', '--db', path])
  t.same(r, { code: 1, stdout: 'requeued 1 of 2\n', stderr: 'dead letter 99: not found or already requeued\n' }, 'the good one is requeued all the same')
  const again = await dlq(['requeue', '2', '--db', path])
  t.same([again.code, again.stderr], [1, 'dead letter 2: not found or already requeued\n'], 'requeued once only')
  t.same(inspect(path).ids, [1, 2, 3, 4, 5, 6])
  for (const argv of [['requeue', 'abc', '--db', path], ['requeue', '--db', path], ['frob', '--db', path], ['list', '--db', join(path, 'nope.db')]]) {
    await t.rejects(dlq(argv), { code: 'FERRY_ERR_USAGE' }, argv.slice(0, 2).join(' '))
  }
})

t.test('ferry dlq requeue: a dead letter that still fails validation stays', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  const { db } = openBuffer(path)
  new RingBuffer(db, LIMITS).ingest([toIngestItem('sensors/dev1/telemetry', Buffer.from('{"seq":1,"boot":1,"pot":9999,"switch":0}'), Date.now(), 2048)])
  db.close()
  const r = await dlq(['requeue', '1', '--db', path])
  t.same(r, { code: 1, stdout: 'requeued 0 of 1\n', stderr: 'dead letter 1: still invalid: "pot" must be an integer 0..4095\n' })
  t.match((await dlq(['list', '--db', path])).stdout, /^1\t/)
})

t.test('ferry dlq list: escape sequences from a device or a sink reach the terminal escaped, never raw', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  const { db } = openBuffer(path)
  const buf = new RingBuffer(db, LIMITS)
  buf.ensureSink('file')
  // Clear the screen, ring the bell, an 8-bit CSI (U+009B, and a bare 0x9b byte), a new line and a tab.
  const evil = '\x1b[2J\x07\u009b31m\nfake line\tcolumn'
  buf.ingest([toIngestItem('sensors/dev1/telemetry', Buffer.concat([Buffer.from(`{"seq":1,"boot":1,"pot":1,"switch":0,"x":"${evil}`), Buffer.from([0x9b]), Buffer.from('"}')]), Date.now(), 2048)])
  buf.ingest([toIngestItem('sensors/dev1/telemetry', telemetry(2), Date.now(), 2048)])
  const batch = buf.read('file', 100)
  buf.settle('file', batch, { accepted: [], rejected: [{ id: batch[0]!.id, reason: `400 from the server: ${evil}` }] })
  db.close()

  const list = await dlq(['list', '--db', path])
  t.equal(list.code, 0)
  t.notMatch(list.stdout, RAW_CONTROL, 'no raw control character')
  const lines = list.stdout.trimEnd().split('\n')
  t.equal(lines.length, 2, 'one line per dead letter: a newline in a payload or reason does not start one')
  t.same(lines.map((l) => l.split('\t').length), [6, 6], 'nor does a tab start a column')
  t.equal(lines[0]!.split('\t')[4], '400 from the server: \\x1b[2J\\x07\\u009b31m\\nfake line\\tcolumn', "the sink's reason, escaped")
  t.match(lines[1]!.split('\t')[5], '"x":"\\x1b[2J\\x07\\u009b31m\\nfake line\\tcolumn\ufffd"}', 'the raw payload, escaped (a bare 0x9b byte is not UTF-8: U+FFFD)')

  const json = await dlq(['list', '--db', path, '--json'])
  t.notMatch(json.stdout, RAW_CONTROL, 'JSON: no raw control character either (JSON.stringify leaves C1 raw)')
  const rows = JSON.parse(json.stdout) as DeadLetter[]
  t.equal(rows[0]!.reason, `400 from the server: ${evil}`, 'and it parses back to the exact text')

  const requeue = await dlq(['requeue', String(rows[1]!.id), '--db', path])
  t.equal(requeue.code, 1, 'the bad payload is still invalid')
  t.notMatch(requeue.stderr, RAW_CONTROL, 'its reason on stderr is escaped too')
})
