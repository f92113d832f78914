/**
 * What an InfluxDB answer means for the rows of one request, beyond what the status alone says
 * (`classifyHttp`). The rules and their sources are in docs/cloud-apis.md#what-ferry-reads-in-an-influxdb-answer;
 * this file and that table change together.
 *
 * - A partial write that names its lines (3 Core `data[]` with `line_number`, the Cloud
 *   `error parsing line N (1-based)` text, or either of them in a **201** body: influxdb-client-js
 *   notes "InfluxDB v3 returns 201 for partial success") becomes `partial`: the named rows are
 *   rejected, the others accepted, and nothing is sent twice. A 201 whose body names no line is
 *   bisected like a 400; a 201 with an empty body is a plain success.
 * - A refusal that names a database, bucket, organisation or retention policy (`target_missing`) or
 *   a server limit (`server_limit`) is not about a row: the rows are kept and retried with backoff,
 *   and the sink's status shows the message, instead of every row being bisected into dead letters.
 *   A refusal that says the body is too large is split, as a 413 is.
 * - A 404 that names no database is "there is no write endpoint here" (e.g. `FERRY_INFLUX_VERSION=3`
 *   against InfluxDB Cloud Serverless or Dedicated, which have no `/api/v3/write_lp`): the sink
 *   stops with `FERRY_ERR_SINK_ENDPOINT` instead of retrying a wrong URL forever.
 */
import { classifyHttp, serverMessage, type HeaderBag, type HttpVerdict } from '../http/classify.js'

/** Why a refusal is not about a row. */
export type RefusalKind = 'target_missing' | 'server_limit' | 'too_large'

/**
 * Messages that name a database or a limit rather than a row, with the InfluxDB version that sends
 * them. Anything else in a 400/422 is about the rows (parse error, field type conflict, a point
 * outside the retention period) and is bisected into dead letters.
 */
export const REFUSALS: readonly { kind: RefusalKind; pattern: RegExp; example: string }[] = [
  { kind: 'target_missing', pattern: /\bdatabase not found\b/i, example: '1.x 404 `database not found: "ferry"`' },
  { kind: 'target_missing', pattern: /\b(database|bucket|organization|namespace)\b[^.;:,]{0,80}\bnot found\b/i, example: '2.x 404 `bucket "sensors" not found`, `organization name "acme" not found`' },
  { kind: 'target_missing', pattern: /\bretention policy not found\b/i, example: '1.x 500 `retention policy not found: autogen`' },
  { kind: 'target_missing', pattern: /\bunable to find DBRP\b|\bdbrp\b[^.;]{0,80}\bnot found\b|\bno dbrp mapping\b/i, example: '2.x 404 `unable to find DBRP` (1.x-compatible `/write` without a DBRP mapping)' },
  { kind: 'server_limit', pattern: /\bmax-values-per-tag limit exceeded\b/i, example: '1.x 400 `partial write: max-values-per-tag limit exceeded (100000/100000): …`' },
  { kind: 'server_limit', pattern: /\bmax-series-per-database limit exceeded\b/i, example: '1.x 400 `partial write: max-series-per-database limit exceeded: (1000000) dropped=N`' },
  { kind: 'server_limit', pattern: /\bwould exceed\b[^.;]{0,80}\blimit\b/i, example: '3 422 `Update to schema would exceed number of columns per table limit of 499 columns`' },
  { kind: 'server_limit', pattern: /\bcardinality limit\b/i, example: 'Cloud `series cardinality limit`' },
  { kind: 'too_large', pattern: /\b(request|body|payload|batch)\b[^.;]{0,40}\btoo large\b|\bmax-body-size\b/i, example: '2.x `points batch is too large`' },
]

/**
 * Text that says an error is about points, not the server: a partial write (1.x, 2.x, 2.x's `/write`
 * answering one with 500 `unexpected error writing points to database: partial write: …`).
 */
export const PARTIAL_WRITE_TEXT = /\bpartial write\b|\bfield type conflict\b|\bdropped=\d+/i

/** The kind of a refusal message, or undefined when it is about the rows. */
export function refusalKind(message: string): RefusalKind | undefined {
  return REFUSALS.find((r) => r.pattern.test(message))?.kind
}

/** A rejected line as the server names it: 1-based line number in the request body. */
export interface LineError {
  line: number
  message: string
  /** The server's copy of the line (3 Core; may be cut short). */
  original?: string
}

/**
 * Largest list a server is known to return: Cloud Serverless/Dedicated list "up to 100 rejected
 * points". A list this long may be cut short, so it is not trusted to name every rejected line.
 */
const MAX_LISTED = 100

/**
 * Reads the line errors out of an error body: 3 Core `{"error","data":[{line_number,error_message,original_line}]}`
 * (or `data` as one object), or the Cloud text `error parsing line N (1-based): …`. `complete` is
 * false when the list may have been cut short. Undefined when the body names no line.
 */
export function lineErrors(body: string): { errors: LineError[]; complete: boolean; summary: string } | undefined {
  const text = body.trim()
  if (!text.startsWith('{')) return undefined
  let json: Record<string, unknown>
  try {
    const parsed = JSON.parse(text) as unknown
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
    json = parsed as Record<string, unknown>
  } catch {
    return undefined
  }
  const summary = typeof json.error === 'string' ? json.error : 'partial write'
  const data = Array.isArray(json.data) ? (json.data as unknown[]) : json.data && typeof json.data === 'object' ? [json.data] : undefined
  if (data) {
    const errors: LineError[] = []
    for (const d of data) {
      const e = d as Record<string, unknown>
      const line = Number(e.line_number)
      if (!Number.isInteger(line)) return undefined
      errors.push({ line, message: String(e.error_message ?? 'rejected'), ...(typeof e.original_line === 'string' ? { original: e.original_line } : {}) })
    }
    return errors.length ? { errors, complete: errors.length < MAX_LISTED, summary } : undefined
  }
  if (typeof json.message === 'string') {
    const errors = [...json.message.matchAll(/line (\d+) \(1-based\):?\s*([^\n]*)/g)].map((m) => ({ line: Number(m[1]), message: (m[2] ?? '').trim() || 'rejected' }))
    return errors.length ? { errors, complete: errors.length < MAX_LISTED, summary: 'partial write' } : undefined
  }
  return undefined
}

/**
 * Maps line errors onto the request's rows (line N is row N-1: one line per row, nothing else in the
 * body). Undefined when a line number is out of range or the server's copy of a line does not match
 * ours: then the caller bisects instead of trusting the list.
 */
export function mapLineErrors(errors: readonly LineError[], lines: readonly string[], summary: string): { index: number; reason: string }[] | undefined {
  const byIndex = new Map<number, string>()
  for (const e of errors) {
    const index = e.line - 1
    const ours = lines[index]
    if (ours === undefined) return undefined
    if (e.original !== undefined) {
      const theirs = e.original.replace(/(\.\.\.|…)$/, '')
      if (!ours.startsWith(theirs) && !theirs.startsWith(ours)) return undefined
    }
    if (!byIndex.has(index)) byIndex.set(index, `${summary} (line ${e.line}: ${e.message.replace(/\s+/g, ' ')})`)
  }
  return [...byIndex].map(([index, reason]) => ({ index, reason }))
}

export interface InfluxAnswerContext {
  version: 1 | 2 | 3
  /** The request's lines, one per row, in order. */
  lines: readonly string[]
  /** `POST <origin><path>` for messages. */
  endpoint: string
  now: () => number
}

/** What to tell the operator per refusal kind and version. */
function hint(kind: RefusalKind | 'endpoint_missing', version: 1 | 2 | 3): string {
  switch (kind) {
    case 'target_missing':
      return version === 1
        ? 'create the database (CREATE DATABASE) or retention policy, or fix FERRY_INFLUX_DB / FERRY_INFLUX_RP'
        : version === 2
          ? 'create the bucket, or fix FERRY_INFLUX_ORG / FERRY_INFLUX_BUCKET'
          : 'fix FERRY_INFLUX_DB (InfluxDB 3 creates a database on its first write unless that is disabled or the database limit is reached)'
    case 'server_limit':
      return 'a limit of the InfluxDB server refused the write, not a bad reading: raise the limit (1.x max-values-per-tag / max-series-per-database, 3 table and column limits) or drop series you no longer need'
    case 'too_large':
      return 'the request is split'
    case 'endpoint_missing':
      return 'check FERRY_INFLUX_URL (path prefix?) and FERRY_INFLUX_VERSION: 3 needs InfluxDB 3 Core or Enterprise (/api/v3/write_lp); InfluxDB Cloud Serverless and Cloud Dedicated have no /api/v3/write_lp and take FERRY_INFLUX_VERSION=2 (docs/cloud-apis.md#which-ferry_influx_version-for-which-product)'
  }
}

/** A refusal about the target or a limit: keep the rows, retry with backoff, show the message. */
function keep(kind: 'target_missing' | 'server_limit', status: number, reason: string, version: 1 | 2 | 3): HttpVerdict {
  return { kind: 'retry', status, errorClass: kind, reason: `InfluxDB ${status}: ${reason}; ${hint(kind, version)}. Readings stay buffered and are retried.` }
}

/**
 * Classifies one InfluxDB answer for the rows in `ctx.lines`. Never throws. See the module comment.
 */
export function interpretInfluxAnswer(ctx: InfluxAnswerContext, status: number, headers: HeaderBag, body: string): HttpVerdict {
  const { version } = ctx
  if (status >= 200 && status < 300 && status !== 204) {
    const listed = lineErrors(body)
    if (listed) return fromLineErrors(ctx, status, listed, body, headers)
    // 201 is a partial success (influxdb-client-js; Cloud Serverless documents details of partial
    // write failures in 201 bodies). With a body that names no line we cannot tell which rows were
    // refused: bisect. A one-line request that was partly written was written.
    if (status === 201 && body.trim() !== '' && ctx.lines.length > 1) {
      return { kind: 'rejected', status, errorClass: 'http_201_partial', reason: `partial write (201) that names no line: ${serverMessage(status, headers, body)}` }
    }
    if (status === 201) return { kind: 'accepted' }
  }
  const verdict = classifyHttp(status, headers, body, { now: ctx.now, ...(version === 1 ? { successStatuses: [204] } : {}) })
  if (verdict.kind !== 'rejected' && verdict.kind !== 'retry') return verdict
  const kind = refusalKind(verdict.reason)
  if (status === 404) {
    if (kind === 'target_missing') return keep(kind, status, verdict.reason, version)
    return {
      kind: 'stop',
      status,
      code: 'FERRY_ERR_SINK_ENDPOINT',
      errorClass: 'endpoint_missing',
      reason: `InfluxDB has no write endpoint at ${ctx.endpoint} (404: ${verdict.reason}); ${hint('endpoint_missing', version)}. Readings stay buffered; restart the gateway after fixing the setting.`,
    }
  }
  if (verdict.kind === 'rejected') {
    if (version === 3) {
      // 3 Core with accept_partial: the valid lines were written and the body names the others.
      const listed = lineErrors(body)
      if (listed && /partial write/i.test(listed.summary)) return fromLineErrors(ctx, status, listed, body, headers)
    }
    if (kind === 'target_missing' || kind === 'server_limit') return keep(kind, status, verdict.reason, version)
    if (kind === 'too_large') return { kind: 'split', status, reason: verdict.reason, errorClass: `http_${status}_too_large` }
    return verdict
  }
  if (kind === 'target_missing' || kind === 'server_limit') return keep(kind, status, verdict.reason, version)
  return verdict
}

/** A partial write whose body names lines: map them to rows, or bisect when the list cannot be trusted. */
function fromLineErrors(ctx: InfluxAnswerContext, status: number, listed: NonNullable<ReturnType<typeof lineErrors>>, body: string, headers: HeaderBag): HttpVerdict {
  const limited = listed.errors.find((e) => refusalKind(e.message) === 'server_limit' || refusalKind(e.message) === 'target_missing')
  if (limited) {
    const kind = refusalKind(limited.message) as 'target_missing' | 'server_limit'
    return keep(kind, status, `${listed.summary} (line ${limited.line}: ${limited.message})`, ctx.version)
  }
  const mapped = listed.complete ? mapLineErrors(listed.errors, ctx.lines, listed.summary) : undefined
  if (mapped) return { kind: 'partial', status, rejected: mapped, errorClass: `http_${status}` }
  return { kind: 'rejected', status, errorClass: `http_${status}`, reason: serverMessage(status, headers, body) }
}
