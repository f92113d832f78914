/**
 * Turns "the server refused this batch" into per-row results, inside the sink's `write`, so the
 * drainer only ever sees accepted / rejected / retryable ids.
 *
 * - 400/422 (`rejected`): the batch is halved and each half re-sent until the refusal is pinned to
 *   single rows; only those are rejected (with the server's message), every other row is accepted.
 *   Cost: about 2·k·log2(n) requests for k bad rows in n.
 * - 413 (`split`): halved the same way; a single row that is still too large is rejected.
 * - `partial`: the server wrote the chunk except the rows it named: those are rejected, the rest
 *   accepted, without further requests.
 * - `auth` / `stop` / `retry`: stop; this chunk and everything after it stay retryable.
 *
 * Why re-sending is safe: InfluxDB 1.x answers a partial write with 400 `partial write … dropped=N`
 * *after* writing the good points, 2.x does the same with 422, and 3.x with `accept_partial`. Re-sending
 * the good points writes identical points at identical timestamps, which InfluxDB treats as an
 * overwrite (docs/cloud-apis.md#duplicate-points), so bisecting never duplicates anything.
 *
 * Results keep ingest order: settled rows (accepted or rejected) form a prefix, retryable rows the
 * suffix, so a drainer with a single cursor per sink can apply them directly.
 */
import type { HttpVerdict } from './classify.js'
import type { WriteResult } from '../types.js'

/** Sends one chunk and classifies the answer; throws on transport failure. */
export type ChunkSender<R extends { id: number }> = (rows: readonly R[]) => Promise<HttpVerdict>

export interface BisectOptions {
  /**
   * Most requests one call may make. When a batch is full of bad rows, bisecting costs about two
   * requests per row; past the cap the unsettled rest is returned retryable (class `bisect_limit`)
   * and the next write carries on from there.
   */
  maxRequests?: number
  /** Prefix for rejection reasons, e.g. `InfluxDB 400: `. */
  reasonPrefix?: (status: number) => string
}

/**
 * Sends `rows` with `send`, bisecting on `rejected`/`split` answers. A transport error before any
 * row was settled is rethrown (the drainer retries the whole batch); after some progress it is
 * reported as retryable rows with class `network`, so settled rows are not sent again.
 */
export async function writeBisecting<R extends { id: number }>(
  rows: readonly R[],
  send: ChunkSender<R>,
  signal: AbortSignal,
  opts: BisectOptions = {},
): Promise<WriteResult> {
  const maxRequests = opts.maxRequests ?? 500
  const prefix = opts.reasonPrefix ?? ((s: number) => `HTTP ${s}: `)
  const result: WriteResult = { accepted: [], retryable: [], rejected: [] }
  const queue: R[][] = rows.length ? [rows.slice()] : []
  let requests = 0
  let settled = 0

  const stop = (chunk: readonly R[], extra: Partial<WriteResult>): WriteResult => {
    for (const c of [chunk, ...queue]) for (const r of c) result.retryable.push(r.id)
    queue.length = 0
    return Object.assign(result, extra)
  }

  while (queue.length > 0) {
    const chunk = queue.shift() as R[]
    signal.throwIfAborted()
    if (requests >= maxRequests) {
      return stop(chunk, { errorClass: 'bisect_limit', errorMessage: `stopped after ${requests} requests while isolating refused rows; the rest is sent next time` })
    }
    requests++
    let verdict: HttpVerdict
    try {
      verdict = await send(chunk)
    } catch (err) {
      if (settled === 0 || signal.aborted) throw err
      return stop(chunk, { errorClass: 'network', errorMessage: (err as Error).message })
    }
    switch (verdict.kind) {
      case 'accepted':
        for (const r of chunk) result.accepted.push(r.id)
        settled += chunk.length
        break
      case 'rejected':
      case 'split':
        if (chunk.length === 1) {
          const why = verdict.kind === 'split' ? `row is larger than the server accepts in one request (413): ${verdict.reason}` : verdict.reason
          result.rejected.push({ id: (chunk[0] as R).id, reason: `${prefix(verdict.status)}${why}` })
          settled++
        } else {
          const mid = Math.ceil(chunk.length / 2)
          queue.unshift(chunk.slice(0, mid), chunk.slice(mid))
        }
        break
      case 'partial': {
        const named = new Map(verdict.rejected.map((x) => [x.index, x.reason]))
        chunk.forEach((r, i) => {
          const why = named.get(i)
          if (why === undefined) result.accepted.push(r.id)
          else result.rejected.push({ id: r.id, reason: `${prefix(verdict.status)}${why}` })
        })
        settled += chunk.length
        break
      }
      case 'auth':
        return stop(chunk, { authError: verdict.reason, errorClass: verdict.errorClass, errorMessage: verdict.reason })
      case 'stop':
        return stop(chunk, { authError: verdict.reason, stopCode: verdict.code, errorClass: verdict.errorClass, errorMessage: verdict.reason })
      case 'retry':
        return stop(chunk, {
          errorClass: verdict.errorClass,
          errorMessage: verdict.reason,
          ...(verdict.retryAfterMs !== undefined ? { retryAfterMs: verdict.retryAfterMs } : {}),
        })
    }
  }
  return result
}

/**
 * Splits rows into consecutive groups whose encoded size stays under `maxBytes` (each row counted
 * by `size`) and under `maxRows`. A single row larger than `maxBytes` still gets its own group; the
 * server then decides (413 → rejected).
 */
export function chunkBySize<R>(rows: readonly R[], size: (r: R) => number, maxBytes: number, maxRows = Infinity): R[][] {
  const out: R[][] = []
  let group: R[] = []
  let bytes = 0
  for (const r of rows) {
    const rowBytes = size(r)
    if (group.length > 0 && (bytes + rowBytes > maxBytes || group.length >= maxRows)) {
      out.push(group)
      group = []
      bytes = 0
    }
    group.push(r)
    bytes += rowBytes
  }
  if (group.length) out.push(group)
  return out
}
