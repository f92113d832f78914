/**
 * Commit confirmations, gateway → device (docs/delivery.md): after each group commit, every device
 * whose readings the group held hears exactly which `(boot, seq)` are now stored, as inclusive ranges.
 * Stateless: each message describes one commit, so a gateway restart changes nothing, and a resent
 * reading that was already stored is confirmed again.
 */
import type { IngestItem } from '../buffer/index.js'

/** One message on `sensors/<device>/ack`. */
export interface Confirmation {
  device: string
  boot: number
  /** Inclusive, ascending, disjoint. */
  seqs: Array<[number, number]>
}

/** Most ranges in one message; more are split over several (keeps a device's parse buffer small). */
export const MAX_RANGES = 32

export const ackTopic = (device: string): string => `sensors/${device}/ack`

/** `{"boot":7,"seqs":[[1,100],[200,204]]}` */
export const encodeConfirmation = (c: Confirmation): string => JSON.stringify({ boot: c.boot, seqs: c.seqs })

/**
 * The confirmations for one committed group: its readings, plus dead-lettered telemetry that still
 * names a valid boot and seq (committed as a dead letter; sending it again would not change that).
 */
export function confirmationsFor(items: readonly IngestItem[]): Confirmation[] {
  const byDeviceBoot = new Map<string, { device: string; boot: number; seqs: number[] }>()
  for (const item of items) {
    const id = item.type === 'reading' ? item : item.type === 'dead' ? item.reading : undefined
    if (!id || item.device === null) continue
    const key = `${item.device}\u0000${id.boot}`
    let entry = byDeviceBoot.get(key)
    if (!entry) byDeviceBoot.set(key, (entry = { device: item.device, boot: id.boot, seqs: [] }))
    entry.seqs.push(id.seq)
  }
  const out: Confirmation[] = []
  for (const { device, boot, seqs } of byDeviceBoot.values()) {
    const ranges = toRanges(seqs)
    for (let i = 0; i < ranges.length; i += MAX_RANGES) out.push({ device, boot, seqs: ranges.slice(i, i + MAX_RANGES) })
  }
  return out
}

/** Sorted, merged inclusive ranges of a list of integers (duplicates allowed). */
export function toRanges(values: number[]): Array<[number, number]> {
  const sorted = Float64Array.from(values).sort()
  const ranges: Array<[number, number]> = []
  for (const v of sorted) {
    const last = ranges[ranges.length - 1]
    if (last && v <= last[1] + 1) last[1] = Math.max(last[1], v)
    else ranges.push([v, v])
  }
  return ranges
}
