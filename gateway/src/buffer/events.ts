/**
 * Read-only queries on the device events the buffer keeps (the `events` table: status, LED state and
 * OTA status messages, bounded by FERRY_BUFFER_MAX_EVENTS), prepared once on the gateway's connection.
 */
import type Database from 'better-sqlite3'

/** One stored event: its id (increasing), receive time (ms) and raw payload. */
export interface StoredEvent {
  id: number
  at: number
  device: string
  payload: Buffer
}

export class EventReads {
  private readonly otaAfter: Database.Statement<[number, number], StoredEvent>
  private readonly oldest: Database.Statement<[], { id: number | null }>

  constructor(db: Database.Database) {
    this.otaAfter = db.prepare("SELECT id, at, device, payload FROM events WHERE kind = 'ota_status' AND id > ? ORDER BY id LIMIT ?")
    this.oldest = db.prepare('SELECT min(id) AS id FROM events')
  }

  /** The `ota/status` events after id `afterId`, oldest first, at most `limit` (the OTA link: ota/link.ts). */
  otaStatusAfter(afterId: number, limit: number): StoredEvent[] {
    return this.otaAfter.all(afterId, limit)
  }

  /** The id of the oldest event still kept (older ones were trimmed); null when there is none. */
  oldestId(): number | null {
    return this.oldest.get()?.id ?? null
  }
}
