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
 * overwrite in every version, so this never duplicates.
 */
import { gzip } from 'node:zlib'
import { promisify } from 'node:util'
import { classifyHttp, type HttpVerdict } from '../http/classify.js'
import { chunkBySize, writeBisecting } from '../http/bisect.js'
import { resolveDeps, type SinkDeps } from '../deps.js'
import { HttpClient } from '../http/client.js'
import { encodeBatch } from '../line-protocol.js'
import type { BufferedReading, Sink, WriteResult } from '../types.js'
import { checkInfluxConfig, type InfluxConfig } from './config.js'

const gzipAsync = promisify(gzip)

interface Encoded {
  id: number
  row: BufferedReading
  line: string
}

/** The InfluxDB sink. Build it with `createInfluxSink`. */
export class InfluxSink implements Sink {
  readonly name = 'influxdb'
  readonly maxBatch: number
  readonly concurrency: number
  private readonly http: HttpClient
  private readonly deps: Required<SinkDeps>
  private closed = false

  constructor(private readonly cfg: InfluxConfig, deps: SinkDeps = {}) {
    checkInfluxConfig(cfg)
    this.maxBatch = cfg.FERRY_INFLUX_BATCH_SIZE
    this.concurrency = cfg.FERRY_INFLUX_CONCURRENCY
    this.deps = resolveDeps(deps, this.name)
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
    const items: Encoded[] = ok.map((x) => ({ id: x.row.id, row: x.row, line: x.line }))
    // Stay under the server's body limit before it has to tell us with a 413.
    const chunks = chunkBySize(items, (x) => Buffer.byteLength(x.line) + 1, this.cfg.FERRY_INFLUX_MAX_BODY_BYTES)
    for (let i = 0; i < chunks.length; i++) {
      let chunkResult: WriteResult
      try {
        chunkResult = await writeBisecting(chunks[i] as Encoded[], (part) => this.post(part, signal), signal, {
          reasonPrefix: (s) => `InfluxDB ${s}: `,
        })
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
        for (const k of ['retryAfterMs', 'authError', 'errorClass', 'errorMessage'] as const) {
          if (chunkResult[k] !== undefined) (result as unknown as Record<string, unknown>)[k] = chunkResult[k]
        }
        if (chunkResult.authError) {
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
    const verdict = classifyHttp(res.status, res.headers, res.body, {
      now: this.deps.now,
      ...(this.cfg.FERRY_INFLUX_VERSION === 1 ? { successStatuses: [204] } : {}),
    })
    if (verdict.kind !== 'accepted') {
      this.deps.log.debug({ status: res.status, rows: part.length, verdict: verdict.kind, reason: verdict.reason }, 'influxdb refused a request')
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
