/**
 * What a sink factory may be handed besides its config: a logger and, where time matters, a clock
 * and a sleep, so tests can run a 15-second rate limit without waiting 15 seconds.
 */
import { setTimeout as delay } from 'node:timers/promises'
import { silentLogger, type Logger } from '../../../common/src/logger.js'

export interface SinkDeps {
  /** Parent logger; the sink takes a child `{ component: 'sink', sink: <name> }`. */
  log?: Logger
  /** Milliseconds since the epoch. */
  now?: () => number
  /** Resolves after `ms`; rejects with the abort reason when `signal` fires. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
}

/** Real time. */
export const realClock = {
  now: (): number => Date.now(),
  sleep: (ms: number, signal: AbortSignal): Promise<void> => delay(Math.max(0, ms), undefined, { signal }),
}

/** Fills in defaults for the optional deps. */
export function resolveDeps(deps: SinkDeps, sink: string): Required<SinkDeps> {
  return {
    log: (deps.log ?? silentLogger).child({ component: 'sink', sink }),
    now: deps.now ?? realClock.now,
    sleep: deps.sleep ?? realClock.sleep,
  }
}
