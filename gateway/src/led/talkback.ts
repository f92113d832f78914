import { setTimeout as sleep } from 'node:timers/promises'
import { Counter, type Registry } from 'prom-client'
import type { Logger } from '../../../common/src/logger.js'
import { parseRetryAfter, serverMessage } from '../sinks/http/classify.js'
import type { TalkBackSettings } from './config.js'
import { parseLedCommand } from './parse.js'
import type { LedRelay } from './relay.js'

export interface TalkBackPollerOptions extends TalkBackSettings {
  relay: LedRelay
  log: Logger
  /**
   * False while a command taken off the queue could not be published or recorded (broker unreachable,
   * disk full): the queue is then left alone so commands wait in the cloud.
   */
  ready: () => boolean
  registry?: Registry
  now?: () => number
  /** Per request. */
  timeoutMs?: number
}

/** What one poll did. */
export type PollOutcome = 'command' | 'empty' | 'skipped' | 'error'

export interface TalkBackStatus {
  talkbackId: string
  state: 'starting' | 'polling' | 'waiting-for-broker' | 'backing-off' | 'auth-failed' | 'stopped'
  intervalMs: number
  polls: number
  commands: number
  lastPollAt: number | null
  lastOkAt: number | null
  lastCommandAt: number | null
  lastError: { status: number | null; message: string; at: number } | null
}

/** A TalkBack command object (docs/cloud-apis.md#thingspeak-talkback); only the fields we use. */
interface TalkBackCommand {
  id?: number | string
  command_string?: string
  created_at?: string
}

/** Longest stop() waits for a poll in flight before it abandons the request. */
const STOP_WAIT_MS = 2000

/** Longest pause a Retry-After may impose. */
const RETRY_AFTER_CAP_MS = 3_600_000

/**
 * Polls a ThingSpeak TalkBack queue and hands each command to the LED relay.
 *
 * `POST /talkbacks/<id>/commands/execute.json` with `api_key` dequeues the next command (FIFO) and
 * answers it as JSON, or an empty answer when the queue is empty
 * (docs/cloud-apis.md#thingspeak-talkback; the exact empty body is unconfirmed: `{}` on the legacy
 * server, empty text per the docs; both are accepted). Because executing removes the command from
 * the cloud queue, the poller only polls while the broker session is up and the disk has room, so a
 * command is never taken off the queue when it cannot be published or recorded.
 *
 * A dequeued command is committed to the commands table (led/store.ts) before anything else happens
 * to it: nothing is awaited between reading the answer and the commit (`LedRelay.send` and `reject`
 * insert before their first await), so a crash after that finds it `pending` and the relay publishes
 * it at the next start. What remains is the answer itself: once ThingSpeak has taken the command off
 * its queue, an answer lost in transit (connection reset, timeout, the gateway killed or stopped
 * before the body arrived) loses it (docs/cloud-apis.md#thingspeak-talkback).
 *
 * Pacing: one call per `intervalMs`; after a failure the pause doubles up to 16 × the interval, and a
 * `Retry-After` (not documented for ThingSpeak, honoured if present) can lengthen it. A refused key
 * (401/403, or the legacy `-1` answer) or unknown TalkBack (404) is logged at ERROR once and retried
 * at the longest pause.
 */
export class TalkBackPoller {
  private readonly opts: TalkBackPollerOptions
  private readonly now: () => number
  private readonly counter: Counter<'result'> | undefined
  private readonly abort = new AbortController()
  /** Aborts a request in flight: only when stop() has waited for it in vain. */
  private readonly abandon = new AbortController()
  private loop: Promise<void> | undefined
  private failures = 0
  /** What `status()` reports, kept up to date as polls happen. */
  private readonly pollStatus: TalkBackStatus

  constructor(opts: TalkBackPollerOptions) {
    this.opts = opts
    this.now = opts.now ?? Date.now
    this.counter = opts.registry
      ? new Counter({ name: 'ferry_talkback_polls_total', help: 'TalkBack queue polls by result (command, empty, skipped while the broker is down, error).', labelNames: ['result'] as const, registers: [opts.registry] })
      : undefined
    this.pollStatus = { talkbackId: opts.talkbackId, state: 'starting', intervalMs: opts.intervalMs, polls: 0, commands: 0, lastPollAt: null, lastOkAt: null, lastCommandAt: null, lastError: null }
  }

  /** Starts polling (the first poll happens at once). */
  start(): void {
    this.loop ??= this.run()
    this.opts.log.info({ talkback: this.opts.talkbackId, intervalMs: this.opts.intervalMs, url: this.opts.baseUrl }, 'polling the TalkBack queue for LED commands')
  }

  /**
   * Stops; a poll in flight finishes first, so a command it dequeued is recorded before the relay and
   * the database close. Bounded, so a hanging TalkBack cannot hold up the gateway's 5-second
   * shutdown: a request still unanswered after STOP_WAIT_MS is abandoned (aborted), so no answer is
   * handled after the database has closed. Idempotent.
   */
  async stop(): Promise<void> {
    this.abort.abort()
    if (this.loop && !(await settlesWithin(this.loop, STOP_WAIT_MS))) {
      this.opts.log.warn(
        { talkback: this.opts.talkbackId, waitedMs: STOP_WAIT_MS },
        'TalkBack did not answer before the shutdown; abandoned the request. If TalkBack had already taken a command off its queue for it, that command is lost: check the TalkBack and queue it again',
      )
      this.abandon.abort()
      await settlesWithin(this.loop, STOP_WAIT_MS / 4)
    }
    this.pollStatus.state = 'stopped'
  }

  status(): TalkBackStatus {
    return { ...this.pollStatus, lastError: this.pollStatus.lastError ? { ...this.pollStatus.lastError } : null }
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal
    while (!signal.aborted) {
      const { outcome, delayMs } = await this.pollOnce().catch((err: unknown) => {
        // Defensive: a bug here must not end polling for good.
        this.opts.log.error({ err }, 'TalkBack poll failed unexpectedly; retrying')
        return { outcome: 'error' as const, delayMs: this.opts.intervalMs * 16 }
      })
      this.counter?.inc({ result: outcome })
      try {
        await sleep(delayMs, undefined, { signal })
      } catch {
        return
      }
    }
  }

  /** One poll; returns what happened and how long to wait before the next. */
  async pollOnce(): Promise<{ outcome: PollOutcome; delayMs: number }> {
    const interval = this.opts.intervalMs
    const longest = interval * 16
    if (!this.opts.ready()) {
      this.pollStatus.state = 'waiting-for-broker'
      return { outcome: 'skipped', delayMs: interval }
    }
    const url = `${this.opts.baseUrl}/talkbacks/${encodeURIComponent(this.opts.talkbackId)}/commands/execute.json`
    this.pollStatus.polls++
    this.pollStatus.lastPollAt = this.now()
    let status: number
    let body: string
    let headers: Headers
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ api_key: this.opts.apiKey }).toString(),
        // Not aborted by stop() at once: a command the server has already dequeued must still be
        // recorded. Only a request stop() has waited for in vain is abandoned.
        signal: AbortSignal.any([AbortSignal.timeout(this.opts.timeoutMs ?? 10_000), this.abandon.signal]),
      })
      status = res.status
      headers = res.headers
      body = (await res.text()).slice(0, 64 * 1024)
    } catch (err) {
      if (this.abandon.signal.aborted) return { outcome: 'error', delayMs: 0 }
      const e = err as Error & { cause?: { code?: string; message?: string } }
      return this.fail(null, `request failed: ${e.cause?.code ?? ''} ${e.cause?.message ?? e.message}`.replace(/\s+/g, ' ').trim(), undefined, false)
    }
    const retryAfter = parseRetryAfter(headers.get('retry-after') ?? undefined, this.now)
    const text = body.trim()
    if (status === 401 || status === 403 || (status === 200 && text === '-1')) {
      this.pollStatus.state = 'auth-failed'
      const msg = status === 200 ? 'answered -1 (the answer to a wrong key)' : `refused the key (${status}: ${serverMessage(status, {}, body)})`
      const first = this.pollStatus.lastError?.status !== status
      this.recordError(status, `TalkBack ${this.opts.talkbackId} ${msg}`)
      if (first) this.opts.log.error({ talkback: this.opts.talkbackId, status }, `TalkBack ${msg}; set FERRY_THINGSPEAK_TALKBACK_KEY to the TalkBack's API key. Retrying every ${Math.round(longest / 1000)} s`)
      this.failures++
      return { outcome: 'error', delayMs: longest }
    }
    if (status === 404) {
      const first = this.pollStatus.lastError?.status !== 404
      this.recordError(404, `TalkBack ${this.opts.talkbackId} not found`)
      if (first) this.opts.log.error({ talkback: this.opts.talkbackId }, `TalkBack ${this.opts.talkbackId} not found (404); check FERRY_THINGSPEAK_TALKBACK_ID. Retrying every ${Math.round(longest / 1000)} s`)
      this.pollStatus.state = 'backing-off'
      this.failures++
      return { outcome: 'error', delayMs: longest }
    }
    if (status < 200 || status >= 300) return this.fail(status, serverMessage(status, {}, body), retryAfter, true)

    this.failures = 0
    this.pollStatus.state = 'polling'
    this.pollStatus.lastOkAt = this.now()
    if (this.pollStatus.lastError) {
      this.opts.log.info({ talkback: this.opts.talkbackId }, 'TalkBack answers again')
      this.pollStatus.lastError = null
    }
    const command = readAnswer(text)
    if (command === 'empty') return { outcome: 'empty', delayMs: interval }
    if (command === 'unreadable') {
      this.opts.log.warn({ talkback: this.opts.talkbackId, body: text.slice(0, 200) }, 'TalkBack answered something that is not a command; ignored')
      return { outcome: 'error', delayMs: interval }
    }
    this.pollStatus.commands++
    this.pollStatus.lastCommandAt = this.now()
    try {
      await this.deliver(command)
    } catch (err) {
      // E.g. SQLite failed to commit: the command has left the cloud queue; say what it was.
      this.opts.log.error(
        { err, talkback: this.opts.talkbackId, commandId: command.id, command: command.command_string, createdAt: command.created_at },
        'handling a command taken off the TalkBack queue failed; unless the commands table has it (GET /api/commands), it is lost: queue it again',
      )
      return { outcome: 'error', delayMs: longest }
    }
    return { outcome: 'command', delayMs: interval }
  }

  private async deliver(command: TalkBackCommand): Promise<void> {
    const raw = String(command.command_string ?? '')
    const ref = command.id === undefined ? undefined : String(command.id)
    const log = this.opts.log
    const parsed = parseLedCommand(raw)
    if (!parsed.ok) {
      const rec = this.opts.relay.reject('talkback', raw, parsed.reason, ref)
      log.warn({ talkback: this.opts.talkbackId, commandId: ref, cmd: rec.cmd, reason: parsed.reason }, 'TalkBack command refused')
      return
    }
    const device = parsed.device ?? this.opts.defaultDevice
    if (!device) {
      const reason = 'no device named; send {"device":"<id>","brightness":N} or set FERRY_TALKBACK_DEFAULT_DEVICE'
      const rec = this.opts.relay.reject('talkback', raw, reason, ref)
      log.warn({ talkback: this.opts.talkbackId, commandId: ref, cmd: rec.cmd }, `TalkBack command refused: ${reason}`)
      return
    }
    // The command's age counts from when it was queued in the cloud, so a command that waited while
    // the gateway was offline expires on time instead of being delivered late.
    const now = this.now()
    const created = command.created_at ? Date.parse(command.created_at) : NaN
    const since = Number.isFinite(created) && created <= now ? created : now
    const expiresAt = parsed.expires ?? since + this.opts.ttlMs
    await this.opts.relay.send({ device, brightness: parsed.brightness, expiresAt, source: 'talkback', raw, ...(ref ? { sourceRef: ref } : {}) }, { waitMs: 1000 })
  }

  private fail(status: number | null, message: string, retryAfterMs: number | undefined, http: boolean): { outcome: PollOutcome; delayMs: number } {
    this.failures++
    this.pollStatus.state = 'backing-off'
    const interval = this.opts.intervalMs
    let delay = Math.min(interval * 16, interval * 2 ** this.failures)
    if (retryAfterMs !== undefined) delay = Math.max(delay, Math.min(retryAfterMs, RETRY_AFTER_CAP_MS))
    this.recordError(status, message)
    // One WARN per failure streak, then DEBUG: a cloud outage must not flood the log.
    const level = this.failures === 1 ? 'warn' : 'debug'
    this.opts.log[level]({ talkback: this.opts.talkbackId, status, failures: this.failures, retryInMs: delay }, `TalkBack poll failed${http ? ` with HTTP ${status}` : ''}: ${message}; retrying (queued commands wait in the cloud)`)
    return { outcome: 'error', delayMs: delay }
  }

  private recordError(status: number | null, message: string): void {
    this.pollStatus.lastError = { status, message, at: this.now() }
  }
}

/** True when `p` settles within `ms` (either way); false when the time ran out first. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const settled = p.then(() => true, () => true)
  const out = await Promise.race([settled, new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)))])
  clearTimeout(timer)
  return out
}

/** Reads an `execute.json` answer: a command object, empty (`''`, `{}`, `null`), or unreadable. */
export function readAnswer(text: string): TalkBackCommand | 'empty' | 'unreadable' {
  if (text === '' || text === '{}' || text === 'null' || text === '[]') return 'empty'
  if (text.startsWith('{')) {
    try {
      const command = JSON.parse(text) as TalkBackCommand
      if (typeof command.command_string === 'string') return command
      return Object.keys(command).length === 0 ? 'empty' : 'unreadable'
    } catch {
      return 'unreadable'
    }
  }
  // The text form (`execute` without `.json`) answers the bare command string; a proxy's HTML page is not a command.
  if (text.startsWith('<') || text.length > 255) return 'unreadable'
  return { command_string: text }
}
