import t from 'tap'
import { join } from 'node:path'
import { tempDir } from '../../test/helpers/tmp.js'
import { captureRun, RAW_CONTROL } from '../../test/helpers/cli-output.js'
import { META_INGEST_PAUSED, openBuffer, RingBuffer } from './buffer/index.js'
import { run } from './status-cli.js'

t.test('ferry status: errors from sinks and the OS reach the terminal escaped, never raw', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  const { db } = openBuffer(path)
  const buf = new RingBuffer(db, { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 600_000, maxEvents: 100 })
  buf.ensureSink('influxdb')
  // A sink's answer is remote text: clear the screen, ring the bell, an 8-bit CSI, a line of its own.
  const evil = '\x1b[2J\x07\u009b31m\nbuffered:     0 readings'
  buf.recordSinkError('influxdb', 'http_400', `400: ${evil}`)
  buf.setMeta(META_INGEST_PAUSED, { reason: 'disk-full', code: 'FERRY_ERR_BUFFER_FULL_DISK', since: Date.now(), error: `ENOSPC ${evil}` })
  db.close()

  const text = await captureRun(run, ['--db', path])
  t.equal(text.code, 0)
  t.notMatch(text.stdout, RAW_CONTROL, 'no raw control character')
  t.match(text.stdout, '  last error (http_400) 0s ago: 400: \\x1b[2J\\x07\\u009b31m\\nbuffered:     0 readings\n', "the sink's error, escaped on its own line")
  t.match(text.stdout, 'ENOSPC \\x1b[2J')
  t.equal(text.stdout.split('\n').filter((l) => l.startsWith('buffered:')).length, 1, 'no line of its own')

  const json = await captureRun(run, ['--db', path, '--json'])
  t.notMatch(json.stdout, RAW_CONTROL, 'JSON: no raw control character either')
  t.equal((JSON.parse(json.stdout) as { sinks: Array<{ lastError: string }> }).sinks[0]!.lastError, `400: ${evil}`, 'and it parses back to the exact text')
})
