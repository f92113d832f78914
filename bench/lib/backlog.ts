/**
 * A buffer that already holds a backlog, made directly through the gateway's own code
 * (`toIngestItem` + `RingBuffer.ingest`, exactly what ingest does per message) so that the drain and
 * memory benchmarks do not have to wait for MQTT to fill it.
 */
import Database from 'better-sqlite3'
import { openBuffer, RingBuffer } from '../../gateway/src/buffer/index.js'
import { toIngestItem } from '../../gateway/src/ingest/handlers/index.js'
import { reading } from './load.js'
import { waitUntil } from './procs.js'

/** Stores `rows` readings round-robin over `devices` into a new buffer at `path`, then closes it (WAL checkpointed). */
export function fillBuffer(path: string, rows: number, devices: string[]): { lastId: number; payloadBytes: number } {
  const { db } = openBuffer(path, { synchronous: 'OFF' })
  const buffer = new RingBuffer(db, { maxRows: rows * 2, maxBytes: 2 ** 40, dedupWindowMs: 600_000, maxEvents: 100_000 })
  const t0 = Date.UTC(2024, 0, 1)
  const chunk = 10_000
  let payloadBytes = 0
  for (let from = 0; from < rows; from += chunk) {
    const items = []
    for (let i = from; i < Math.min(rows, from + chunk); i++) {
      const device = devices[i % devices.length]!
      const seq = Math.floor(i / devices.length) + 1
      const payload = Buffer.from(reading(seq, 1, t0 + seq * 1000))
      payloadBytes += payload.length
      items.push(toIngestItem(`sensors/${device}/telemetry`, payload, t0 + seq * 1000 + 5, 2048))
    }
    buffer.ingest(items)
  }
  const lastId = (db.prepare('SELECT max(id) AS m FROM readings').get() as { m: number }).m
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
  return { lastId, payloadBytes }
}

/**
 * Resolves with the time (performance.now) at which `sink`'s cursor in the buffer at `path` reached
 * `lastId`; fails as soon as `alive()` (the gateway is running) turns false, rather than polling on.
 */
export async function waitDrained(path: string, sink: string, lastId: number, timeoutMs: number, alive: () => boolean = () => true): Promise<number> {
  const db = new Database(path, { readonly: true, fileMustExist: true })
  try {
    const cursor = db.prepare('SELECT cursor AS c FROM sink_state WHERE name = ?')
    await waitUntil(() => {
      if (((cursor.get(sink) as { c: number } | undefined)?.c ?? 0) >= lastId) return true
      if (!alive()) throw new Error(`the gateway exited before ${sink} drained ${lastId} readings`)
      return false
    }, `${sink} to drain ${lastId} readings`, timeoutMs, 5)
    return performance.now()
  } finally {
    db.close()
  }
}
