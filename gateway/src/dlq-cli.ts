import { existsSync } from 'node:fs'
import { parseCli } from '../../common/src/cli-args.js'
import { UsageError } from '../../common/src/errors.js'
import { printable, printableJson } from '../../common/src/printable.js'
import { listDeadLetters, openBuffer, requeueDeadLetters, RingBuffer } from './buffer/index.js'
import { toIngestItem } from './ingest/handlers/index.js'

const HELP = `usage: ferry dlq list [--db <path>] [--source ingest|sink:<name>] [--limit N] [--json]
       ferry dlq requeue <id>... [--db <path>]

Dead letters are messages the gateway could not store as readings (bad JSON, out-of-range values,
unknown topics; source "ingest") and readings a sink refused (source "sink:<name>"), each with the
reason and the raw bytes. "requeue" feeds a dead letter through ingest validation again (after you
fixed what was wrong, e.g. a field type conflict in InfluxDB); it becomes a new reading that every
sink receives, with its original point time: the one it had when a sink refused it (list --json shows
it as tsUs), else the device's "ts" when plausible, else the time the gateway first received it. Run
requeue while the gateway is stopped or accept that it may briefly wait for the database lock.
--db defaults to $FERRY_DB or ./ferry-buffer.db.`

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCli(argv, {
    db: { type: 'string' },
    source: { type: 'string' },
    limit: { type: 'string', default: '100' },
    json: { type: 'boolean' },
  }, HELP)
  if (help) {
    process.stdout.write(HELP + '\n')
    return 0
  }
  const [action, ...ids] = positionals
  const path = values.db ?? process.env.FERRY_DB ?? 'ferry-buffer.db'
  if (!existsSync(path)) throw new UsageError(`no buffer database at ${path}; pass --db or set FERRY_DB`)
  if (action === 'list') {
    const { db } = openBuffer(path, { readonly: true })
    try {
      const rows = listDeadLetters(db, { limit: Number(values.limit), source: values.source })
      // Payloads and reasons are device and sink text: escaped, so they can neither drive the
      // terminal nor start a line or a column of their own (common/src/printable.ts).
      if (values.json) process.stdout.write(printableJson(rows, 2) + '\n')
      else for (const r of rows) process.stdout.write(`${r.id}\t${new Date(r.at).toISOString()}\t${printable(r.source)}\t${printable(r.topic ?? '-')}\t${printable(r.reason)}\t${printable(r.payload.slice(0, 120))}\n`)
      return 0
    } finally {
      db.close()
    }
  }
  if (action === 'requeue') {
    if (ids.length === 0 || ids.some((i) => !/^\d+$/.test(i))) throw new UsageError('requeue needs one or more numeric dead-letter ids (see "ferry dlq list")')
    const { db } = openBuffer(path)
    try {
      const buffer = new RingBuffer(db, { maxRows: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER, dedupWindowMs: 0, maxEvents: Number.MAX_SAFE_INTEGER })
      const results = requeueDeadLetters(buffer, ids.map(Number), (topic, payload, receivedAt) => toIngestItem(topic, payload, receivedAt, Number.MAX_SAFE_INTEGER))
      for (const r of results) if (!r.requeued) process.stderr.write(`dead letter ${r.id}: ${printable(r.reason)}\n`)
      const ok = results.filter((r) => r.requeued).length
      process.stdout.write(`requeued ${ok} of ${ids.length}\n`)
      return ok === ids.length ? 0 : 1
    } finally {
      db.close()
    }
  }
  throw new UsageError(`unknown action ${JSON.stringify(action ?? '')}\n\n${HELP}`)
}
