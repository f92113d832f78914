import pRetry, { AbortError } from 'p-retry'
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises'
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
  /** The timers the drainer waits with (idle, failed back-off); tests pass a compressed clock. Default: the global ones. */
  timers?: DrainTimers
}

/** `setTimeout`/`clearTimeout`, injectable so a test can run simulated hours in seconds. */
export interface DrainTimers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

const realTimers: DrainTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}

/**
 * `failed`: the drain loop itself threw (not the sink: e.g. the buffer database is locked by another
 * process); it starts again after a back-off, and the state says `failed` meanwhile.
 */
export type DrainerState = 'starting' | 'idle' | 'sending' | 'retrying' | 'failed' | 'stopped-auth' | 'stopped-endpoint' | 'stopped'

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

/**
 * Most delivered readings deleted per transaction while idle: a few tens of milliseconds of work, so
 * ingest and the API keep their turns on the event loop between chunks.
 */
export const PRUNE_CHUNK = 20_000

/** A batch sent and not yet settled. */
interface Inflight {
  batch: BufferedReading[]
  result: Promise<WriteResult | undefined>
  started: number
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
 * - An exception from the loop itself (reading the buffer, settling, pruning: e.g. `SQLITE_BUSY:
 *   database is locked` while another process holds the write lock past the busy timeout) puts the
 *   drainer in state `failed` (status, `ferry_drainer_failed`, `/healthz` 503, the error recorded for
 *   `ferry status` when the database takes it) and starts the loop again after a back-off from
 *   `retryMinMs` doubling to `retryMaxMs`, forever: such errors are usually transient, and the data
 *   stays buffered. The first batch settled, or idle pass, after it clears the failure.
 */
export class Drainer {
  state: DrainerState = 'starting'
  lastError: { class: string; message: string; at: number } | undefined
  progress: Progress | undefined
  private readonly abort = new AbortController()
  private wake: (() => void) | undefined
  private loop: Promise<void> | undefined
  private readonly log: Logger
  private readonly timers: DrainTimers
  /** Consecutive failures of the loop itself (state `failed`); 0 while it runs normally. */
  private failures = 0
  /** `sink.resume` ran (once per start, not again when the loop restarts after a failure). */
  private resumed = false
  /** `notify` was called since the idle pass began: new readings wait, so pruning stops early. */
  private woken = false

  constructor(private readonly opts: DrainerOptions) {
    this.log = opts.log.child({ component: 'drain', sink: opts.sink.name })
    this.timers = opts.timers ?? realTimers
    opts.buffer.ensureSink(opts.sink.name)
  }

  get name(): string {
    return this.opts.sink.name
  }

  start(): void {
    this.loop ??= this.supervise()
  }

  /** New readings were committed: wake the loop if it is idle. */
  notify(): void {
    this.woken = true
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
    this.recordError(errorClass, message)
    this.opts.onEvent?.({ type: 'error', sink: this.name, errorClass, message })
  }

  /**
   * Stores the error for `ferry status`. Best effort: when the database itself is what fails (locked),
   * the error is still in `lastError`, the state, the metrics and the log.
   */
  private recordError(code: string | null, message: string | null): void {
    try {
      this.opts.buffer.recordSinkError(this.name, code, message)
    } catch (err) {
      this.log.debug({ err: { message: (err as Error).message } }, 'could not record the sink error in the buffer database')
    }
  }

  /**
   * Waits `ms`, or until `stop` (and `notify`, when `wakeable`). The abort listener is removed when
   * the wait ends: an idle drainer waits every second, and a listener left behind each time grew
   * without bound (~86,400 a day per sink).
   */
  private idle(ms: number, wakeable = true): Promise<void> {
    const signal = this.abort.signal
    if (signal.aborted) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const done = () => {
        this.timers.clearTimeout(timer)
        signal.removeEventListener('abort', done)
        if (this.wake === done) this.wake = undefined
        resolve()
      }
      const timer = this.timers.setTimeout(done, ms)
      if (wakeable) this.wake = done
      signal.addEventListener('abort', done, { once: true })
    })
  }

  /**
   * Runs the drain loop until stopped; when the loop throws (see the class comment), shows the
   * drainer as `failed` and starts the loop again after a back-off.
   */
  private async supervise(): Promise<void> {
    const signal = this.abort.signal
    while (!signal.aborted) {
      try {
        await this.run()
        return
      } catch (err) {
        if (signal.aborted) return
        this.failures++
        const delayMs = Math.min(this.opts.retryMaxMs, this.opts.retryMinMs * 2 ** Math.min(this.failures - 1, 30))
        const e = err as Error & { code?: string }
        const message = `${e.code ? e.code + ': ' : ''}${e.message}`
        this.progress = undefined
        this.setState('failed')
        this.fail('failed', message)
        // The first failure with the stack, then every 10th, so a long outage does not flood the log.
        if (this.failures === 1 || this.failures % 10 === 0) {
          this.log.error({ err, failures: this.failures, retryInMs: delayMs }, 'drainer failed (not a sink error); starting it again after a back-off, data stays buffered')
        }
        // New readings do not cut the back-off short (ingest would wake it at every commit).
        await this.idle(delayMs, false)
      }
    }
  }

  /** The loop went round again after failing (settled a batch, or found nothing to send): clears the failure. */
  private recovered(): void {
    if (this.failures === 0) return
    this.log.info({ failures: this.failures }, 'drainer recovered')
    this.failures = 0
    this.setState('sending')
    if (this.lastError?.class === 'failed') {
      this.lastError = undefined
      this.recordError(null, null)
    }
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal
    const { sink } = this.opts
    if (sink.resume && !this.resumed) {
      await this.retrying(() => this.sinkCall(() => sink.resume!(signal), signal))
      this.resumed = true
    }
    // Up to `concurrency` batches in flight, in order. The cursor still moves strictly in order: a
    // batch is settled only after every batch before it, and if one is not passed completely, the
    // batches sent after it are waited for, their answers ignored, and reading restarts at the cursor
    // (re-sending them is harmless where concurrency > 1 is allowed: InfluxDB overwrites the same points).
    const inflight: Inflight[] = []
    // The writes of this pass: aborted by stop(), and when the loop throws, so that the failure shows
    // (and the loop starts again) without waiting for a sink that is down to answer.
    const pass = new AbortController()
    const onStop = () => pass.abort()
    signal.addEventListener('abort', onStop, { once: true })
    try {
      await this.drain(pass.signal, Math.max(1, sink.concurrency ?? 1), inflight)
    } catch (err) {
      pass.abort()
      throw err
    } finally {
      signal.removeEventListener('abort', onStop)
      // The writes in flight end before the loop starts again from the cursor.
      await Promise.allSettled(inflight.map((x) => x.result))
    }
  }

  private async drain(signal: AbortSignal, concurrency: number, inflight: Inflight[]): Promise<void> {
    const { sink } = this.opts
    let lastProgress = 0
    let sentSinceProgress = 0
    let readAfter = this.opts.buffer.cursor(sink.name)
    while (!signal.aborted) {
      while (inflight.length < concurrency) {
        const batch = this.opts.buffer.readFrom(readAfter, sink.maxBatch)
        if (batch.length === 0) break
        readAfter = batch[batch.length - 1]!.id
        if (!this.failures) this.setState('sending') // after a failure: still `failed` until a batch settles
        inflight.push({ batch, result: this.retrying(() => this.attempt(batch, signal), signal), started: performance.now() })
      }
      const head = inflight.shift()
      if (!head) {
        await this.pruneWhileIdle(signal)
        this.recovered()
        this.setState('idle')
        this.progress = undefined
        await this.idle(1000)
        readAfter = this.opts.buffer.cursor(sink.name)
        continue
      }
      const result = await head.result
      if (result === undefined) break // aborted or auth failure
      const settled = this.opts.buffer.settle(sink.name, head.batch, result)
      this.recovered()
      sentSinceProgress += settled.advanced
      this.opts.onEvent?.({ type: 'settled', sink: sink.name, accepted: settled.accepted, rejected: settled.rejected, ms: performance.now() - head.started })
      if (settled.rejected > 0) this.log.warn({ rejected: settled.rejected, reason: result.rejected[0]?.reason }, 'sink rejected readings; moved them to dead letters')
      if (settled.advanced > 0 && this.lastError) {
        this.lastError = undefined
        this.recordError(null, null)
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
      }
    }
  }

  /**
   * Deletes what every sink has delivered (`RingBuffer.prune`) once there is nothing to send, in
   * chunks of PRUNE_CHUNK with a turn of the event loop between them, until nothing is left to delete
   * or new readings arrive. Not while a backlog drains: deleting a delivered reading costs about a
   * third of the CPU of reading, encoding and compressing it, plus writes and fsyncs of its own, all
   * on the path of catching up after an outage (docs/buffer-storage.md#pruning). Delivered rows still
   * count against the buffer's limits, and a full buffer deletes them first at ingest, so the bound
   * holds meanwhile.
   */
  private async pruneWhileIdle(signal: AbortSignal): Promise<void> {
    this.woken = false
    while (!signal.aborted && !this.woken) {
      if (this.opts.buffer.prune(PRUNE_CHUNK) < PRUNE_CHUNK) return
      await nextTurn()
    }
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
      // The sink says which stop it is: refused credentials, or an endpoint that does not exist (docs/errors.md).
      throw new AbortError(new FerryError(result.stopCode ?? 'FERRY_ERR_SINK_AUTH', result.authError))
    }
    // Whether the first row was settled; no Set of the whole batch (thousands of ids per backlog batch).
    const first = batch[0]?.id
    if (first !== undefined && !result.accepted.includes(first) && !result.rejected.some((r) => r.id === first)) {
      throw new RetryableWrite(result.errorClass ?? 'retryable', result.errorMessage ?? 'the sink asked to retry', result.retryAfterMs)
    }
    return result
  }

  /** Runs `fn` until it succeeds; undefined when `signal` aborts (stopping) or when the sink refused our credentials. */
  private async retrying<T>(fn: () => Promise<T>, signal = this.abort.signal): Promise<T | undefined> {
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
        if (hasCode(error, 'FERRY_ERR_SINK_ENDPOINT')) {
          this.fail('endpoint', error.message)
          this.setState('stopped-endpoint')
          this.log.error({ err: { message: error.message } }, 'the sink has no such write endpoint; this sink is stopped, data stays buffered. Fix the URL or FERRY_INFLUX_VERSION and restart the gateway')
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
