import type { IngestItem, IngestOutcome, RingBuffer } from '../buffer/index.js'

export interface BatcherOptions {
  buffer: RingBuffer
  /** Commit when this many messages are pending ... */
  maxItems: number
  /** ... or when the oldest pending message has waited this long. */
  maxDelayMs: number
  /** After every successful commit (acks already released); `committed` is the group, in arrival order. */
  onCommit?: (info: { items: number; outcome: IngestOutcome; ms: number; committed: readonly IngestItem[] }) => void
  /** A commit failed (e.g. SQLITE_FULL). Nothing of the batch was stored or acknowledged. */
  onError?: (err: Error, items: number) => void
}

/**
 * Group commit. Messages wait in memory, unacknowledged, until the transaction holding them commits;
 * only then are their acknowledgements released, in arrival order. One commit (and with
 * `synchronous=FULL` one fsync) covers up to `maxItems` messages, which is what lets a power-loss-safe
 * buffer keep up with the broker. If the commit throws, the acknowledgements are dropped: the broker
 * still holds the messages and redelivers them after the next reconnect.
 */
export class Batcher {
  private items: IngestItem[] = []
  private acks: Array<() => void> = []
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly opts: BatcherOptions) {}

  get pending(): number {
    return this.items.length
  }

  add(item: IngestItem, release: () => void): void {
    this.items.push(item)
    this.acks.push(release)
    if (this.items.length >= this.opts.maxItems) this.flush()
    else this.timer ??= setTimeout(() => this.flush(), this.opts.maxDelayMs)
  }

  /** Commits what is pending now. Returns false if the commit failed. */
  flush(): boolean {
    clearTimeout(this.timer)
    this.timer = undefined
    if (this.items.length === 0) return true
    const items = this.items
    const acks = this.acks
    this.items = []
    this.acks = []
    const started = performance.now()
    let outcome: IngestOutcome
    try {
      outcome = this.opts.buffer.ingest(items)
    } catch (err) {
      this.opts.onError?.(err as Error, items.length)
      return false
    }
    // The transaction has committed: now, and only now, the broker may hear "got it".
    for (const release of acks) release()
    this.opts.onCommit?.({ items: items.length, outcome, ms: performance.now() - started, committed: items })
    return true
  }

  /** Forgets pending messages without acknowledging them (the broker redelivers). */
  discard(): number {
    clearTimeout(this.timer)
    this.timer = undefined
    const n = this.items.length
    this.items = []
    this.acks = []
    return n
  }
}
