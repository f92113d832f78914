/**
 * The device's outbox: every reading waits here, online or not, until the broker acknowledged it.
 * It is the firmware's offline buffer, the device's own store-and-forward queue: not esp-mqtt's
 * outbox (which expires entries) nor MQTT.js's session store.
 *
 * Two parts, both in RAM (a reset loses them, as on the ESP32,
 * docs/firmware-notes.md#offline-buffer):
 * - `queued`: a fixed-capacity FIFO of readings not yet handed to MQTT. When it is full the OLDEST is
 *   dropped and counted, never the newest (firmware/README.md#how-it-behaves; `ferry::RingBuffer`).
 * - `inflight`: readings published at QoS 1 whose PUBACK has not arrived yet, at most `window`.
 *   They leave the outbox only on PUBACK. If the connection drops, MQTT.js keeps them in its session
 *   store and resends them (DUP) first thing after reconnecting, before anything new is published,
 *   so order is kept. They are not subject to drop-oldest: they are already in the MQTT session and
 *   will arrive, so counting them as dropped would be a lie.
 * Memory is therefore bounded by `capacity + window` readings.
 */
export class DeviceOutbox<T> {
  // A plain array: capacities are thousands of small objects, and V8 trims the front of an array in
  // place on shift(), so this stays O(1) amortised without ring index arithmetic.
  /** Not yet handed to MQTT, oldest first. */
  private readonly queue: T[] = []
  /** Published, waiting for their PUBACK. */
  private readonly awaitingAck: T[] = []
  private droppedTotal = 0

  constructor(readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new RangeError(`buffer capacity must be a positive integer, got ${capacity}`)
  }

  /** Appends `entry`; returns the entries dropped to make room (the oldest queued ones), usually none. */
  push(entry: T): T[] {
    const dropped: T[] = []
    while (this.queue.length >= this.capacity) dropped.push(this.queue.shift() as T)
    this.droppedTotal += dropped.length
    this.queue.push(entry)
    return dropped
  }

  /** Moves the oldest queued entry to in-flight and returns it; undefined when nothing is queued. */
  take(): T | undefined {
    const entry = this.queue.shift()
    if (entry !== undefined) this.awaitingAck.push(entry)
    return entry
  }

  /** The PUBACK for `entry` arrived: it leaves the outbox. Returns false if it was not in flight. */
  ack(entry: T): boolean {
    const i = this.awaitingAck.indexOf(entry)
    if (i < 0) return false
    this.awaitingAck.splice(i, 1)
    return true
  }

  /**
   * Publishing `entry` failed for good (the MQTT client was ended with it unacknowledged): put it back
   * at the front of the queue, in its original order, so it goes first next time. The queue may
   * exceed `capacity` by the in-flight window until the next push trims it (oldest first).
   */
  requeue(entry: T, order: (a: T, b: T) => number): boolean {
    const i = this.awaitingAck.indexOf(entry)
    if (i < 0) return false
    this.awaitingAck.splice(i, 1)
    let k = 0
    while (k < this.queue.length && order(this.queue[k] as T, entry) < 0) k++
    this.queue.splice(k, 0, entry)
    return true
  }

  /** Queued entries, oldest first (not including in-flight ones). */
  queuedItems(): readonly T[] {
    return this.queue
  }

  /** Entries waiting to be handed to MQTT. */
  get queued(): number {
    return this.queue.length
  }

  /** Entries published and waiting for their PUBACK. */
  get inflight(): number {
    return this.awaitingAck.length
  }

  /** Everything not yet acknowledged. */
  get pending(): number {
    return this.queue.length + this.awaitingAck.length
  }

  /** Entries dropped since this outbox was created because the queue was full. */
  get dropped(): number {
    return this.droppedTotal
  }
}
