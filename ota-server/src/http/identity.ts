import type { TLSSocket } from 'node:tls'
import type { FastifyRequest } from 'fastify'

/**
 * The CN of the verified client certificate, or undefined. The TLS layer has already checked the
 * chain against the CA and CRL (requestCert + rejectUnauthorized), so an unauthorised socket here
 * means a server built without those options; it is refused all the same. A certificate with several
 * CNs is refused rather than guessed at.
 */
export function peerCommonName(req: FastifyRequest): string | undefined {
  const socket = req.raw.socket as Partial<TLSSocket>
  if (!socket.encrypted || socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return undefined
  const cert = socket.getPeerCertificate()
  const cn: unknown = cert?.subject?.CN
  return typeof cn === 'string' ? cn : undefined
}

/** How a request proves who it is; tests of the HTTP layer swap it, production keeps `peerCommonName`. */
export type Identify = (req: FastifyRequest) => string | undefined
