/**
 * The device's outbox: every reading waits here, online or not, until the gateway has confirmed that
 * it committed it (docs/delivery.md, "The device's side", rules 1–6; the firmware's `ferry::Outbox`
 * follows the same rules). It is the firmware's offline buffer, the device's own store-and-forward
 * queue: not esp-mqtt's outbox (which expires entries) nor MQTT.js's session store.
 *
 * RAM only: a reset loses it, as on the ESP32 (docs/firmware-notes.md#offline-buffer).
 *
 * Each held reading is in one of three states:
 * - unsent: waiting for its (next) publish; never sent, or marked for sending again;
 * - in flight: published at QoS 1 on this connection, its PUBACK not here yet (at most `window`);
 * - sent: PUBACKed by the broker, waiting for the gateway's confirmation.
 *
 * The rules, as this class applies them (the caller feeds it events and the time; it has no timers):
 * 1. `push`: when `capacity` readings that are not in flight are held, the OLDEST of them is dropped
 *    and counted. In-flight readings are left alone: they are already in the MQTT session and will
 *    probably arrive, so counting them as dropped would be a lie. Memory stays bounded by
 *    `capacity + window`.
 * 2. `next`: the oldest unsent reading, with a new send number.
 * 3. `confirm`: a confirmation for the current boot releases every held reading inside its ranges; a
 *    reading still held that was sent (and PUBACKed) before the latest PUBACKed send of a released one,
 *    its PUBACK at least `ackReorderMs` ago, was lost on the way, and is marked unsent. A younger one is
 *    left for a later confirmation: gateway replicas confirm independently (docs/scale-out.md). In-flight readings take no part: on one connection a
 *    PUBACK comes before any confirmation of a later publish, so a reading in flight when a
 *    confirmation covers it was confirmed as an older copy, and says nothing about what came before.
 * 4. `connected`: after every (re)connect everything held is unsent again, in order.
 * 5. `poll`: in gateway mode, when the oldest held reading was sent and neither it was sent again nor
 *    a confirmation of this boot came for `ackTimeoutMs`, it is marked unsent (a probe), and the period
 *    doubles up to `ackTimeoutMaxMs`. A confirmation of this boot resets the period.
 * 6. `poll`: when no confirmation at all (any boot, live or retained) came within `ackFallbackMs` of
 *    the first PUBACK on a connection, the mode becomes `broker`: what was PUBACKed is released, and
 *    from then on each reading on its PUBACK. Any confirmation switches back to `gateway`.
 */

import { decodeJsonPayload } from './payload.js'

/** What releases readings: the gateway's commit confirmations, or (rule 6) the broker's PUBACK. */
export type ConfirmMode = 'gateway' | 'broker'

/** A commit confirmation from `sensors/<id>/ack`: inclusive ranges of `seq` within `boot`. */
export interface Confirmation {
  boot: number
  seqs: Array<[number, number]>
}

/** The contract's limit on ranges per message (docs/delivery.md, "The topic"). */
export const MAX_CONFIRMATION_RANGES = 32
/** Larger `ack` payloads are refused before parsing (the firmware's limit). */
export const MAX_CONFIRMATION_BYTES = 2048

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff

/**
 * Parses an `ack` payload by the firmware's rules (`ferry::parse_confirmation`): `boot` an integer
 * 0..2^32-1, `seqs` at most 32 `[from, to]` integer ranges with from ≤ to, ascending and disjoint.
 * Other members are ignored. An empty `seqs` is well-formed: it releases nothing but shows that the
 * gateway confirms. A refusal names what is wrong; the caller ignores the message.
 */
export function parseConfirmation(payload: Buffer | string): { ok: true; confirmation: Confirmation } | { ok: false; reason: string } {
  const decoded = decodeJsonPayload(payload, MAX_CONFIRMATION_BYTES)
  if (!decoded.ok) return decoded
  const parsed = decoded.value
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, reason: 'expected {"boot", "seqs"}' }
  const { boot, seqs } = parsed as Record<string, unknown>
  if (!isU32(boot)) return { ok: false, reason: 'boot must be an integer 0..4294967295' }
  if (!Array.isArray(seqs)) return { ok: false, reason: 'seqs must be an array of [from, to] ranges' }
  if (seqs.length > MAX_CONFIRMATION_RANGES) return { ok: false, reason: `seqs has more than ${MAX_CONFIRMATION_RANGES} ranges` }
  const ranges: Array<[number, number]> = []
  for (const range of seqs as unknown[]) {
    if (!Array.isArray(range) || range.length !== 2 || !isU32(range[0]) || !isU32(range[1])) return { ok: false, reason: 'each range must be [from, to] with integers 0..4294967295' }
    const [from, to] = range as [number, number]
    if (from > to) return { ok: false, reason: 'a range has from > to' }
    const last = ranges[ranges.length - 1]
    if (last && from <= last[1]) return { ok: false, reason: 'ranges are not ascending and disjoint' }
    ranges.push([from, to])
  }
  return { ok: true, confirmation: { boot, seqs: ranges } }
}

export interface OutboxOptions {
  /** Readings held at most, not counting those in flight (rule 1). */
  capacity: number
  /** This boot's number: confirmations for any other boot release nothing. */
  boot: number
  /** Publishes awaiting their PUBACK at once; default 16. */
  window?: number
  /** Rule 5: the first probe period; default 10 s. */
  ackTimeoutMs?: number
  /** Rule 5: the probe period doubles up to this; default 5 min. */
  ackTimeoutMaxMs?: number
  /** Rule 6: no confirmation this long after a connection's first PUBACK means "broker" mode; default 60 s. */
  ackFallbackMs?: number
  /** Rule 3: only readings PUBACKed at least this long ago count as lost; default 1 s. */
  ackReorderMs?: number
}

/** A publish to make: `item`, under send number `send` (hand it back to `puback`/`publishFailed`). */
export interface Send<T> {
  item: T
  send: number
  /** This reading was published before (after a reconnect, a gap, or as a probe). */
  resend: boolean
}

export interface ConfirmResult<T> {
  /** False: another boot's ranges, nothing released (it still counts as a confirmation for rule 6). */
  currentBoot: boolean
  /** The readings released, oldest first. */
  released: T[]
  /** Held readings sent before a released one, marked for sending again (rule 3). */
  remarked: number
  /** The mode was `broker` and is `gateway` again. */
  backToGateway: boolean
}

export interface PollResult<T> {
  /** Rule 6 switched to `broker` mode now. */
  fellBack: boolean
  /** Readings released by that switch (they had their PUBACK). */
  released: T[]
  /** Rule 5: the oldest held reading was marked for sending again; the next period is `ackTimeoutMs`. */
  probe: T | undefined
}

/** Counts since the outbox was created (one boot). */
export interface OutboxCounts {
  /** Readings dropped because the outbox was full (rule 1). */
  dropped: number
  /** Readings published for the first time. */
  published: number
  /** Publishes of readings published before: after a reconnect, a gap, or as a probe. */
  resent: number
  /** Probes (rule 5), also counted in `resent` once published. */
  probes: number
  /** Readings released: confirmed by the gateway, or PUBACKed in broker mode. */
  released: number
  /** Of those, released by a confirmation of the gateway. */
  confirmed: number
}

interface Slot<T> {
  item: T
  /** Send number of its last publish on this connection; 0 while unsent. */
  send: number
  /** Its last publish got a PUBACK. */
  pubacked: boolean
  /** When that PUBACK came (rule 3's reorder window). */
  pubackMs: number
  /** Published at least once (so the next publish is a resend). */
  everSent: boolean
}

function covers(ranges: ReadonlyArray<readonly [number, number]>, seq: number): boolean {
  return ranges.some(([from, to]) => from <= seq && seq <= to)
}

function positive(name: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`${name} must be a positive number of ms, got ${v}`)
  return v
}

export class DeviceOutbox<T extends { readonly seq: number }> {
  readonly capacity: number
  readonly boot: number
  readonly window: number
  private readonly timeoutMs: number
  private readonly timeoutMaxMs: number
  private readonly fallbackMs: number
  private readonly reorderMs: number
  // A plain array, oldest first: capacities are thousands of small objects, and V8 trims the front
  // of an array in place on shift(), so drop-oldest stays cheap without ring index arithmetic.
  private slots: Array<Slot<T>> = []
  /** Slots in flight, by send number. */
  private readonly inflightBySend = new Map<number, Slot<T>>()
  private unsentCount = 0
  private nextSend = 1
  private currentMode: ConfirmMode = 'gateway'
  // rule 5
  private period: number
  /** The later of: the oldest held reading was last published, the last confirmation of this boot. */
  private probeRefMs = 0
  // rule 6, per connection
  private heard = false
  private firstPubackMs: number | undefined
  private readonly totals: OutboxCounts = { dropped: 0, published: 0, resent: 0, probes: 0, released: 0, confirmed: 0 }

  constructor(opts: OutboxOptions) {
    if (!(Number.isInteger(opts.capacity) && opts.capacity >= 1)) throw new RangeError(`buffer capacity must be a positive integer, got ${opts.capacity}`)
    this.capacity = opts.capacity
    this.boot = opts.boot
    this.window = Math.max(1, opts.window ?? 16)
    this.timeoutMs = positive('ackTimeoutMs', opts.ackTimeoutMs ?? 10_000)
    this.timeoutMaxMs = Math.max(this.timeoutMs, positive('ackTimeoutMaxMs', opts.ackTimeoutMaxMs ?? 300_000))
    this.fallbackMs = positive('ackFallbackMs', opts.ackFallbackMs ?? 60_000)
    this.reorderMs = Math.max(0, opts.ackReorderMs ?? 1000)
    this.period = this.timeoutMs
  }

  /** Rule 1: appends `item`; returns the readings dropped to make room (the oldest not in flight), usually none. */
  push(item: T): T[] {
    const dropped: T[] = []
    while (this.slots.length - this.inflightBySend.size >= this.capacity) {
      const i = this.slots.findIndex((s) => !this.isInflight(s))
      const [slot] = i === 0 ? [this.slots.shift()!] : this.slots.splice(i, 1)
      if (slot!.send === 0) this.unsentCount--
      dropped.push(slot!.item)
    }
    this.totals.dropped += dropped.length
    this.slots.push({ item, send: 0, pubacked: false, pubackMs: 0, everSent: false })
    this.unsentCount++
    return dropped
  }

  /**
   * Rule 4: a new connection. Anything published before may be lost (the broker may have restarted),
   * so everything held is unsent again, in order, and nothing is in flight. Rule 6 starts watching
   * this connection. The mode itself is kept.
   */
  connected(): void {
    for (const slot of this.slots) {
      slot.send = 0
      slot.pubacked = false
    }
    this.inflightBySend.clear()
    this.unsentCount = this.slots.length
    this.heard = false
    this.firstPubackMs = undefined
  }

  /** Rule 2: the oldest unsent reading, now in flight under a new send number; undefined when none or the window is full. */
  next(nowMs: number): Send<T> | undefined {
    if (this.unsentCount === 0 || this.inflightBySend.size >= this.window) return undefined
    const i = this.slots.findIndex((s) => s.send === 0)
    const slot = this.slots[i]!
    slot.send = this.nextSend++
    slot.pubacked = false
    this.unsentCount--
    this.inflightBySend.set(slot.send, slot)
    const resend = slot.everSent
    slot.everSent = true
    if (resend) this.totals.resent++
    else this.totals.published++
    if (i === 0) this.probeRefMs = nowMs
    return { item: slot.item, send: slot.send, resend }
  }

  /**
   * The broker's PUBACK for send number `send`. Returns the readings it released: in broker mode that
   * reading, in gateway mode none. A PUBACK for a send that is no longer in flight (an older
   * connection's, or released meanwhile) is ignored.
   */
  puback(send: number, nowMs: number): T[] {
    const slot = this.inflightBySend.get(send)
    if (!slot) return []
    this.inflightBySend.delete(send)
    slot.pubacked = true
    slot.pubackMs = nowMs
    this.firstPubackMs ??= nowMs
    if (this.currentMode === 'gateway') return []
    return this.release((s) => s === slot, false)
  }

  /** Publishing send number `send` failed for good (the MQTT client dropped it): it is unsent again. */
  publishFailed(send: number): void {
    const slot = this.inflightBySend.get(send)
    if (slot) this.markUnsent(slot)
  }

  /** Rules 3 and 6: a well-formed confirmation (see `parseConfirmation`) arrived. */
  confirm(c: Confirmation, nowMs: number): ConfirmResult<T> {
    this.heard = true
    const backToGateway = this.currentMode === 'broker'
    this.currentMode = 'gateway'
    if (c.boot !== this.boot) return { currentBoot: false, released: [], remarked: 0, backToGateway }
    this.period = this.timeoutMs
    this.probeRefMs = nowMs
    let latest = 0
    const released = this.release((s) => {
      if (!covers(c.seqs, s.item.seq)) return false
      // Only a PUBACKed send says where the gateway is: one still in flight was confirmed as an older copy.
      if (s.pubacked) latest = Math.max(latest, s.send)
      return true
    }, true)
    let remarked = 0
    for (const slot of this.slots) {
      if (slot.pubacked && slot.send < latest && nowMs - slot.pubackMs >= this.reorderMs) {
        this.markUnsent(slot)
        remarked++
      }
    }
    return { currentBoot: true, released, remarked, backToGateway }
  }

  /** Rules 5 and 6, due at `nextDeadline()`; call while connected. */
  poll(nowMs: number): PollResult<T> {
    const result: PollResult<T> = { fellBack: false, released: [], probe: undefined }
    if (this.currentMode === 'gateway' && !this.heard && this.firstPubackMs !== undefined && nowMs - this.firstPubackMs >= this.fallbackMs) {
      this.currentMode = 'broker'
      result.fellBack = true
      result.released = this.release((s) => s.pubacked, false)
    }
    const oldest = this.slots[0]
    if (this.currentMode === 'gateway' && oldest?.pubacked && nowMs - this.probeRefMs >= this.period) {
      this.markUnsent(oldest)
      this.totals.probes++
      this.period = Math.min(this.period * 2, this.timeoutMaxMs)
      result.probe = oldest.item
    }
    return result
  }

  /** When `poll` has something to do next (epoch of the `nowMs` given), or undefined while nothing is due. */
  nextDeadline(): number | undefined {
    if (this.currentMode === 'broker') return undefined
    const fallback = !this.heard && this.firstPubackMs !== undefined ? this.firstPubackMs + this.fallbackMs : Infinity
    const probe = this.slots[0]?.pubacked ? this.probeRefMs + this.period : Infinity
    const at = Math.min(fallback, probe)
    return at === Infinity ? undefined : at
  }

  /** The held readings, oldest first. */
  items(): T[] {
    return this.slots.map((s) => s.item)
  }

  get mode(): ConfirmMode {
    return this.currentMode
  }

  /** Readings held: not yet released, whether sent or not. */
  get held(): number {
    return this.slots.length
  }

  /** Held readings waiting for their (next) publish. */
  get unsent(): number {
    return this.unsentCount
  }

  /** Publishes waiting for their PUBACK. */
  get inflight(): number {
    return this.inflightBySend.size
  }

  /** What happened since this outbox was created. */
  get counts(): Readonly<OutboxCounts> {
    return { ...this.totals }
  }

  /** The current probe period (rule 5). */
  get ackTimeoutMs(): number {
    return this.period
  }

  private isInflight(slot: Slot<T>): boolean {
    return slot.send !== 0 && !slot.pubacked
  }

  private markUnsent(slot: Slot<T>): void {
    if (slot.send === 0) return
    this.inflightBySend.delete(slot.send)
    slot.send = 0
    slot.pubacked = false
    this.unsentCount++
  }

  /** Removes the slots `which` picks, keeping the order of the rest; returns their items. */
  private release(which: (s: Slot<T>) => boolean, byGateway: boolean): T[] {
    const released: T[] = []
    const kept: Array<Slot<T>> = []
    for (const slot of this.slots) {
      if (!which(slot)) {
        kept.push(slot)
        continue
      }
      if (slot.send === 0) this.unsentCount--
      else this.inflightBySend.delete(slot.send)
      released.push(slot.item)
    }
    if (released.length === 0) return released
    this.slots = kept
    this.totals.released += released.length
    if (byGateway) this.totals.confirmed += released.length
    return released
  }
}
