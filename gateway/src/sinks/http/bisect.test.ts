import t from 'tap'
import { chunkBySize, writeBisecting } from './bisect.js'
import type { HttpVerdict } from './classify.js'

const rows = (n: number) => Array.from({ length: n }, (_, i) => ({ id: i + 1 }))
const signal = new AbortController().signal
const ACCEPT: HttpVerdict = { kind: 'accepted' }

/** A server that refuses any request containing one of `bad` (as InfluxDB does with 400). */
function refusing(bad: Set<number>, log: number[][] = []) {
  return async (chunk: readonly { id: number }[]): Promise<HttpVerdict> => {
    log.push(chunk.map((r) => r.id))
    const hit = chunk.find((r) => bad.has(r.id))
    return hit ? { kind: 'rejected', status: 400, reason: `bad row ${hit.id}`, errorClass: 'http_400' } : ACCEPT
  }
}

t.test('one bad row in 100: exactly that row rejected with the server message, 99 accepted', async (t) => {
  const log: number[][] = []
  const r = await writeBisecting(rows(100), refusing(new Set([37]), log), signal)
  t.same(r.rejected, [{ id: 37, reason: 'HTTP 400: bad row 37' }])
  t.same(r.accepted, rows(100).map((x) => x.id).filter((id) => id !== 37))
  t.same(r.retryable, [])
  t.ok(log.length <= 2 * Math.ceil(Math.log2(100)) + 1, `bisect used ${log.length} requests`)
})

t.test('several bad rows are all found; accepted and rejected ids cover the batch exactly once', async (t) => {
  const bad = new Set([1, 2, 50, 99, 100])
  const r = await writeBisecting(rows(100), refusing(bad), signal)
  t.same(r.rejected.map((x) => x.id), [...bad])
  t.equal(r.accepted.length + r.rejected.length, 100)
  t.same(new Set([...r.accepted, ...r.rejected.map((x) => x.id)]).size, 100)
})

t.test('413 splits until chunks fit; a single oversized row is rejected', async (t) => {
  const sizes = new Map([[3, 1000]])
  const send = async (chunk: readonly { id: number }[]): Promise<HttpVerdict> => {
    const bytes = chunk.reduce((s, r) => s + (sizes.get(r.id) ?? 10), 0)
    return bytes > 50 ? { kind: 'split', status: 413, reason: 'Request Entity Too Large', errorClass: 'http_413' } : ACCEPT
  }
  const r = await writeBisecting(rows(20), send, signal)
  t.same(r.accepted, rows(20).map((x) => x.id).filter((id) => id !== 3))
  t.match(r.rejected, [{ id: 3, reason: /larger than the server accepts.*413/ }])
})

t.test('a retryable answer mid-bisect keeps that chunk and everything after it, in order', async (t) => {
  let n = 0
  const send = async (): Promise<HttpVerdict> => {
    n++
    if (n === 1) return { kind: 'rejected', status: 400, reason: 'x', errorClass: 'http_400' }
    if (n === 2) return ACCEPT // first half 1..5
    return { kind: 'retry', status: 503, reason: 'busy', errorClass: 'http_503', retryAfterMs: 5000 }
  }
  const r = await writeBisecting(rows(10), send, signal)
  t.same(r.accepted, [1, 2, 3, 4, 5])
  t.same(r.retryable, [6, 7, 8, 9, 10])
  t.equal(r.retryAfterMs, 5000)
  t.equal(r.errorClass, 'http_503')
})

t.test('an auth answer keeps every row and reports authError', async (t) => {
  const r = await writeBisecting(rows(5), async () => ({ kind: 'auth', status: 401, reason: 'authorization failed', errorClass: 'http_401' }), signal)
  t.same(r.accepted, [])
  t.same(r.retryable, [1, 2, 3, 4, 5])
  t.equal(r.authError, 'authorization failed')
})

t.test('a partial answer settles the chunk in one request: named rows rejected, the rest accepted', async (t) => {
  const log: number[][] = []
  const r = await writeBisecting(rows(10), async (chunk) => {
    log.push(chunk.map((x) => x.id))
    return { kind: 'partial', status: 201, errorClass: 'http_201', rejected: [{ index: 3, reason: 'line 4: bad' }, { index: 9, reason: 'line 10: bad' }] }
  }, signal, { reasonPrefix: (s) => `InfluxDB ${s}: ` })
  t.equal(log.length, 1, 'nothing is sent twice')
  t.same(r.rejected, [{ id: 4, reason: 'InfluxDB 201: line 4: bad' }, { id: 10, reason: 'InfluxDB 201: line 10: bad' }])
  t.same(r.accepted, [1, 2, 3, 5, 6, 7, 8, 9])
  t.same(r.retryable, [])
})

t.test('a stop answer keeps every row and reports the stop code with the message', async (t) => {
  const r = await writeBisecting(rows(3), async () => ({ kind: 'stop', status: 404, code: 'FERRY_ERR_SINK_ENDPOINT', reason: 'no write endpoint', errorClass: 'endpoint_missing' }), signal)
  t.same(r.retryable, [1, 2, 3])
  t.equal(r.authError, 'no write endpoint')
  t.equal(r.stopCode, 'FERRY_ERR_SINK_ENDPOINT')
  t.equal(r.errorClass, 'endpoint_missing')
})

t.test('a transport error before any progress is thrown; after progress it becomes retryable rows', async (t) => {
  await t.rejects(writeBisecting(rows(4), async () => { throw new Error('ECONNRESET') }, signal), /ECONNRESET/)
  let n = 0
  const r = await writeBisecting(rows(4), async () => {
    n++
    if (n === 1) return { kind: 'rejected', status: 400, reason: 'x', errorClass: 'http_400' }
    if (n === 2) return ACCEPT
    throw new Error('ECONNRESET')
  }, signal)
  t.same(r.accepted, [1, 2])
  t.same(r.retryable, [3, 4])
  t.equal(r.errorClass, 'network')
})

t.test('stops at the request cap and leaves the rest retryable', async (t) => {
  const r = await writeBisecting(rows(64), refusing(new Set(rows(64).map((x) => x.id))), signal, { maxRequests: 10 })
  t.equal(r.errorClass, 'bisect_limit')
  t.equal(r.rejected.length + r.retryable.length, 64)
  t.ok(r.rejected.length > 0, 'made progress')
  t.same([...r.rejected.map((x) => x.id), ...r.retryable], rows(64).map((x) => x.id), 'settled prefix, retryable suffix')
})

t.test('an empty batch sends nothing', async (t) => {
  let sent = 0
  const r = await writeBisecting([], async () => { sent++; return ACCEPT }, signal)
  t.same(r, { accepted: [], retryable: [], rejected: [] })
  t.equal(sent, 0)
})

t.test('an aborted signal throws before sending', async (t) => {
  const ac = new AbortController()
  ac.abort()
  await t.rejects(writeBisecting(rows(3), async () => ACCEPT, ac.signal))
})

t.test('chunkBySize keeps groups under the byte and row caps, in order', async (t) => {
  const r = chunkBySize([5, 5, 5, 20, 1, 1], (x) => x, 10, 2)
  t.same(r, [[5, 5], [5], [20], [1, 1]])
})
