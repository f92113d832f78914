import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { parseGatewayCn } from '../../../common/src/ids.js'
import { OtaErrors } from '../http/errors.js'
import type { Identify } from '../http/identity.js'

/**
 * Who may do what on the OTA server beyond the device routes. The TLS layer has already required a
 * client certificate of the Ferry CA for every connection; these checks come on top:
 * - READ (reports, rollout status, metrics): the gateway's certificate (`ferry-gateway` or a replica
 *   `ferry-gateway-<n>`), or `Authorization: Bearer $FERRY_API_TOKEN`;
 * - OPERATE (halt, resume, advance): the bearer token only. A certificate alone never changes a
 *   rollout: the gateway's key lives on the gateway host and is used unattended.
 * - FORWARD (POST /ota/reports): the gateway's certificate only, since the reports are its devices'.
 */
export function sameSecret(a: string, b: string): boolean {
  // Compare digests so the comparison takes the same time whatever the lengths.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

function bearer(req: FastifyRequest, token: string | undefined): boolean {
  const h = req.headers.authorization
  const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null
  return token !== undefined && m !== null && sameSecret(m[1]!, token)
}

function isGateway(cn: string | undefined): boolean {
  return cn !== undefined && parseGatewayCn(cn) !== null
}

export function requireReader(req: FastifyRequest, identify: Identify, token: string | undefined, what: string): void {
  const cn = identify(req)
  if (isGateway(cn) || bearer(req, token)) return
  if (cn === undefined && req.headers.authorization === undefined) throw new OtaErrors.Unauthenticated()
  throw new OtaErrors.Forbidden(`${what} are readable by the gateway certificate or with FERRY_API_TOKEN only`)
}

export function requireOperator(req: FastifyRequest, identify: Identify, token: string | undefined): void {
  if (token === undefined) throw new OtaErrors.Forbidden('rollout changes need FERRY_API_TOKEN, which this OTA server does not have; set it and restart')
  if (bearer(req, token)) return
  if (identify(req) === undefined && req.headers.authorization === undefined) throw new OtaErrors.Unauthenticated()
  throw new OtaErrors.Forbidden('halt, resume and advance need Authorization: Bearer $FERRY_API_TOKEN')
}

/** The gateway's CN, or a 401/403. */
export function requireGateway(req: FastifyRequest, identify: Identify): string {
  const cn = identify(req)
  if (cn === undefined) throw new OtaErrors.Unauthenticated()
  if (!isGateway(cn)) throw new OtaErrors.Forbidden('only the gateway certificate forwards reports')
  return cn
}
