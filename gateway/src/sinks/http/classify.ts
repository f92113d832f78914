/**
 * One classifier for every HTTP answer a sink can get, so InfluxDB, ThingSpeak and anything later
 * agree on what "accepted", "rejected", "retry" and "auth" mean. It never throws: a drainer must
 * survive any response a server (or a proxy in front of it) can send, including garbage.
 *
 * The table follows Telegraf's `outputs.influxdb_v2` (`http.go`) and the cross-service summary in
 * docs/cloud-apis.md#response-classification, with one deliberate difference: anything we do not
 * recognise (404, 3xx, 405, odd 2xx, unknown codes) is *retryable*, never dropped. A misconfigured
 * URL or a captive portal must not throw readings away; it shows up as an error class on the sink's
 * status. A sink refines the verdict with what only it can read in a body (the InfluxDB sink:
 * `influxdb/answers.ts` — partial writes that name their lines, refusals that name a database or a
 * limit instead of a row, a 404 that means "no such endpoint").
 */

import type { SinkStopCode } from '../types.js'

/** What the sink should do with the rows it sent in one request. */
export type HttpVerdict =
  | { kind: 'accepted' }
  /** The server refused the data itself (400/422): bisect to find the bad rows, dead-letter those. */
  | { kind: 'rejected'; status: number; reason: string; errorClass: string }
  /** 413: the body was too large; split the batch (a single row that is still too large is rejected). */
  | { kind: 'split'; status: number; reason: string; errorClass: string }
  /** 401/403: credentials refused. Rows stay buffered; the drainer stops the sink and alerts. */
  | { kind: 'auth'; status: number; reason: string; errorClass: string }
  /** Keep the rows and try again later; `retryAfterMs` when the server said how long to wait. */
  | { kind: 'retry'; status: number; reason: string; errorClass: string; retryAfterMs?: number }
  /**
   * Some rows of the request were written and the server named the others, by their position in the
   * request (0-based `index`). The named ones are rejected with their reason, the rest accepted; no
   * bisecting needed. Only a sink that can map the server's line numbers back to rows returns this.
   */
  | { kind: 'partial'; status: number; rejected: { index: number; reason: string }[]; errorClass: string }
  /**
   * Nothing can be delivered until the configuration is fixed, for a reason other than credentials
   * (e.g. no write endpoint at the URL). Rows stay buffered; the drainer stops the sink like `auth`.
   */
  | { kind: 'stop'; status: number; reason: string; errorClass: string; code: SinkStopCode }

/** What the status alone can say: `classifyHttp` never answers `partial` or `stop` (a sink refines it). */
export type StatusVerdict = Exclude<HttpVerdict, { kind: 'partial' } | { kind: 'stop' }>

/** Header bag as undici returns it (`string | string[] | undefined` per name, lower-case names). */
export type HeaderBag = Record<string, string | string[] | undefined>

export interface ClassifyOptions {
  /**
   * Statuses that count as success. Default: any 2xx. InfluxDB 1.x passes `[204]` because only 204
   * means "all points written" there; a 200 is typically a proxy or a different service.
   */
  successStatuses?: readonly number[]
  /**
   * Inspects a success body; returns a reason when the body says the write did not happen (e.g. a
   * ThingSpeak single update answering 200 with `0`). The rows are then retried, not accepted.
   */
  successBodyFailure?: (body: string) => string | undefined
  /** Clock for HTTP-date `Retry-After` values; defaults to `Date.now`. */
  now?: () => number
}

/** Longest server text we carry into a dead letter or a log line (InfluxDB caps its own header at 1024). */
const MAX_REASON = 1024

/**
 * Classifies one HTTP response. `body` is the response text (possibly truncated by the caller; only
 * used for messages). See the module comment for the rules.
 */
export function classifyHttp(status: number, headers: HeaderBag, body: string, opts: ClassifyOptions = {}): StatusVerdict {
  const reason = serverMessage(status, headers, body)
  if (!Number.isInteger(status) || status < 100 || status > 599) {
    return { kind: 'retry', status, reason, errorClass: 'http_invalid' }
  }
  if (status >= 200 && status < 300) {
    const ok = opts.successStatuses ? opts.successStatuses.includes(status) : true
    if (!ok) return { kind: 'retry', status, reason: `unexpected success status ${status}: ${reason}`, errorClass: `http_${status}` }
    const failure = opts.successBodyFailure?.(body)
    if (failure) return { kind: 'retry', status, reason: failure, errorClass: 'http_2xx_not_written' }
    return { kind: 'accepted' }
  }
  switch (status) {
    case 400:
    case 422:
      return { kind: 'rejected', status, reason, errorClass: `http_${status}` }
    case 413:
      return { kind: 'split', status, reason, errorClass: 'http_413' }
    case 401:
    case 403:
      return { kind: 'auth', status, reason, errorClass: `http_${status}` }
    case 429:
    case 503: {
      const retryAfterMs = parseRetryAfter(header(headers, 'retry-after'), opts.now ?? Date.now)
      return { kind: 'retry', status, reason, errorClass: `http_${status}`, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }
    }
  }
  if (status >= 500) {
    // 502/504 may carry Retry-After from a proxy; honour it when present.
    const retryAfterMs = parseRetryAfter(header(headers, 'retry-after'), opts.now ?? Date.now)
    return { kind: 'retry', status, reason, errorClass: 'http_5xx', ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) }
  }
  if (status >= 300 && status < 400) return { kind: 'retry', status, reason, errorClass: 'http_3xx' }
  if (status === 404) return { kind: 'retry', status, reason, errorClass: 'http_404' }
  return { kind: 'retry', status, reason, errorClass: status >= 400 ? 'http_4xx' : 'http_1xx' }
}

/**
 * Parses `Retry-After` (RFC 9110 §10.2.3): either delay-seconds or an HTTP-date. Returns
 * milliseconds from `now`, never negative; undefined when absent or unparsable. Fractional seconds
 * are tolerated because Telegraf parses the value as a float and some proxies send one.
 */
export function parseRetryAfter(value: string | undefined, now: () => number = Date.now): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  if (text === '') return undefined
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000)
  // Only accept something that looks like a date; Date.parse is lenient with plain numbers and words.
  if (!/[a-z]/i.test(text) || !/\d{4}/.test(text)) return undefined
  const at = Date.parse(text)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - now())
}

/** First value of a header, whatever shape the HTTP client gave it. */
export function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name] ?? headers[name.toLowerCase()]
  return Array.isArray(v) ? v[0] : v
}

/**
 * The server's own words for an error, from the shapes we know: InfluxDB 1.x `{"error"}` and its
 * `X-Influxdb-Error` header, 2.x `{"code","message"}`, 3.x `{"error","data":[…]}`, ThingSpeak
 * `{"error":{"error_code","message","details"}}`, else the text itself (trimmed, capped).
 */
export function serverMessage(status: number, headers: HeaderBag, body: string): string {
  const text = body.trim()
  let msg: string | undefined
  if (text.startsWith('{')) {
    try {
      msg = messageFromJson(JSON.parse(text) as unknown)
    } catch {
      // not JSON after all; fall through to the raw text
    }
  }
  msg ??= header(headers, 'x-influxdb-error') ?? (text || `HTTP ${status} with an empty body`)
  msg = msg.replace(/\s+/g, ' ').trim()
  return msg.length > MAX_REASON ? `${msg.slice(0, MAX_REASON)}…` : msg
}

function messageFromJson(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null) return undefined
  const body = json as Record<string, unknown>
  if (typeof body.error === 'object' && body.error !== null) {
    const detail = body.error as Record<string, unknown>
    return [detail.error_code, detail.message, detail.details].filter((x) => typeof x === 'string' && x).join(': ') || undefined
  }
  if (typeof body.error === 'string') {
    if (Array.isArray(body.data) && body.data.length > 0) {
      const lines = (body.data as Record<string, unknown>[])
        .slice(0, 5)
        .map((d) => `line ${String(d.line_number)}: ${String(d.error_message)}`)
      return `${body.error} (${lines.join('; ')}${body.data.length > 5 ? '; …' : ''})`
    }
    if (typeof body.data === 'object' && body.data !== null) {
      const data = body.data as Record<string, unknown>
      return `${body.error} (line ${String(data.line_number)}: ${String(data.error_message)})`
    }
    return body.error
  }
  if (typeof body.message === 'string') return typeof body.code === 'string' ? `${body.code}: ${body.message}` : body.message
  return undefined
}
