/**
 * ThingSpeak sink: `POST /channels/<id>/bulk_update.json`
 * (docs/cloud-apis.md#thingspeak-bulk-update) with one entry per device per aggregation window
 * (rule in aggregate.ts and the README), one channel for all devices or one per device.
 *
 * Account limits are enforced here, not discovered by being refused:
 * - bulk calls to one channel are at least `FERRY_THINGSPEAK_INTERVAL_MS` apart (measured from the
 *   previous answer), waited out inside `write` with the injectable clock; with several replicas
 *   writing the same channel (`FERRY_THINGSPEAK_WRITERS` = n), n times that, so the channel sees at
 *   most its allowed rate from all of them together (docs/scale-out.md#thingspeak);
 * - at most `FERRY_THINGSPEAK_MAX_ENTRIES` entries per call; the rest of the batch stays retryable;
 * - 429 → retryable after Retry-After (or one interval: ThingSpeak documents no header);
 *   402 (yearly quota spent) → retryable with class `quota_exhausted` and a long pause; data kept.
 *
 * Exactly once as far as ThingSpeak can tell: it does not overwrite a repeated `created_at`, so a
 * replay must not re-send. In a run, delivered row ids are remembered; after a restart `resume()`
 * reads the channel's last entry and rows at or before that second count as delivered. ThingSpeak
 * answers `-1` (with 200) when it will not let us read a channel (docs/cloud-apis.md#thingspeak-last-entry):
 * that is a refused key, not an empty channel, so by default the sink stops with an alert naming the
 * read key setting (`FERRY_THINGSPEAK_ON_UNREADABLE=continue` delivers without it, at the risk of
 * re-sending what a crash left unconfirmed).
 */
import { classifyHttp, serverMessage, type HttpVerdict } from '../http/classify.js'
import { writeBisecting } from '../http/bisect.js'
import { resolveDeps, type SinkDeps } from '../deps.js'
import { HttpClient } from '../http/client.js'
import type { BufferedReading, Sink, WriteResult } from '../types.js'
import { aggregate, isoSeconds, secondOf, type Entry } from './aggregate.js'
import { channelMap, type ChannelTarget, type ThingSpeakConfig } from './config.js'

type RowState = { kind: 'ok' } | { kind: 'rejected'; reason: string } | { kind: 'pending' }

/** The ThingSpeak sink. Build it with `createThingSpeakSink`. */
export class ThingSpeakSink implements Sink {
  readonly name = 'thingspeak'
  readonly maxBatch: number
  private readonly http: HttpClient
  private readonly deps: Required<SinkDeps>
  private readonly byDevice: Map<string, ChannelTarget>
  private readonly fallback: ChannelTarget | undefined
  /** Channel → time of the previous bulk answer (the 15 s rule is counted from there). */
  private readonly lastCallAt = new Map<string, number>()
  /** Channel → newest `created_at` second the channel holds (from resume or our own writes). */
  private readonly held = new Map<string, number>()
  /** Channel → newest second found by `resume`: older rows count as already delivered. */
  private readonly resumeHeld = new Map<string, number>()
  /** Row ids delivered in this run, so a replay of a partly settled batch never re-sends them. */
  private readonly sent = new Set<number>()
  /** Row ids ThingSpeak refused in this run, with the reason (no need to ask again). */
  private readonly refused = new Map<number, string>()
  /** Set by `resume` when a channel may not be read and the sink stops (`FERRY_THINGSPEAK_ON_UNREADABLE=stop`). */
  private unreadable: string | undefined
  private closed = false

  constructor(private readonly cfg: ThingSpeakConfig, deps: SinkDeps = {}) {
    const channels = channelMap(cfg)
    this.byDevice = channels.byDevice
    this.fallback = channels.fallback
    this.maxBatch = cfg.FERRY_THINGSPEAK_BATCH_SIZE
    this.deps = resolveDeps(deps, this.name)
    this.http = new HttpClient({ url: cfg.FERRY_THINGSPEAK_URL, timeoutMs: cfg.FERRY_THINGSPEAK_TIMEOUT_MS, label: 'ThingSpeak', connections: 1 })
  }

  /**
   * Reads each channel's last entry (`GET /channels/<id>/feeds/last.json`) so rows a crash made us
   * send twice are skipped. `-1` means "no access" on the hosted service, but the legacy server
   * also answered `-1` for an empty channel, so `feeds.json` is asked to tell them apart: it answers
   * an empty channel with its metadata and an empty `feeds` list. A refused read stops the sink at the
   * next `write` (or, with `FERRY_THINGSPEAK_ON_UNREADABLE=continue`, is logged and skips nothing).
   * Other failures (5xx, 404) are logged and skip nothing; transport errors throw (the drainer retries).
   */
  async resume(signal: AbortSignal): Promise<void> {
    const targets = new Map<string, ChannelTarget>()
    for (const t of [...this.byDevice.values(), ...(this.fallback ? [this.fallback] : [])]) targets.set(t.channelId, t)
    for (const target of targets.values()) {
      const last = await this.readLast(target, signal)
      const channel = target.channelId
      if (last.kind === 'entry' && this.cfg.FERRY_THINGSPEAK_WRITERS > 1) {
        // Another replica may have written that entry: rows of ours up to it may never have been sent.
        this.deps.log.info({ channel, lastEntry: isoSeconds(last.createdAtS), writers: this.cfg.FERRY_THINGSPEAK_WRITERS }, 'thingspeak channel shared by several gateways (FERRY_THINGSPEAK_WRITERS): nothing skipped on restart; a reading sent just before a crash may be sent again, and ThingSpeak drops a repeated created_at')
      } else if (last.kind === 'entry') {
        this.held.set(channel, Math.max(last.createdAtS, this.held.get(channel) ?? -Infinity))
        this.resumeHeld.set(channel, last.createdAtS)
        this.deps.log.info({ channel, lastEntry: isoSeconds(last.createdAtS) }, 'thingspeak channel read; older readings count as delivered')
      } else if (last.kind === 'empty') {
        this.deps.log.info({ channel }, 'thingspeak channel has no entries yet')
      } else if (last.kind === 'refused') {
        const key = this.readKeySetting(channel)
        const why = `ThingSpeak refused to read channel ${channel} (${last.what}): the channel is private and ${key} is ${target.readKey ? 'not its Read API key' : 'not set'}`
        if (this.cfg.FERRY_THINGSPEAK_ON_UNREADABLE === 'continue') {
          this.deps.log.warn({ channel, status: last.status }, `${why}. Delivering anyway (FERRY_THINGSPEAK_ON_UNREADABLE=continue): readings sent just before a crash cannot be recognised after it and may be sent again (ThingSpeak drops or refuses a repeated created_at; a refused one ends in the dead letters)`)
        } else {
          this.unreadable ??= `${why}. Set it to the channel's Read API key so a restart can skip what the channel already holds, or set FERRY_THINGSPEAK_ON_UNREADABLE=continue to deliver without it (readings sent just before a crash may then be sent again). Readings stay buffered; restart the gateway after fixing.`
          this.deps.log.error({ channel, status: last.status }, why)
        }
      } else {
        this.deps.log.warn({ channel, status: last.status, body: last.body.slice(0, 200) }, 'cannot read the thingspeak channel\'s last entry; a replay after a crash may send entries twice')
      }
    }
  }

  async write(batch: readonly BufferedReading[], signal: AbortSignal): Promise<WriteResult> {
    signal.throwIfAborted()
    if (batch.length === 0) return { accepted: [], retryable: [], rejected: [] }
    if (this.unreadable) {
      return { accepted: [], rejected: [], retryable: batch.map((r) => r.id), authError: this.unreadable, errorClass: 'read_refused', errorMessage: this.unreadable }
    }
    this.forgetBefore((batch[0] as BufferedReading).id)

    const state = new Map<number, RowState>()
    const toSend: BufferedReading[] = []
    for (const row of batch) {
      const target = this.targetOf(row.device)
      if (!target) {
        state.set(row.id, { kind: 'rejected', reason: `no ThingSpeak channel for device ${row.device}; map it in FERRY_THINGSPEAK_CHANNELS or set FERRY_THINGSPEAK_CHANNEL_ID, then requeue` })
      } else if (this.refused.has(row.id)) {
        state.set(row.id, { kind: 'rejected', reason: this.refused.get(row.id) as string })
      } else if (this.sent.has(row.id) || secondOf(row) <= (this.resumeHeld.get(target.channelId) ?? -Infinity)) {
        state.set(row.id, { kind: 'ok' })
      } else {
        state.set(row.id, { kind: 'pending' })
        toSend.push(row)
      }
    }

    const byChannel = aggregate(toSend, (r) => (this.targetOf(r.device) as ChannelTarget).channelId, this.cfg.FERRY_THINGSPEAK_WINDOW_MS, (c) => this.held.get(c))
    const order = [...byChannel.entries()].sort((a, b) => minId(a[1]) - minId(b[1]))
    let failure: Partial<WriteResult> | undefined
    let transportError: unknown
    for (const [channelId, entries] of order) {
      // One call per channel per write: it keeps a write short (one interval at most per channel).
      const items = entries.slice(0, this.cfg.FERRY_THINGSPEAK_MAX_ENTRIES).map((entry, i) => ({ id: i, entry }))
      let channelResult: WriteResult
      try {
        channelResult = await writeBisecting(items, (part) => this.post(channelId, part.map((x) => x.entry), signal), signal, {
          reasonPrefix: (s) => `ThingSpeak ${s}: `,
          maxRequests: 64,
        })
      } catch (err) {
        if (signal.aborted) throw err
        transportError = err
        break
      }
      for (const i of channelResult.accepted) {
        const entry = (items[i] as { entry: Entry }).entry
        for (const row of entry.rows) {
          state.set(row.id, { kind: 'ok' })
          this.sent.add(row.id)
        }
        this.held.set(channelId, Math.max(entry.createdAtS, this.held.get(channelId) ?? -Infinity))
      }
      for (const { id, reason } of channelResult.rejected) {
        for (const row of (items[id] as { entry: Entry }).entry.rows) {
          state.set(row.id, { kind: 'rejected', reason })
          this.refused.set(row.id, reason)
        }
      }
      if (channelResult.retryable.length) {
        failure = { ...pick(channelResult), ...(channelResult.authError ? { authError: this.authMessage(channelId, channelResult.authError) } : {}) }
        break
      }
    }

    // Settled rows form a prefix in buffer order; from the first unsettled row on, all is retryable.
    // Rows delivered after that point are remembered in `sent`, so the next write skips them.
    const result: WriteResult = { accepted: [], retryable: [], rejected: [] }
    let cut = false
    for (const row of batch) {
      const rowState = state.get(row.id) as RowState
      if (!cut && rowState.kind === 'pending') cut = true
      if (cut) result.retryable.push(row.id)
      else if (rowState.kind === 'ok') result.accepted.push(row.id)
      else if (rowState.kind === 'rejected') result.rejected.push({ id: row.id, reason: rowState.reason })
    }
    if (transportError !== undefined) {
      if (result.accepted.length === 0 && result.rejected.length === 0) throw transportError
      Object.assign(result, { errorClass: 'network', errorMessage: (transportError as Error).message })
    }
    if (failure) Object.assign(result, failure)
    this.deps.log.debug({ rows: batch.length, entries: toSend.length, accepted: result.accepted.length, retryable: result.retryable.length, errorClass: result.errorClass }, 'thingspeak batch written')
    return result
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.http.close()
  }

  /** The last entry a channel holds, as far as we may know (see `resume`). */
  private async readLast(target: ChannelTarget, signal: AbortSignal): Promise<
    | { kind: 'entry'; createdAtS: number }
    | { kind: 'empty' }
    | { kind: 'refused'; status: number; what: string }
    | { kind: 'unknown'; status: number; body: string }
  > {
    const ask = (path: string, query: Record<string, string | undefined>) =>
      this.http.request({ method: 'GET', path: `/channels/${target.channelId}${path}`, query: { ...query, api_key: target.readKey }, signal })
    const last = await ask('/feeds/last.json', {})
    if (last.status === 200) {
      const createdAtS = createdAtOf(parseJson(last.body))
      if (createdAtS !== undefined) return { kind: 'entry', createdAtS }
    }
    if (last.status === 401 || last.status === 403) return { kind: 'refused', status: last.status, what: `feeds/last.json answered ${last.status}: ${serverMessage(last.status, last.headers, last.body)}` }
    if (last.body.trim() !== '-1') return { kind: 'unknown', status: last.status, body: last.body }
    const feeds = await ask('/feeds.json', { results: '1' })
    const json = feeds.status === 200 ? parseJson(feeds.body) : undefined
    if (json && typeof json === 'object' && Array.isArray((json as { feeds?: unknown }).feeds)) {
      const list = (json as { feeds: unknown[] }).feeds
      const createdAtS = createdAtOf(list[list.length - 1])
      return createdAtS === undefined ? { kind: 'empty' } : { kind: 'entry', createdAtS }
    }
    if (feeds.body.trim() === '-1' || feeds.status === 401 || feeds.status === 403) {
      return { kind: 'refused', status: last.status, what: `feeds/last.json answered ${last.status} with -1 and feeds.json ${feeds.status}${feeds.body.trim() === '-1' ? ' with -1' : ''}` }
    }
    return { kind: 'unknown', status: feeds.status, body: feeds.body }
  }

  /** The setting that holds a channel's read key. */
  private readKeySetting(channelId: string): string {
    return [...this.byDevice.values()].some((t) => t.channelId === channelId)
      ? 'its read key in FERRY_THINGSPEAK_CHANNELS (<device>=<channel id>:<write key>:<read key>)'
      : 'FERRY_THINGSPEAK_READ_KEY'
  }

  private targetOf(device: string): ChannelTarget | undefined {
    return this.byDevice.get(device) ?? this.fallback
  }

  /** Ids below the drainer's cursor will never come back; keep the memory bounded. */
  private forgetBefore(id: number): void {
    for (const x of this.sent) if (x < id) this.sent.delete(x)
    for (const x of this.refused.keys()) if (x < id) this.refused.delete(x)
  }

  /** Waits until this channel may be written again (the account's update interval). */
  private async waitTurn(channelId: string, signal: AbortSignal): Promise<void> {
    const last = this.lastCallAt.get(channelId)
    if (last === undefined) return
    const wait = last + this.cfg.FERRY_THINGSPEAK_INTERVAL_MS * this.cfg.FERRY_THINGSPEAK_WRITERS - this.deps.now()
    if (wait > 0) await this.deps.sleep(wait, signal)
  }

  private async post(channelId: string, entries: readonly Entry[], signal: AbortSignal): Promise<HttpVerdict> {
    const target = [...this.byDevice.values(), this.fallback].find((t) => t?.channelId === channelId) as ChannelTarget
    await this.waitTurn(channelId, signal)
    const body = JSON.stringify({
      write_api_key: target.writeKey,
      updates: entries.map((e) => ({
        created_at: isoSeconds(e.createdAtS),
        field1: e.pot,
        field2: e.switch,
        ...(e.led !== null ? { field3: e.led } : {}),
        status: e.device,
      })),
    })
    let res
    try {
      res = await this.http.request({ method: 'POST', path: `/channels/${channelId}/bulk_update.json`, headers: { 'content-type': 'application/json' }, body, signal })
    } finally {
      // Even a failed call may have counted against the interval; never hurry the next one.
      this.lastCallAt.set(channelId, this.deps.now())
    }
    const interval = this.cfg.FERRY_THINGSPEAK_INTERVAL_MS
    if (res.status === 402) {
      return {
        kind: 'retry',
        status: 402,
        errorClass: 'quota_exhausted',
        reason: `ThingSpeak says the account's message quota is spent (402) for channel ${channelId}; readings stay buffered and are retried in ${Math.round(this.cfg.FERRY_THINGSPEAK_QUOTA_RETRY_MS / 60000)} min. Buy more units or raise FERRY_THINGSPEAK_WINDOW_MS.`,
        retryAfterMs: this.cfg.FERRY_THINGSPEAK_QUOTA_RETRY_MS,
      }
    }
    const verdict = classifyHttp(res.status, res.headers, res.body, { now: this.deps.now })
    if (verdict.kind === 'retry' && verdict.status === 429) return { ...verdict, retryAfterMs: Math.max(verdict.retryAfterMs ?? 0, interval) }
    if (verdict.kind !== 'accepted') this.deps.log.debug({ channel: channelId, status: res.status, entries: entries.length, reason: verdict.reason }, 'thingspeak refused a bulk update')
    return verdict
  }

  private authMessage(channelId: string, reason: string): string {
    const mapped = [...this.byDevice.values()].some((t) => t.channelId === channelId)
    return `ThingSpeak refused the write key for channel ${channelId}: ${reason}; check ${mapped ? 'FERRY_THINGSPEAK_CHANNELS' : 'FERRY_THINGSPEAK_WRITE_KEY'}. Readings stay buffered.`
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/** Whole seconds of an entry's `created_at`, or undefined when it is not an entry. */
function createdAtOf(entry: unknown): number | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined
  const at = (entry as { created_at?: unknown }).created_at
  if (typeof at !== 'string') return undefined
  const ms = Date.parse(at)
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000)
}

function minId(entries: readonly Entry[]): number {
  return Math.min(...entries.map((e) => (e.rows[0] as BufferedReading).id))
}

function pick(r: WriteResult): Partial<WriteResult> {
  const out: Partial<WriteResult> = {}
  if (r.retryAfterMs !== undefined) out.retryAfterMs = r.retryAfterMs
  if (r.errorClass !== undefined) out.errorClass = r.errorClass
  if (r.errorMessage !== undefined) out.errorMessage = r.errorMessage
  return out
}

/** Builds the ThingSpeak sink. Throws ConfigError when no channel is configured. Never touches the network. */
export function createThingSpeakSink(config: ThingSpeakConfig, deps: SinkDeps = {}): ThingSpeakSink {
  return new ThingSpeakSink(config, deps)
}
