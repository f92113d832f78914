/**
 * InfluxDB sink: line protocol over HTTP to 1.x (`/write`), 2.x (`/api/v2/write`) or 3
 * (`/api/v3/write_lp`), gzip-compressed, over a keep-alive undici pool.
 *
 * Per version (docs/cloud-apis.md#influxdb):
 * - 1.x: only 204 is success (a 200 is a proxy or another service); `precision=n`; auth by HTTP
 *   Basic (or `Token <t>` when only a token is set, for the 1.x-compatible endpoints of 2.x/3).
 *   A partial write is 400 with `dropped=N` after the good points were written.
 * - 2.x: `Authorization: Token`, `org` and `bucket`, `precision=ns`; 422 = partial write;
 *   429/503 carry `Retry-After`.
 * - 3: `Authorization: Bearer`, `db`, `precision=nanosecond`, `accept_partial` (default true: the
 *   server keeps the valid lines and answers 400 listing the bad ones).
 *
 * Refusals are bisected to single rows inside `write` (see bisect.ts); re-sending good points is an
 * overwrite in every version, so this never duplicates. What a body says beyond its status is read
 * in answers.ts: partial writes that name their lines (also as 201), refusals that name a database or
 * a limit (kept and retried, not dead-lettered), a 404 that means "no such endpoint" (the sink stops).
 *
 * A 500 is retried, except that an older InfluxDB 2.x answers a partial write on its 1.x `/write`
 * with 500 and would stall the sink forever: after `FERRY_INFLUX_BISECT_AFTER_500S` identical 500s
 * for the same rows the batch is bisected once, and the rows the server still refuses alone are
 * dead-lettered, unless every part of the batch gets the 500 (a server fault: kept).
 */
import { gzip } from 'node:zlib'
import { promisify } from 'node:util'
import type { HttpVerdict } from '../http/classify.js'
import { chunkBySize, writeBisecting } from '../http/bisect.js'
import { resolveDeps, type SinkDeps } from '../deps.js'
import { HttpClient } from '../http/client.js'
import { encodeBatch, escapeMeasurement, type EncodedLine } from '../line-protocol.js'
import type { BufferedReading, Sink, WriteResult } from '../types.js'
import { interpretInfluxAnswer, PARTIAL_WRITE_TEXT } from './answers.js'
import { checkInfluxConfig, type InfluxConfig } from './config.js'

const gzipAsync = promisify(gzip)

type Encoded = EncodedLine

/** The InfluxDB sink. Build it with `createInfluxSink`. */
export class InfluxSink implements Sink {
  readonly name = 'influxdb'
  readonly maxBatch: number
  readonly concurrency: number
  private readonly http: HttpClient
  private readonly deps: Required<SinkDeps>
  /** First row id of a chunk → the 500 it keeps getting and how often in a row (see `writeChunk`). */
  private readonly repeated500 = new Map<number, { reason: string; count: number }>()
  private closed = false
  /** Every line is ASCII when the measurement is (device ids and numbers are): its length is its size in bytes. */
  private readonly asciiLines: boolean

  constructor(private readonly cfg: InfluxConfig, deps: SinkDeps = {}) {
    checkInfluxConfig(cfg)
    this.maxBatch = cfg.FERRY_INFLUX_BATCH_SIZE
    this.concurrency = cfg.FERRY_INFLUX_CONCURRENCY
    this.deps = resolveDeps(deps, this.name)
    this.asciiLines = /^[\x20-\x7e]*$/.test(escapeMeasurement(cfg.FERRY_INFLUX_MEASUREMENT))
    this.http = new HttpClient({
      url: cfg.FERRY_INFLUX_URL,
      ...(cfg.FERRY_INFLUX_CA ? { caFile: cfg.FERRY_INFLUX_CA } : {}),
      caEnvName: 'FERRY_INFLUX_CA',
      timeoutMs: cfg.FERRY_INFLUX_TIMEOUT_MS,
      keepAliveMs: cfg.FERRY_INFLUX_KEEPALIVE_MS,
      label: 'InfluxDB',
    })
  }

  async write(batch: readonly BufferedReading[], signal: AbortSignal): Promise<WriteResult> {
    signal.throwIfAborted()
    const { ok, bad } = encodeBatch(batch, this.cfg.FERRY_INFLUX_MEASUREMENT)
    const result: WriteResult = { accepted: [], retryable: [], rejected: [...bad] }
    // Stay under the server's body limit before it has to tell us with a 413.
    const size = this.asciiLines ? (x: Encoded) => x.line.length + 1 : (x: Encoded) => Buffer.byteLength(x.line) + 1
    const chunks = chunkBySize(ok, size, this.cfg.FERRY_INFLUX_MAX_BODY_BYTES)
    for (let i = 0; i < chunks.length; i++) {
      let chunkResult: WriteResult
      try {
        chunkResult = await this.writeChunk(chunks[i] as Encoded[], signal)
      } catch (err) {
        // Earlier chunks were delivered: report them rather than have them sent again.
        if (result.accepted.length === 0 || signal.aborted) throw err
        chunkResult = { accepted: [], rejected: [], retryable: (chunks[i] as Encoded[]).map((x) => x.id), errorClass: 'network', errorMessage: (err as Error).message }
      }
      result.accepted.push(...chunkResult.accepted)
      result.rejected.push(...chunkResult.rejected)
      if (chunkResult.retryable.length) {
        result.retryable.push(...chunkResult.retryable)
        for (const rest of chunks.slice(i + 1)) for (const x of rest) result.retryable.push(x.id)
        for (const k of ['retryAfterMs', 'authError', 'stopCode', 'errorClass', 'errorMessage'] as const) {
          if (chunkResult[k] !== undefined) (result as unknown as Record<string, unknown>)[k] = chunkResult[k]
        }
        if (chunkResult.authError && !chunkResult.stopCode) {
          result.authError = `InfluxDB refused the credentials (${chunkResult.errorClass ?? 'auth'}) at ${this.http.origin}: ${chunkResult.authError}; ${this.credentialHint()}. Readings stay buffered.`
        }
        break
      }
    }
    this.deps.log.debug({ rows: batch.length, accepted: result.accepted.length, rejected: result.rejected.length, retryable: result.retryable.length, errorClass: result.errorClass }, 'influxdb batch written')
    return result
  }

  /** `GET /ping`: 204 on 1.x/2.x, 200 on 3. Throws on transport failure; never called by `write`. */
  async healthcheck(signal: AbortSignal): Promise<boolean> {
    const res = await this.http.request({ method: 'GET', path: '/ping', headers: this.authHeaders(), signal })
    return res.status === 204 || res.status === 200
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.http.close()
  }

  /**
   * Writes one chunk, bisecting refusals. Counts identical 500s for the same rows (keyed by the
   * chunk's first row: the drainer re-sends the same batch while it retries); at
   * `FERRY_INFLUX_BISECT_AFTER_500S` it isolates the refused rows at once (`isolate500`).
   */
  private async writeChunk(chunk: readonly Encoded[], signal: AbortSignal): Promise<WriteResult> {
    const opts = { reasonPrefix: (s: number) => `InfluxDB ${s}: ` }
    const seen: { last?: HttpVerdict } = {}
    const result = await writeBisecting(chunk, async (part) => (seen.last = await this.post(part, signal)), signal, opts)
    const key = (chunk[0] as Encoded).id
    const last = seen.last
    const limit = this.cfg.FERRY_INFLUX_BISECT_AFTER_500S
    if (last?.kind !== 'retry' || last.status !== 500 || last.errorClass !== 'http_5xx' || result.accepted.length > 0 || result.rejected.length > 0 || limit === 0) {
      this.repeated500.delete(key)
      return result
    }
    const reason = last.reason
    const prev = this.repeated500.get(key)
    const count = prev && prev.reason === reason ? prev.count + 1 : 1
    this.repeated500.delete(key)
    if (count < limit) {
      // Bounded: one entry per chunk still failing; the oldest goes first.
      if (this.repeated500.size >= 16) this.repeated500.delete(this.repeated500.keys().next().value as number)
      this.repeated500.set(key, { reason, count })
      return { ...result, errorMessage: `${result.errorMessage ?? reason} (the same 500 ${count} of ${limit} times for these readings)` }
    }
    return this.isolate500(chunk, reason, count, signal)
  }

  /**
   * The server answered the same 500 `count` times for these rows. Bisect once, treating a 500 like
   * a 400, so the rows it refuses even alone are dead-lettered with its message and the others are
   * delivered. Evidence is required before anything is dead-lettered: some part of the batch was
   * written, or the message says it is a partial write. A 500 that every part of the batch gets is a
   * server fault (disk, shard, timeout): the probing stops after about log2(n) requests and every
   * row stays buffered.
   */
  private async isolate500(chunk: readonly Encoded[], reason: string, count: number, signal: AbortSignal): Promise<WriteResult> {
    const dataError = PARTIAL_WRITE_TEXT.test(reason)
    const patience = Math.ceil(Math.log2(chunk.length)) + 2
    const probe = { written: false, failures: 0 }
    const result = await writeBisecting(chunk, async (part) => {
      const verdict = await this.post(part, signal)
      if (verdict.kind === 'accepted' || verdict.kind === 'partial') probe.written = true
      if (verdict.kind !== 'retry' || verdict.status !== 500 || verdict.errorClass !== 'http_5xx') return verdict
      if (!probe.written && !dataError && ++probe.failures > patience) return verdict
      return { kind: 'rejected', status: 500, errorClass: 'http_500', reason: `${verdict.reason} (the same 500 answered ${count} times for its batch, and for this reading alone)` }
    }, signal, { reasonPrefix: (s) => `InfluxDB ${s}: ` })
    if (result.accepted.length === 0 && !dataError) {
      return {
        accepted: [],
        rejected: [],
        retryable: chunk.map((x) => x.id),
        errorClass: 'http_5xx',
        errorMessage: `InfluxDB answers 500 to every part of the batch, so it is a server fault and not a bad reading; readings stay buffered and are retried: ${reason}`,
      }
    }
    if (result.rejected.length > 0) {
      this.deps.log.error(
        { rows: result.rejected.length, ids: result.rejected.slice(0, 10).map((x) => x.id), reason },
        `InfluxDB answered the same 500 ${count} times for a batch; the readings it still refused alone were moved to the dead letters (an older InfluxDB 2.x answers a partial write on /write with 500). Check them with "ferry dlq list" and requeue after fixing the cause`,
      )
    }
    return result
  }

  private async post(part: readonly Encoded[], signal: AbortSignal): Promise<HttpVerdict> {
    const text = part.map((x) => x.line).join('\n') + '\n'
    const gz = this.cfg.FERRY_INFLUX_GZIP
    const body = gz ? await gzipAsync(Buffer.from(text), { level: this.cfg.FERRY_INFLUX_GZIP_LEVEL }) : Buffer.from(text)
    const { path, query } = this.target()
    const res = await this.http.request({
      method: 'POST',
      path,
      query,
      headers: {
        'content-type': 'text/plain; charset=utf-8',
        ...(gz ? { 'content-encoding': 'gzip' } : {}),
        accept: 'application/json',
        ...this.authHeaders(),
      },
      body,
      signal,
    })
    const verdict = interpretInfluxAnswer(
      { version: this.cfg.FERRY_INFLUX_VERSION, lines: part.map((x) => x.line), endpoint: `POST ${this.http.origin}${this.http.basePath}${path}`, now: this.deps.now },
      res.status,
      res.headers,
      res.body,
    )
    if (verdict.kind !== 'accepted') {
      this.deps.log.debug({ status: res.status, rows: part.length, verdict: verdict.kind, reason: verdict.kind === 'partial' ? `${verdict.rejected.length} lines named` : verdict.reason }, 'influxdb refused a request')
    }
    return verdict
  }

  private target(): { path: string; query: Record<string, string | undefined> } {
    const cfg = this.cfg
    switch (cfg.FERRY_INFLUX_VERSION) {
      case 1:
        // `precision=n`: 1.x /write takes n,u,ms,s,m,h; "us" is rejected there
        // (docs/cloud-apis.md#influxdb-1x-write).
        return { path: '/write', query: { db: cfg.FERRY_INFLUX_DB, rp: cfg.FERRY_INFLUX_RP, precision: 'n' } }
      case 2:
        return { path: '/api/v2/write', query: { org: cfg.FERRY_INFLUX_ORG, bucket: cfg.FERRY_INFLUX_BUCKET, precision: 'ns' } }
      case 3:
        return {
          path: '/api/v3/write_lp',
          query: { db: cfg.FERRY_INFLUX_DB, precision: 'nanosecond', accept_partial: String(cfg.FERRY_INFLUX_ACCEPT_PARTIAL) },
        }
    }
  }

  private authHeaders(): Record<string, string> {
    const cfg = this.cfg
    if (cfg.FERRY_INFLUX_VERSION === 1 && cfg.FERRY_INFLUX_USER && cfg.FERRY_INFLUX_PASSWORD) {
      return { authorization: `Basic ${Buffer.from(`${cfg.FERRY_INFLUX_USER}:${cfg.FERRY_INFLUX_PASSWORD}`).toString('base64')}` }
    }
    if (!cfg.FERRY_INFLUX_TOKEN) return {}
    return { authorization: `${cfg.FERRY_INFLUX_VERSION === 3 ? 'Bearer' : 'Token'} ${cfg.FERRY_INFLUX_TOKEN}` }
  }

  private credentialHint(): string {
    return this.cfg.FERRY_INFLUX_VERSION === 1 && !this.cfg.FERRY_INFLUX_TOKEN
      ? 'check FERRY_INFLUX_USER / FERRY_INFLUX_PASSWORD and the user\'s WRITE grant'
      : 'check FERRY_INFLUX_TOKEN and its write permission'
  }
}

/** Builds the InfluxDB sink. Throws ConfigError for missing per-version settings or an unreadable CA file. */
export function createInfluxSink(config: InfluxConfig, deps: SinkDeps = {}): InfluxSink {
  return new InfluxSink(config, deps)
}
