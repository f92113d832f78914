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
import type { Stored } from '../types.js'

/** One bulk_update entry plus the buffer rows it stands for. */
export interface Entry {
  channelId: string
  device: string
  /** Seconds since the epoch (after de-duplication). */
  createdAtS: number
  pot: number
  switch: number
  led: number | null
  rows: Stored[]
}

/** Window index of a reading. */
export const windowOf = (row: Stored, windowMs: number): number => Math.floor(row.tsUs / 1000 / windowMs)

/** A reading's time in whole seconds. */
export const secondOf = (row: Stored): number => Math.floor(row.tsUs / 1_000_000)

/**
 * Groups rows (given in buffer order) into entries per channel, ordered by `created_at`, with
 * timestamps made unique and above `after` (the newest second the channel already holds, if known).
 */
export function aggregate(rows: readonly Stored[], channelOf: (row: Stored) => string, windowMs: number, after: (channelId: string) => number | undefined): Map<string, Entry[]> {
  const groups = new Map<string, Entry>()
  for (const row of rows) {
    const channelId = channelOf(row)
    const key = `${channelId}\u0000${row.device}\u0000${windowOf(row, windowMs)}`
    let e = groups.get(key)
    if (!e) {
      e = { channelId, device: row.device, createdAtS: 0, pot: row.pot, switch: row.switch, led: null, rows: [] }
      groups.set(key, e)
    }
    e.rows.push(row)
  }
  const byChannel = new Map<string, Entry[]>()
  for (const e of groups.values()) {
    // Rows of one device are in increasing time order (ingest makes tsUs strictly increasing per
    // device), but sort anyway so "last" means latest, whatever order the batch came in.
    e.rows.sort((a, b) => a.tsUs - b.tsUs || a.id - b.id)
    const last = e.rows[e.rows.length - 1] as Stored
    e.pot = last.pot
    e.switch = Math.max(...e.rows.map((r) => r.switch))
    const withLed = e.rows.filter((r) => r.led !== null && r.led !== undefined)
    e.led = withLed.length ? (withLed[withLed.length - 1] as Stored).led : null
    e.createdAtS = secondOf(last)
    e.rows.sort((a, b) => a.id - b.id)
    const list = byChannel.get(e.channelId) ?? []
    list.push(e)
    byChannel.set(e.channelId, list)
  }
  for (const [channelId, list] of byChannel) {
    list.sort((a, b) => a.createdAtS - b.createdAtS || (a.rows[0] as Stored).id - (b.rows[0] as Stored).id)
    let prev = after(channelId) ?? -Infinity
    for (const e of list) {
      if (e.createdAtS <= prev) e.createdAtS = prev + 1
      prev = e.createdAtS
    }
  }
  return byChannel
}

/** ISO 8601 UTC with whole seconds, as the bulk API examples show (`2018-01-30T15:26:02Z`). */
export function isoSeconds(s: number): string {
  return new Date(s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
}
