/**
 * Runway: how long the buffer can absorb the current ingest rate before it must drop (or, with
 * FERRY_BUFFER_ON_FULL=backpressure, push back), and how long a sink's backlog takes to drain. Plain
 * arithmetic on what the buffer keeps anyway: no query scans a table for it.
 */

/**
 * Time constant of the ingest rate: a change in the rate shows by about two thirds after this long.
 * Minutes, not seconds: the runway is hours or days, and a fleet that reports every few seconds
 * commits unevenly.
 */
export const RATE_TAU_MS = 5 * 60_000

/** `meta` keys the running gateway writes for `ferry status` (which cannot ask the gateway). */
export const META_BUFFER_LIMITS = 'buffer_limits'
export const META_INGEST_RATE = 'ingest_rate'
export const META_INGEST_PAUSED = 'ingest_paused'

/** The ingest rate as stored in `meta`: readings per second at `at`. */
export interface RateSnapshot {
  perS: number
  at: number
}

/**
 * Readings committed per second, as an exponentially weighted moving average over time (τ = 5 min):
 * each commit adds `n / τ` and the sum decays by e^(−Δt/τ), which for a steady rate r settles at r and
 * with nothing committed falls towards 0. Until τ has passed since `startedAt` the sum is divided by
 * the weight seen so far (1 − e^(−elapsed/τ)), so a fresh gateway reports its average since start
 * instead of a rate still climbing from 0. Less than one reading per τ reads as 0: no rate to speak
 * of. O(1) per commit.
 */
export class IngestRate {
  private sum = 0
  private at: number

  constructor(private readonly startedAt: number, private readonly tauMs = RATE_TAU_MS) {
    this.at = startedAt
  }

  add(readings: number, now: number): void {
    this.sum = this.decayed(now) + (readings * 1000) / this.tauMs
    this.at = Math.max(this.at, now)
  }

  /** Readings per second at `now`. */
  perS(now: number): number {
    // At least one second of history, so one commit right after start does not read as a huge rate.
    const elapsed = Math.max(now - this.startedAt, 1000)
    return atLeastOnePerTau(this.decayed(now) / (1 - Math.exp(-elapsed / this.tauMs)), this.tauMs)
  }

  /** The rate at `now`, as if `pending` more readings were added then (a commit not yet made). */
  snapshot(now: number, pending = 0): RateSnapshot {
    const sum = this.sum
    const at = this.at
    this.add(pending, now)
    const perS = this.perS(now)
    this.sum = sum
    this.at = at
    return { perS, at: now }
  }

  private decayed(now: number): number {
    return this.sum * Math.exp(-Math.max(0, now - this.at) / this.tauMs)
  }
}

/** A stored snapshot decayed to `now`, as the gateway's meter would be had nothing been committed since. */
export function rateAt(s: RateSnapshot | undefined, now: number, tauMs = RATE_TAU_MS): number {
  if (!s) return 0
  return atLeastOnePerTau(s.perS * Math.exp(-Math.max(0, now - s.at) / tauMs), tauMs)
}

const atLeastOnePerTau = (perS: number, tauMs: number) => (perS * tauMs < 1000 ? 0 : perS)

export interface Runway {
  /** What happens when the runway ends: the oldest undelivered readings are dropped, or ingest pauses. */
  onFull: 'drop-oldest' | 'backpressure'
  /** Readings committed per second, recently (see `IngestRate`). */
  ingestPerS: number
  /** Readings and payload bytes that fit before the limits are reached by undelivered readings. */
  freeRows: number
  freeBytes: number
  /** Free room divided by the ingest rate; 0 while ingest is paused by backpressure; null when nothing comes in. */
  seconds: number | null
}

/**
 * The runway of a buffer holding `held` readings, `undelivered` of which some sink still needs.
 * Delivered readings make room when needed, so only undelivered ones count against the limits; their
 * bytes are estimated from the average payload (held bytes / held readings), as is the byte rate.
 */
export function runway(
  limits: { maxRows: number; maxBytes: number; onFull?: 'drop-oldest' | 'backpressure' | undefined },
  held: { rows: number; bytes: number },
  undelivered: number,
  ingestPerS: number,
): Runway {
  const avgBytes = held.rows > 0 ? held.bytes / held.rows : 0
  const freeRows = Math.max(0, limits.maxRows - undelivered)
  const freeBytes = Math.max(0, Math.floor(limits.maxBytes - undelivered * avgBytes))
  let seconds: number | null = null
  if (ingestPerS > 0) {
    const byRows = freeRows / ingestPerS
    const byBytes = avgBytes > 0 ? freeBytes / (ingestPerS * avgBytes) : Infinity
    seconds = Math.floor(Math.min(byRows, byBytes))
  }
  return { onFull: limits.onFull ?? 'drop-oldest', ingestPerS: round2(ingestPerS), freeRows, freeBytes, seconds }
}

/**
 * Seconds until a sink's backlog of `rows` is delivered while readings keep coming in: rows divided by
 * what the sink sends per second beyond the ingest rate. 0 with no backlog; null when the backlog is
 * not shrinking (the sink is failing, has not reported a rate yet, or sends no faster than ingest).
 */
export function drainEtaS(rows: number, sendPerS: number | null, ingestPerS: number): number | null {
  if (rows <= 0) return 0
  if (sendPerS === null) return null
  const net = sendPerS - ingestPerS
  return net > 0 ? Math.ceil(rows / net) : null
}

const round2 = (n: number) => Math.round(n * 100) / 100
