/**
 * When readings are confirmed to their devices (docs/delivery.md, FERRY_INGEST_CONFIRM_AFTER):
 *
 * - `commit`: after each group commit, everything the group held (new readings and redeliveries).
 *   Stateless, so a restart changes nothing.
 * - `delivery`: once every configured sink has taken a reading. A replica of a share group may die
 *   and never come back (docs/scale-out.md), and its buffer with it; a reading confirmed only after
 *   delivery is still on its device until then, and the device resends it to a living replica.
 *   After each settled drain batch the readings between the last confirmed point and the lowest sink
 *   cursor are confirmed (they are still held: pruning waits for the dedupe window). A redelivery
 *   that was already delivered is confirmed at once (its first confirmation may have been lost);
 *   one not yet delivered waits for the cursor like the original. Dead-lettered telemetry is
 *   confirmed at commit in both modes: no sink will ever take it.
 *
 * Stateless across restarts in both modes: readings delivered before a crash and not confirmed are
 * resent by their devices and confirmed as redeliveries.
 */
import type { IngestItem, IngestOutcome, RingBuffer } from '../buffer/index.js'
import { committedKeys, confirmationsOf, type Confirmation } from './confirmations.js'

export type ConfirmAfter = 'commit' | 'delivery'

/** FERRY_INGEST_CONFIRM / FERRY_INGEST_CONFIRM_AFTER → when to confirm; null: never. */
export function confirmMode(c: { FERRY_INGEST_CONFIRM: boolean; FERRY_INGEST_CONFIRM_AFTER: 'auto' | ConfirmAfter; FERRY_MQTT_SHARE_GROUP?: string | undefined }): ConfirmAfter | null {
  if (!c.FERRY_INGEST_CONFIRM) return null
  if (c.FERRY_INGEST_CONFIRM_AFTER !== 'auto') return c.FERRY_INGEST_CONFIRM_AFTER
  return c.FERRY_MQTT_SHARE_GROUP ? 'delivery' : 'commit'
}

export interface Confirmer {
  /** After a group commit. */
  committed(items: readonly IngestItem[], outcome: IngestOutcome): void
  /** After a sink settled a batch (a cursor moved). */
  settled(): void
}

export function createConfirmer(mode: ConfirmAfter, buffer: RingBuffer, publish: (c: Confirmation) => void): Confirmer {
  const send = (cs: Confirmation[]) => cs.forEach(publish)
  if (mode === 'commit') {
    return { committed: (items) => send(confirmationsOf(committedKeys(items))), settled: () => {} }
  }
  let confirmedUpTo = buffer.deliveredUpTo()
  return {
    committed(items, outcome) {
      const keys = committedKeys(items, false)
      if (outcome.duplicateReadings) keys.push(...buffer.deliveredAmong(outcome.duplicateReadings))
      send(confirmationsOf(keys))
    },
    settled() {
      const upTo = buffer.deliveredUpTo()
      if (upTo <= confirmedUpTo) return
      const keys = buffer.readingKeysBetween(confirmedUpTo, upTo)
      confirmedUpTo = upTo
      send(confirmationsOf(keys))
    },
  }
}
