import pRetry, { AbortError } from 'p-retry'
import { setTimeout as sleep } from 'node:timers/promises'
import { FerryError, hasCode } from '../../../common/src/errors.js'
import type { Logger } from '../../../common/src/logger.js'
import type { RingBuffer } from '../buffer/index.js'
import type { BufferedReading, Sink, WriteResult } from '../sinks/types.js'
import { classifySinkError } from './classify-error.js'

export interface DrainerOptions {
  sink: Sink
  buffer: RingBuffer
  log: Logger
  /** Backoff bounds for network errors, 5xx and other retryable answers (p-retry, with jitter). */
  retryMinMs: number
  retryMaxMs: number
  /** Longest pause a server's Retry-After may impose. */
  retryAfterCapMs: number
  /** How often progress is logged (and stored for `ferry status`) while a backlog drains. */
  progressEveryMs: number
  /** Called after each settled batch and on state changes (metrics, API). */
  onEvent?: (e: DrainEvent) => void
}

export type DrainerState = 'starting' | 'idle' | 'sending' | 'retrying' | 'stopped-auth' | 'stopped'

export type DrainEvent =
  | { type: 'settled'; sink: string; accepted: number; rejected: number; ms: number }
  | { type: 'error'; sink: string; errorClass: string; message: string }
  | { type: 'state'; sink: string; state: DrainerState }

export interface Progress {
  rowsLeft: number
  ratePerS: number
  etaS: number | null
  at: number
}

/** Settles with `p`, or rejects with the abort reason as soon as `signal` aborts. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(e as Error)
      },
    )
  })
}

/**
 * A failed attempt that p-retry should retry, carrying what the server said, or (`cause`) what the
 * sink threw.
 */
class RetryableWrite extends Error {
  constructor(
    readonly errorClass: string,
    message: string,
    readonly retryAfterMs?: number,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause })
  }
}

/**
 * One drainer per sink: reads from the sink's cursor, sends batches oldest first, and moves the cursor
 * only over what the sink accepted or permanently rejected (`RingBuffer.settle`). A failing sink only
 * ever waits in its own loop, so it cannot hold back ingest or the other sinks.
 *
 * - Transport errors and retryable answers (429, 5xx, ...) retry with exponential backoff and jitter
 *   (p-retry), and never give up; Retry-After is honoured up to `retryAfterCapMs`.
 * - An exception from the sink is classified (`classifySinkError`): `network` or `io` is logged as a
 *   warning, anything else is `error`, a bug, logged at ERROR with its stack. All are retried the same
 *   way; the data stays buffered.
 * - 401/403 stop this sink, record the alert (status, log at ERROR, metric) and keep buffering; the
 *   backlog drains after the credentials are fixed and the gateway restarted.
 */
export class Drainer {
  state: DrainerState = 'starting'
  lastError: { class: string; message: string; at: number } | undefined
  progress: Progress | undefined
  private readonly abort = new AbortController()
  private wake: (() => void) | undefined
  private loop: Promise<void> | undefined
  private readonly log: Logger

  constructor(private readonly opts: DrainerOptions) {
    this.log = opts.log.child({ component: 'drain', sink: opts.sink.name })
    opts.buffer.ensureSink(opts.sink.name)
  }

  get name(): string {
    return this.opts.sink.name
  }

  start(): void {
    this.loop ??= this.run().catch((err) => {
      this.log.error({ err }, 'drainer stopped unexpectedly')
    })
  }

  /** New readings were committed: wake the loop if it is idle. */
  notify(): void {
    this.wake?.()
  }

  /** Stops after the write in flight (aborted) and closes the sink. */
  async stop(): Promise<void> {
    this.abort.abort()
    this.wake?.()
    await this.loop
    await this.opts.sink.close()
    this.setState('stopped')
  }

  private setState(state: DrainerState): void {
    if (this.state === state) return
    this.state = state
    this.opts.onEvent?.({ type: 'state', sink: this.name, state })
  }

  private fail(errorClass: string, message: string): void {
    this.lastError = { class: errorClass, message, at: Date.now() }
    this.opts.buffer.recordSinkError(this.name, errorClass, message)
    this.opts.onEvent?.({ type: 'error', sink: this.name, errorClass, message })
  }

  private async idle(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.wake = done
      this.abort.signal.addEventListener('abort', done, { once: true })
    })
    this.wake = undefined
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal
    const { sink } = this.opts
    if (sink.resume) {
      await this.retrying(() => this.sinkCall(() => sink.resume!(signal), signal))
    }
    let lastProgress = 0
    let sentSinceProgress = 0
    // Up to `concurrency` batches in flight, in order. The cursor still moves strictly in order: a
    // batch is settled only after every batch before it, and if one is not passed completely, the
    // batches sent after it are waited for, their answers ignored, and reading restarts at the cursor
    // (re-sending them is harmless where concurrency > 1 is allowed: InfluxDB overwrites the same points).
    const concurrency = Math.max(1, sink.concurrency ?? 1)
    const inflight: Array<{ batch: BufferedReading[]; result: Promise<WriteResult | undefined>; started: number }> = []
    let readAfter = this.opts.buffer.cursor(sink.name)
    while (!signal.aborted) {
      while (inflight.length < concurrency) {
        const batch = this.opts.buffer.readFrom(readAfter, sink.maxBatch)
        if (batch.length === 0) break
        readAfter = batch[batch.length - 1]!.id
        this.setState('sending')
        inflight.push({ batch, result: this.retrying(() => this.attempt(batch, signal)), started: performance.now() })
      }
      const head = inflight.shift()
      if (!head) {
        this.setState('idle')
        this.progress = undefined
        this.opts.buffer.prune()
        await this.idle(1000)
        readAfter = this.opts.buffer.cursor(sink.name)
        continue
      }
      const result = await head.result
      if (result === undefined) break // aborted or auth failure
      const settled = this.opts.buffer.settle(sink.name, head.batch, result)
      sentSinceProgress += settled.advanced
      this.opts.onEvent?.({ type: 'settled', sink: sink.name, accepted: settled.accepted, rejected: settled.rejected, ms: performance.now() - head.started })
      if (settled.rejected > 0) this.log.warn({ rejected: settled.rejected, reason: result.rejected[0]?.reason }, 'sink rejected readings; moved them to dead letters')
      if (settled.advanced > 0 && this.lastError) {
        this.lastError = undefined
        this.opts.buffer.recordSinkError(sink.name, null, null)
      }
      if (settled.advanced < head.batch.length) {
        await Promise.allSettled(inflight.map((x) => x.result))
        inflight.length = 0
        readAfter = this.opts.buffer.cursor(sink.name)
      }
      const now = Date.now()
      if (now - lastProgress >= this.opts.progressEveryMs) {
        this.reportProgress(sentSinceProgress, now - lastProgress, lastProgress === 0)
        lastProgress = now
        sentSinceProgress = 0
        this.opts.buffer.prune()
      }
    }
    await Promise.allSettled(inflight.map((x) => x.result))
  }

  private reportProgress(sent: number, elapsedMs: number, first: boolean): void {
    const rowsLeft = this.opts.buffer.backlogEstimate(this.name)
    const ratePerS = first || elapsedMs <= 0 ? 0 : (sent * 1000) / elapsedMs
    this.progress = { rowsLeft, ratePerS: Math.round(ratePerS), etaS: ratePerS > 0 ? Math.round(rowsLeft / ratePerS) : null, at: Date.now() }
    this.opts.buffer.setMeta(`progress:${this.name}`, this.progress)
    if (rowsLeft > 0 && !first) this.log.info(this.progress, 'draining backlog')
  }

  /**
   * Calls the sink; an exception becomes a RetryableWrite of its class (`classifySinkError`), or an
   * AbortError when stopping.
   */
  private async sinkCall<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    try {
      // Sinks honour the signal, but one that does not must not be able to hang a shutdown.
      return await untilAborted(fn(), signal)
    } catch (err) {
      if (signal.aborted) throw new AbortError('stopping')
      const e = err as Error & { code?: string }
      throw new RetryableWrite(classifySinkError(err), `${e.code ? e.code + ': ' : ''}${e.message}`, undefined, err)
    }
  }

  /** One write; retryable outcomes throw so p-retry backs off; auth failures stop the sink. */
  private async attempt(batch: readonly BufferedReading[], signal: AbortSignal): Promise<WriteResult> {
    const result = await this.sinkCall(() => this.opts.sink.write(batch, signal), signal)
    if (result.authError) {
      throw new AbortError(new FerryError('FERRY_ERR_SINK_AUTH', result.authError))
    }
    const settled = new Set([...result.accepted, ...result.rejected.map((r) => r.id)])
    if (batch.length > 0 && !settled.has(batch[0]!.id)) {
      throw new RetryableWrite(result.errorClass ?? 'retryable', result.errorMessage ?? 'the sink asked to retry', result.retryAfterMs)
    }
    return result
  }

  /** Runs `fn` until it succeeds; undefined when stopping or when the sink refused our credentials. */
  private async retrying<T>(fn: () => Promise<T>): Promise<T | undefined> {
    const signal = this.abort.signal
    for (;;) {
      try {
        return await pRetry(fn, {
          retries: Number.MAX_SAFE_INTEGER,
          minTimeout: this.opts.retryMinMs,
          maxTimeout: this.opts.retryMaxMs,
          factor: 2,
          randomize: true,
          signal,
          onFailedAttempt: async ({ error, attemptNumber }) => {
            const failure = error as RetryableWrite
            const errorClass = failure.errorClass ?? 'error'
            this.setState('retrying')
            this.fail(errorClass, failure.message)
            // One line per failure would flood the log during a long outage: the first and then every 10th.
            if (attemptNumber === 1 || attemptNumber % 10 === 0) {
              if (errorClass === 'error') {
                // Not a network or disk failure: most likely a bug in the sink. Loud, with the stack.
                this.log.error({ attempt: attemptNumber, errorClass, err: failure.cause ?? failure }, 'sink threw an error that is not a network failure (a bug?); will retry, data stays buffered')
              } else {
                this.log.warn({ attempt: attemptNumber, errorClass, err: { message: failure.message } }, 'sink write failed; will retry, data stays buffered')
              }
            }
            if (failure.retryAfterMs !== undefined && failure.retryAfterMs > 0) {
              await sleep(Math.min(failure.retryAfterMs, this.opts.retryAfterCapMs), undefined, { signal }).catch(() => undefined)
            }
          },
        })
      } catch (err) {
        if (signal.aborted) return undefined
        const error = err as Error
        if (hasCode(error, 'FERRY_ERR_SINK_AUTH')) {
          this.fail('auth', error.message)
          this.setState('stopped-auth')
          this.log.error({ err: { message: error.message } }, 'sink refused the credentials; this sink is stopped, data stays buffered. Fix the credentials and restart the gateway')
          return undefined
        }
        // p-retry does not retry programming errors (TypeError); still keep the data and try later.
        this.fail('internal', error.message)
        this.log.error({ err }, 'sink failed unexpectedly; retrying later, data stays buffered')
        await this.idle(this.opts.retryMaxMs)
        if (signal.aborted) return undefined
      }
    }
  }
}
