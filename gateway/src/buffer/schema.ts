import type Database from 'better-sqlite3'

/**
 * Where a file keeps its reading rows. Since migration 7 they are in `reading_rows` (device ids as
 * integers, the payload only when it says more than the columns) and `readings` is a view for
 * people and queries by device name; before it, `readings` was the table itself. The gateway always
 * migrates first, but the read-only tools (`ferry status`, `ferry dlq`) may open a file it has not
 * migrated yet, so the queries that count rows or bytes ask here.
 */
export function readingStore(db: Database.Database): { table: 'reading_rows' | 'readings'; size: string } {
  const migrated = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'reading_rows'").get() !== undefined
  return migrated ? { table: 'reading_rows', size: 'size' } : { table: 'readings', size: 'length(payload)' }
}
