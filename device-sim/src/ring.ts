/**
 * The device's offline buffer: readings wait here until the broker acknowledged them.
 *
 * Two parts, both in RAM (a reset loses them, as on the ESP32,
 * docs/firmware-notes.md#offline-buffer):
 * - `queued`: a fixed-capacity FIFO of readings not yet handed to MQTT. When it is full the OLDEST is
 *   dropped and counted, never the newest (firmware/README.md#how-it-behaves; `ferry::RingBuffer`).
 * - `inflight`: readings published at QoS 1 whose PUBACK has not arrived yet, at most `window`.
 *   They leave the buffer only on PUBACK. If the connection drops, MQTT.js keeps them in its session
 *   store and resends them (DUP) first thing after reconnecting, before anything new is published,
 *   so order is kept. They are not subject to drop-oldest: they are already in the MQTT session and
 *   will arrive, so counting them as dropped would be a lie.
 * Memory is therefore bounded by `capacity + window` readings.
 */
export class OfflineBuffer<T> {
  // A plain array: capacities are thousands of small objects, and V8 trims the front of an array in
  // place on shift(), so this stays O(1) amortised without ring index arithmetic.
  private readonly q: T[] = []
  private readonly flight: T[] = []
  private droppedTotal = 0

  constructor(readonly capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new RangeError(`buffer capacity must be a positive integer, got ${capacity}`)
  }

  /** Appends `v`; returns the entries dropped to make room (the oldest queued ones), usually none. */
  push(v: T): T[] {
    const dropped: T[] = []
    while (this.q.length >= this.capacity) dropped.push(this.q.shift() as T)
    this.droppedTotal += dropped.length
    this.q.push(v)
    return dropped
  }

  /** Moves the oldest queued entry to in-flight and returns it; undefined when nothing is queued. */
  take(): T | undefined {
    const v = this.q.shift()
    if (v !== undefined) this.flight.push(v)
    return v
  }

  /** The PUBACK for `v` arrived: it leaves the buffer. Returns false if it was not in flight. */
  ack(v: T): boolean {
    const i = this.flight.indexOf(v)
    if (i < 0) return false
    this.flight.splice(i, 1)
    return true
  }

  /**
   * Publishing `v` failed for good (the MQTT client was ended with it unacknowledged): put it back
   * at the front of the queue, in its original order, so it goes first next time. The queue may
   * exceed `capacity` by the in-flight window until the next push trims it (oldest first).
   */
  requeue(v: T, order: (a: T, b: T) => number): boolean {
    const i = this.flight.indexOf(v)
    if (i < 0) return false
    this.flight.splice(i, 1)
    let k = 0
    while (k < this.q.length && order(this.q[k] as T, v) < 0) k++
    this.q.splice(k, 0, v)
    return true
  }

  /** Queued entries, oldest first (not including in-flight ones). */
  queuedItems(): readonly T[] {
    return this.q
  }

  /** Entries waiting to be handed to MQTT. */
  get queued(): number {
    return this.q.length
  }

  /** Entries published and waiting for their PUBACK. */
  get inflight(): number {
    return this.flight.length
  }

  /** Everything not yet acknowledged. */
  get pending(): number {
    return this.q.length + this.flight.length
  }

  /** Entries dropped since this buffer was created because the queue was full. */
  get dropped(): number {
    return this.droppedTotal
  }
}
