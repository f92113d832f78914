// A buffer database damaged on disk on purpose, one page at a time, for the corruption checks'
// tests (docs/integrity.md).
import Database from 'better-sqlite3'
import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import { openBuffer, RingBuffer } from '../../gateway/src/buffer/index.js'
import { toIngestItem } from '../../gateway/src/ingest/handlers/index.js'

export const LIMITS = { maxRows: 1e6, maxBytes: 2 ** 40, dedupWindowMs: 0, maxEvents: 100 }
const DEVICES = ['dev1', 'dev2', 'dev3', 'dev4']

/** A buffer of `rows` readings at `path`, closed with its WAL checkpointed into the file. */
export function makeBuffer(path: string, rows: number): { bytes: number } {
  const { db } = openBuffer(path, { synchronous: 'OFF' })
  const buf = new RingBuffer(db, LIMITS)
  const t0 = Date.UTC(2024, 0, 1)
  const items = []
  for (let i = 0; i < rows; i++) {
    const seq = Math.floor(i / DEVICES.length) + 1
    const payload = Buffer.from(JSON.stringify({ seq, boot: 1, ts: t0 + seq * 1000, pot: i % 4096, switch: i % 2 }))
    items.push(toIngestItem(`sensors/${DEVICES[i % DEVICES.length]}/telemetry`, payload, t0 + seq * 1000 + 5, 2048))
  }
  buf.ingest(items)
  const bytes = buf.size().bytes
  db.pragma('wal_checkpoint(TRUNCATE)')
  db.close()
  return { bytes }
}

/**
 * Damages a leaf page in the middle of b-tree `name` (a table or index): `page` overwrites all of it
 * with garbage (SQLite cannot decode it: reading it throws SQLITE_CORRUPT); `rowid` changes the row
 * id an index entry points to, a silent change (a flipped bit) that reads fine and that only a
 * check comparing index and table notices ("row N missing from index").
 */
export function damageMiddleLeaf(path: string, name: string, how: 'page' | 'rowid'): void {
  const db = new Database(path, { readonly: true })
  const pageSize = db.pragma('page_size', { simple: true }) as number
  const leaves = db.prepare("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno").pluck().all(name) as number[]
  db.close()
  if (leaves.length < 5) throw new Error(`${name} has only ${leaves.length} leaf pages; the test needs more rows`)
  const page = leaves[Math.floor(leaves.length / 2)]!
  const at = (page - 1) * pageSize
  const fd = openSync(path, 'r+')
  try {
    if (how === 'page') return void writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, at)
    const p = Buffer.alloc(pageSize)
    readSync(fd, p, 0, pageSize, at)
    if (p[0] !== 0x0a) throw new Error(`page ${page} is not an index leaf`)
    // The first cell (sqlite.org/fileformat2.html, b-tree pages): payload size, then the record:
    // header size, serial types, values; the last value is the row id. Small values: one-byte varints.
    let o = p.readUInt16BE(8) + 1
    const headerEnd = o + p[o]!
    const lengths = []
    for (let h = o + 1; h < headerEnd; h++) lengths.push([0, 1, 2, 3, 4, 6, 8, 8, 0, 0][p[h]!]!)
    o = headerEnd + lengths.reduce((a, b) => a + b, 0) - 1 // the row id's last byte
    if (lengths.at(-1)! === 0) throw new Error('the row id is stored as a constant')
    p[o] = p[o]! ^ 1
    writeSync(fd, p, 0, pageSize, at)
  } finally {
    closeSync(fd)
  }
}

/** The name of the dedupe index of the readings table. */
export const indexOf = (path: string): string => {
  const db = new Database(path, { readonly: true })
  const name = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'reading_rows'").pluck().get() as string
  db.close()
  return name
}

