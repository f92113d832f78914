import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { ApiErrors } from './errors.js'

/** Compares secrets in constant time (hashing first makes the lengths equal, so length leaks nothing). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

/**
 * A preHandler that requires `Authorization: Bearer <token>`. It runs after the rate limiter
 * (onRequest), so failed attempts count against the limit and a token cannot be guessed quickly.
 */
export function requireBearer(token: string) {
  return async (req: FastifyRequest): Promise<void> => {
    const h = req.headers.authorization
    const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null
    if (!m || !sameSecret(m[1]!, token)) throw new ApiErrors.Unauthorized()
  }
}
