/**
 * What kind of failure an exception thrown by a sink is, for the drainer's `errorClass` (status,
 * the `ferry_sink_errors_total{class}` metric) and its log level. Every class keeps the data: the
 * drainer retries all of them.
 *
 * - `network`: the request did not get an answer: an undici error, a socket or DNS errno
 *   (ECONNREFUSED, ETIMEDOUT, ENOTFOUND, ...), a TLS failure, an abort or a timeout.
 * - `io`: the local disk failed (ENOSPC, EIO, EACCES, ...): the file sink's transport.
 * - `error`: anything else, i.e. a bug in the sink or a fault only its message explains; logged at
 *   ERROR with the stack.
 *
 * The cause chain is searched, because the HTTP sinks wrap transport failures in a `FERRY_ERR_SINK`
 * error whose `cause` is the undici error.
 */
export type SinkErrorClass = 'network' | 'io' | 'error'

/** Socket and resolver errno codes (Node's `net`, `dns`, `tls`). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENETRESET',
  'EPIPE',
  'EPROTO',
  'ABORT_ERR',
])

/** undici codes that mean "called wrongly", not "the network failed": bugs. */
const UNDICI_BUG_CODES = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_INVALID_RETURN_VALUE', 'UND_ERR_NOT_SUPPORTED', 'UND_ERR_DESTROYED', 'UND_ERR_CLOSED'])

/** OpenSSL certificate verification codes (Node puts them on `err.code` of a failed TLS handshake). */
const TLS_CODE_RE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|HOSTNAME_MISMATCH$)/

/** Local file-system failures. */
const IO_CODES = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'ENOENT', 'EMFILE', 'ENFILE', 'EBUSY', 'EFBIG'])

/** Messages of undici's `fetch` TypeErrors (the real reason is in `cause`, when there is one). */
const FETCH_MESSAGES = new Set(['fetch failed', 'terminated'])

interface ErrorLike {
  name?: unknown
  code?: unknown
  message?: unknown
  cause?: unknown
  errors?: unknown
}

function classOf(e: ErrorLike): SinkErrorClass | undefined {
  const code = typeof e.code === 'string' ? e.code : undefined
  if (code !== undefined) {
    if (code.startsWith('UND_ERR')) return UNDICI_BUG_CODES.has(code) ? undefined : 'network'
    if (code.startsWith('HPE_')) return 'network' // undici's HTTP parser: the server sent something that is not HTTP
    if (NETWORK_CODES.has(code) || TLS_CODE_RE.test(code)) return 'network'
    if (IO_CODES.has(code)) return 'io'
  }
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return 'network'
  if (e.name === 'TypeError' && typeof e.message === 'string' && FETCH_MESSAGES.has(e.message)) return 'network'
  return undefined
}

/** Classifies an exception a sink threw; see the module comment. */
export function classifySinkError(err: unknown): SinkErrorClass {
  // Breadth-first over `cause` and AggregateError's `errors`, bounded (cause chains can be cyclic).
  const queue: unknown[] = [err]
  const seen = new Set<unknown>()
  while (queue.length > 0 && seen.size < 16) {
    const e = queue.shift()
    if (typeof e !== 'object' || e === null || seen.has(e)) continue
    seen.add(e)
    const c = classOf(e as ErrorLike)
    if (c) return c
    const { cause, errors } = e as ErrorLike
    queue.push(cause)
    if (Array.isArray(errors)) queue.push(...(errors as unknown[]))
  }
  return 'error'
}
