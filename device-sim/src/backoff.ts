/**
 * Reconnect backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 * `delay = random(0 .. min(cap, base * 2^attempt))`, the same rule as the firmware's
 * `ferry::backoff_delay_ms` (firmware/lib/ferry_core/src/backoff.cpp,
 * docs/firmware-notes.md#reconnect-backoff). A fleet that lost its broker at the same moment does
 * not come back in lockstep.
 */

/**
 * The delay before retry number `attempt` (0-based). `rnd` is a draw in [0, 1). The exponent is
 * clamped, so a huge attempt count never overflows past `capMs`.
 */
export function backoffDelayMs(attempt: number, baseMs: number, capMs: number, rnd: number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(attempt, 0), 31))
  return Math.floor(rnd * (ceiling + 1))
}

/**
 * Retry scheduling around `backoffDelayMs`. The attempt counter resets only after a connection that
 * lasted `stableMs`, so a link that connects and drops at once keeps backing off instead of
 * hammering the broker (like `ferry::Reconnector`).
 */
export class Reconnector {
  private attempt = 0
  private connectedAt: number | undefined

  constructor(
    private readonly opts: { baseMs: number; capMs: number; stableMs: number; random?: () => number; now?: () => number },
  ) {}

  /** The attempt failed (or the connection ended): returns the delay before the next attempt. */
  next(): number {
    const now = (this.opts.now ?? Date.now)()
    if (this.connectedAt !== undefined && now - this.connectedAt >= this.opts.stableMs) this.attempt = 0
    this.connectedAt = undefined
    const delayMs = backoffDelayMs(this.attempt, this.opts.baseMs, this.opts.capMs, (this.opts.random ?? Math.random)())
    if (this.attempt < 31) this.attempt++
    return delayMs
  }

  /** A connection was established. */
  connected(): void {
    this.connectedAt = (this.opts.now ?? Date.now)()
  }

  /** How many consecutive attempts have failed. */
  get attempts(): number {
    return this.attempt
  }
}
