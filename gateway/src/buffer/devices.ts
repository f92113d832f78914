/**
 * Read-only queries on what the buffer keeps per device (the `devices` table) and on a device's stored
 * readings, for the API and the dashboard. They run on the gateway's connection between ingest commits
 * (better-sqlite3 is synchronous), prepared once.
 */
import type Database from 'better-sqlite3'
import { LIVE_READING, receiveTimeSearch } from './ring-buffer.js'

/** A stored reading; also the shape of a device's last reading (`devices.last_reading`). `ts` is the point time in ms. */
export interface DeviceReading {
  ts: number
  boot: number
  seq: number
  pot: number
  switch: number
  led: number | null
}

/** One row of `devices`, decoded. Times are ms since the epoch. */
export interface DeviceRecord {
  device: string
  lastSeen: number
  /** From the retained LWT status: true `online`, false `offline`, null never reported. */
  online: boolean | null
  statusAt: number | null
  lastReading: DeviceReading | null
  lastReadingAt: number | null
  /** The device's last `led/state` report, parsed as JSON; null when none or not JSON. */
  ledState: unknown
  /** The device's last `ota/status` report, parsed as JSON; null when none or not JSON. */
  otaState: unknown
}

/**
 * A point time is at most this far ahead of the receive time (ingest accepts device clocks up to 10
 * minutes ahead, ring-buffer.ts); one more minute covers the per-device +1 µs uniqueness steps.
 */
const TS_AHEAD_OF_RECEIVE_MS = 11 * 60_000

/** The device queries, prepared once on `db`. */
export class DeviceReads {
  private readonly st: ReturnType<DeviceReads['prepare']>
  private readonly firstIdReceivedAtOrAfter: (t: number) => number | null

  constructor(private readonly db: Database.Database) {
    this.st = this.prepare()
    this.firstIdReceivedAtOrAfter = receiveTimeSearch(db)
  }

  private prepare() {
    const db = this.db
    return {
      devices: db.prepare('SELECT * FROM devices ORDER BY device'),
      device: db.prepare('SELECT * FROM devices WHERE device = ?'),
      readings: db.prepare(
        `SELECT boot, seq, ts_us AS tsUs, pot, switch, led FROM reading_rows WHERE id >= ? AND device = (SELECT id FROM device_ids WHERE device = ?) AND ts_us >= ? AND ${LIVE_READING} ORDER BY id LIMIT ?`,
      ),
    }
  }

  /** Every device that has sent anything, by id. */
  devices(): DeviceRecord[] {
    return (this.st.devices.all() as DeviceRow[]).map(decode)
  }

  device(id: string): DeviceRecord | undefined {
    const r = this.st.device.get(id) as DeviceRow | undefined
    return r ? decode(r) : undefined
  }

  /**
   * Readings of `device` whose point time is after `sinceMs` (exclusive, ms resolution), oldest first,
   * at most `limit`; `more` says there are further ones (ask again with the last `ts`).
   *
   * The buffer has no index on (device, time), and adding one would slow every ingest commit. Instead:
   * per device, point times increase with the row id (ingest makes them strictly increasing), and
   * receive times do not decrease with the id; so a binary search on the id finds the first row
   * received late enough to qualify, and the scan starts there. It only holds what the buffer still
   * has: readings are pruned once every sink has them and FERRY_BUFFER_DEDUP_WINDOW_MS has passed.
   */
  readings(device: string, sinceMs: number, limit: number): { readings: DeviceReading[]; more: boolean } {
    const from = this.firstIdReceivedAtOrAfter(sinceMs - TS_AHEAD_OF_RECEIVE_MS)
    if (from === null) return { readings: [], more: false }
    const rows = this.st.readings.all(from, device, (Math.floor(sinceMs) + 1) * 1000, limit + 1) as Array<Omit<DeviceReading, 'ts'> & { tsUs: number }>
    const more = rows.length > limit
    return {
      readings: rows.slice(0, limit).map((r) => ({ ts: Math.floor(r.tsUs / 1000), boot: r.boot, seq: r.seq, pot: r.pot, switch: r.switch, led: r.led })),
      more,
    }
  }
}

interface DeviceRow {
  device: string
  last_seen: number
  online: number | null
  status_at: number | null
  last_reading: string | null
  last_reading_at: number | null
  led_state: string | null
  ota_state: string | null
}

function decode(r: DeviceRow): DeviceRecord {
  return {
    device: r.device,
    lastSeen: r.last_seen,
    online: r.online === null ? null : r.online === 1,
    statusAt: r.status_at,
    lastReading: parseJson(r.last_reading) as DeviceReading | null,
    lastReadingAt: r.last_reading_at,
    ledState: parseJson(r.led_state),
    otaState: parseJson(r.ota_state),
  }
}

function parseJson(s: string | null): unknown {
  if (s === null) return null
  try {
    return JSON.parse(s) as unknown
  } catch {
    return null
  }
}
