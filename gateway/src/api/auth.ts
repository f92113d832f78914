import { createHash, timingSafeEqual } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import type { FastifyRequest } from 'fastify'
import { ApiErrors } from './errors.js'

/**
 * Compares secrets in constant time: both are hashed first, so `timingSafeEqual` gets two digests of
 * equal length and neither the content nor the length of the token leaks through timing.
 */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

/** Who may call a state-changing route. */
export interface AuthOptions {
  /** FERRY_API_TOKEN, sent as `Authorization: Bearer <token>`. */
  token: string
  /** Common names of client certificates that count instead of the token (FERRY_HTTP_TLS_CLIENT_NAMES). */
  clientNames?: readonly string[]
}

/**
 * The common name of the request's client certificate when the TLS layer verified it against
 * FERRY_HTTP_TLS_CLIENT_CA (and the CRL) and it is one of `names`; otherwise undefined. A plain
 * HTTP socket, no certificate, or one the CA did not sign (`authorized` false) never counts.
 */
export function clientCertName(req: FastifyRequest, names: readonly string[]): string | undefined {
  const socket = req.raw.socket as Partial<TLSSocket>
  if (names.length === 0 || socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return undefined
  const cn = socket.getPeerCertificate().subject?.CN
  return typeof cn === 'string' && names.includes(cn) ? cn : undefined
}

/**
 * A preHandler for state-changing routes: a verified client certificate named in
 * `clientNames`, or `Authorization: Bearer <token>`. It runs after the rate limiter (onRequest), so
 * failed attempts count against the limit and a token cannot be guessed quickly. Nothing of the
 * header is logged.
 */
export function requireAuth(opts: AuthOptions) {
  const names = opts.clientNames ?? []
  return async (req: FastifyRequest): Promise<void> => {
    if (clientCertName(req, names)) return
    const h = req.headers.authorization
    const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null
    if (!m || !sameSecret(m[1]!, opts.token)) throw new ApiErrors.Unauthorized()
  }
}
