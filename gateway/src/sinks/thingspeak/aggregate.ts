/**
 * The aggregation rule that keeps ThingSpeak within an account's message rate (documented in the
 * sink's README.md; limits in docs/cloud-apis.md#thingspeak-rate-limits):
 *
 * - Windows are `windowMs` long and aligned to the epoch (`floor(t / windowMs)`), per device.
 * - One entry per (channel, device, window): field1 = the **last** pot, field2 = the **max** switch
 *   (a press inside the window is never lost), field3 = the **last** LED value reported (omitted when
 *   none), status = the device id.
 * - `created_at` = the time of the window's **last reading**, in whole seconds (UTC). Using the
 *   reading time rather than the window end means a window whose readings reach us in two batches
 *   produces two entries with different timestamps, never a clash.
 * - Per channel, `created_at` is made strictly increasing (bumped by 1 s when two devices or a
 *   previously written entry share a second), because ThingSpeak requires unique timestamps per
 *   channel and does not overwrite.
 */
import type { BufferedReading } from '../types.js'

/** One bulk_update entry plus the buffer rows it stands for. */
export interface Entry {
  channelId: string
  device: string
  /** Seconds since the epoch (after de-duplication). */
  createdAtS: number
  pot: number
  switch: number
  led: number | null
  rows: BufferedReading[]
}

/** Window index of a reading. */
export const windowOf = (row: BufferedReading, windowMs: number): number => Math.floor(row.tsUs / 1000 / windowMs)

/** A reading's time in whole seconds. */
export const secondOf = (row: BufferedReading): number => Math.floor(row.tsUs / 1_000_000)

/**
 * Groups rows (given in buffer order) into entries per channel, ordered by `created_at`, with
 * timestamps made unique and above `after` (the newest second the channel already holds, if known).
 */
export function aggregate(rows: readonly BufferedReading[], channelOf: (row: BufferedReading) => string, windowMs: number, after: (channelId: string) => number | undefined): Map<string, Entry[]> {
  const groups = new Map<string, Entry>()
  for (const row of rows) {
    const channelId = channelOf(row)
    const key = `${channelId}\u0000${row.device}\u0000${windowOf(row, windowMs)}`
    let entry = groups.get(key)
    if (!entry) {
      entry = { channelId, device: row.device, createdAtS: 0, pot: row.pot, switch: row.switch, led: null, rows: [] }
      groups.set(key, entry)
    }
    entry.rows.push(row)
  }
  const byChannel = new Map<string, Entry[]>()
  for (const entry of groups.values()) {
    // Rows of one device are in increasing time order (ingest makes tsUs strictly increasing per
    // device), but sort anyway so "last" means latest, whatever order the batch came in.
    entry.rows.sort((a, b) => a.tsUs - b.tsUs || a.id - b.id)
    const last = entry.rows[entry.rows.length - 1] as BufferedReading
    entry.pot = last.pot
    entry.switch = Math.max(...entry.rows.map((r) => r.switch))
    const withLed = entry.rows.filter((r) => r.led !== null && r.led !== undefined)
    entry.led = withLed.length ? (withLed[withLed.length - 1] as BufferedReading).led : null
    entry.createdAtS = secondOf(last)
    entry.rows.sort((a, b) => a.id - b.id)
    const list = byChannel.get(entry.channelId) ?? []
    list.push(entry)
    byChannel.set(entry.channelId, list)
  }
  for (const [channelId, list] of byChannel) {
    list.sort((a, b) => a.createdAtS - b.createdAtS || (a.rows[0] as BufferedReading).id - (b.rows[0] as BufferedReading).id)
    let prev = after(channelId) ?? -Infinity
    for (const entry of list) {
      if (entry.createdAtS <= prev) entry.createdAtS = prev + 1
      prev = entry.createdAtS
    }
  }
  return byChannel
}

/** ISO 8601 UTC with whole seconds, as the bulk API examples show (`2018-01-30T15:26:02Z`). */
export function isoSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
}
