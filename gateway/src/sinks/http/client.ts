/**
 * The HTTP plumbing every cloud sink shares: one undici Pool per destination with keep-alive and
 * timeouts, an optional private CA, bounded reading of response bodies, and transport failures
 * turned into `FERRY_ERR_SINK` errors that say where and what happens next (the drainer retries).
 */
import { readFileSync } from 'node:fs'
import { Pool } from 'undici'
import { ConfigError, FerryError } from '../../../../common/src/errors.js'
import type { HeaderBag } from './classify.js'

export interface HttpClientOptions {
  /** Base URL; its path (if any) prefixes every request path, e.g. behind a reverse proxy. */
  url: string
  /** PEM file with the CA(s) to trust instead of the system store (private InfluxDB). */
  caFile?: string
  /** Env name of `caFile`, used in error messages. */
  caEnvName?: string
  /** Whole-request timeout pieces: connect, response headers, and gaps in the body. */
  timeoutMs: number
  /** How long an idle keep-alive socket is kept. */
  keepAliveMs?: number
  /** Parallel sockets; sinks write one batch at a time, so 1–2 is plenty. */
  connections?: number
  /** Label for messages, e.g. `InfluxDB`. */
  label: string
}

export interface HttpAnswer {
  status: number
  headers: HeaderBag
  /** Response text, truncated to `MAX_BODY` characters. */
  body: string
}

/** Longest response body we keep; error bodies are short, and a proxy page must not fill memory. */
const MAX_BODY = 64 * 1024

/** A keep-alive HTTP client for one origin. */
export class HttpClient {
  readonly origin: string
  readonly basePath: string
  readonly label: string
  private readonly pool: Pool
  private closed = false

  constructor(opts: HttpClientOptions) {
    let url: URL
    try {
      url = new URL(opts.url)
    } catch {
      throw new ConfigError(`${opts.label} URL ${JSON.stringify(opts.url)} is not a valid URL; use e.g. https://host:8086`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ConfigError(`${opts.label} URL ${opts.url} must start with http:// or https://`)
    }
    if (url.username || url.password) {
      throw new ConfigError(`${opts.label} URL must not contain credentials; use the token/user/password settings instead`)
    }
    let ca: Buffer | undefined
    if (opts.caFile) {
      try {
        ca = readFileSync(opts.caFile)
      } catch (err) {
        throw new ConfigError(`cannot read the CA file ${opts.caFile} (${opts.caEnvName ?? 'CA'}): ${(err as Error).message}; point it at a PEM file`, { cause: err })
      }
    }
    this.origin = url.origin
    this.basePath = url.pathname.replace(/\/+$/, '')
    this.label = opts.label
    this.pool = new Pool(url.origin, {
      connections: opts.connections ?? 2,
      keepAliveTimeout: opts.keepAliveMs ?? 30_000,
      connectTimeout: opts.timeoutMs,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      ...(ca ? { connect: { ca } } : {}),
    })
  }

  /**
   * Sends one request and returns the answer, whatever the status. Throws `FERRY_ERR_SINK` on
   * transport failure (refused, reset, timeout, TLS), or the abort reason when `signal` fired.
   */
  async request(req: {
    method: 'GET' | 'POST'
    path: string
    query?: Record<string, string | undefined>
    headers?: Record<string, string>
    body?: Buffer | string
    signal: AbortSignal
  }): Promise<HttpAnswer> {
    const qs = new URLSearchParams()
    for (const [k, v] of Object.entries(req.query ?? {})) if (v !== undefined) qs.set(k, v)
    const path = `${this.basePath}${req.path}${qs.size ? `?${qs.toString()}` : ''}`
    try {
      const res = await this.pool.request({
        method: req.method,
        path,
        headers: req.headers ?? {},
        ...(req.body !== undefined ? { body: req.body } : {}),
        signal: req.signal,
      })
      const chunks: Buffer[] = []
      let size = 0
      for await (const c of res.body) {
        const b = c as Buffer
        if (size < MAX_BODY) chunks.push(b)
        size += b.length
      }
      const body = Buffer.concat(chunks).toString('utf8').slice(0, MAX_BODY)
      return { status: res.statusCode, headers: res.headers as HeaderBag, body }
    } catch (err) {
      if (req.signal.aborted) throw req.signal.reason ?? err
      const e = err as { code?: string; message?: string }
      // Never echo the query string: v1 credentials may sit there on some setups.
      throw new FerryError(
        'FERRY_ERR_SINK',
        `${this.label} request ${req.method} ${this.origin}${this.basePath}${req.path} failed: ${e.code ? `${e.code} ` : ''}${e.message ?? String(err)}; the rows stay buffered and are retried`,
        { cause: err },
      )
    }
  }

  /** Closes idle sockets; idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.pool.close()
  }
}
