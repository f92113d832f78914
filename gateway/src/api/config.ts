import { Type, type Static } from 'typebox'
import { ConfigError } from '../../../common/src/errors.js'

export const apiConfigSchema = Type.Object({
  FERRY_HTTP_PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535, description: 'Port of the gateway HTTP API and dashboard; 0 disables it.' }),
  FERRY_HTTP_HOST: Type.String({ default: '0.0.0.0', description: 'Address the HTTP API listens on.' }),
  FERRY_API_TOKEN: Type.Optional(Type.String({
    minLength: 16,
    secret: true,
    random: true,
    description: 'Bearer token for state-changing API routes (POST /api/devices/:id/led) and the dashboard LED slider. At least 16 characters that look random: no whitespace, at least 6 different characters, not only digits or only letters of one case, not a run like abcd or a repeated string (e.g. openssl rand -hex 24); no default. Without it the API refuses to start unless FERRY_API_READ_ONLY=true.',
  })),
  FERRY_API_READ_ONLY: Type.Boolean({ default: false, description: 'Serve only the read-only API and dashboard (no LED route), which is then allowed without FERRY_API_TOKEN.' }),
  FERRY_API_RATE_LIMIT_MAX: Type.Integer({ default: 30, minimum: 1, description: 'Most state-changing requests (LED) per client address per window; more are answered 429 with Retry-After.' }),
  FERRY_API_RATE_LIMIT_WINDOW_MS: Type.Integer({ default: 60_000, minimum: 1000, description: 'Window of FERRY_API_RATE_LIMIT_MAX, in ms.' }),
})

export type ApiConfig = Static<typeof apiConfigSchema>

/** How the HTTP API runs: not at all, read-only, or with the token-guarded LED route. */
export type ApiMode = { kind: 'off' } | { kind: 'read-only' } | { kind: 'full'; token: string }

/**
 * Decides the API mode, before anything is opened or connected. A state-changing API without a token
 * is refused (ConfigError): secure by default, and the operator chooses read-only explicitly.
 */
export function apiMode(c: Pick<ApiConfig, 'FERRY_HTTP_PORT' | 'FERRY_API_TOKEN' | 'FERRY_API_READ_ONLY'>): ApiMode {
  if (c.FERRY_HTTP_PORT === 0) return { kind: 'off' }
  if (c.FERRY_API_READ_ONLY) return { kind: 'read-only' }
  if (c.FERRY_API_TOKEN) return { kind: 'full', token: c.FERRY_API_TOKEN }
  throw new ConfigError(
    `FERRY_API_TOKEN is not set, so the HTTP API on port ${c.FERRY_HTTP_PORT} would accept LED commands from anyone; it refuses to start. ` +
      'Set FERRY_API_TOKEN to a random string of at least 16 characters (openssl rand -hex 24), or FERRY_API_READ_ONLY=true for a read-only API and dashboard, or FERRY_HTTP_PORT=0 to turn the API off.',
  )
}
