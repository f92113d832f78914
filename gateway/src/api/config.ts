import { Type, type Static } from 'typebox'
import { ConfigError } from '../../../common/src/errors.js'
import { apiTransport, type ApiTransport } from './transport.js'

/** A comma-separated list of certificate common names (device-id syntax, e.g. `homeassistant`). */
const NAME_LIST = '^\\s*[a-z0-9][a-z0-9_-]{0,62}\\s*(,\\s*[a-z0-9][a-z0-9_-]{0,62}\\s*)*$'

export const apiConfigSchema = Type.Object({
  FERRY_HTTP_PORT: Type.Integer({ default: 8080, minimum: 0, maximum: 65535, description: 'Port of the gateway HTTP API and dashboard; 0 disables it.' }),
  FERRY_HTTP_HOST: Type.String({
    default: '127.0.0.1',
    description:
      'Address the HTTP API and dashboard listen on. The default serves this host only. To serve the LAN (0.0.0.0) set FERRY_HTTP_TLS_CERT and FERRY_HTTP_TLS_KEY: plain HTTP on an address other than loopback refuses to start unless FERRY_HTTP_INSECURE=true.',
  }),
  FERRY_HTTP_TLS_CERT: Type.Optional(Type.String({
    minLength: 1,
    description:
      'Certificate (PEM; a chain is allowed) to serve the API and dashboard over HTTPS only, TLS 1.2 or newer, e.g. <pki>/server.crt from "ferry pki server --host ferry.local"; its names must include the host name browsers and clients use. Set together with FERRY_HTTP_TLS_KEY.',
  })),
  FERRY_HTTP_TLS_KEY: Type.Optional(Type.String({ minLength: 1, description: 'Path to the private key (PEM) of FERRY_HTTP_TLS_CERT, e.g. <pki>/server.key.' })),
  FERRY_HTTP_TLS_CLIENT_CA: Type.Optional(Type.String({
    minLength: 1,
    description:
      'CA certificate (PEM), e.g. <pki>/ca.crt. When set, the HTTPS server asks for a client certificate, and one this CA signed whose common name is in FERRY_HTTP_TLS_CLIENT_NAMES authorises state-changing routes without the bearer token (machine clients). A browser without a certificate still uses the token. Needs FERRY_HTTP_TLS_CERT.',
  })),
  FERRY_HTTP_TLS_CLIENT_NAMES: Type.Optional(Type.String({
    pattern: NAME_LIST,
    description:
      'Comma-separated common names of the client certificates accepted in place of the token, e.g. homeassistant for a certificate from "ferry pki device homeassistant". Required with FERRY_HTTP_TLS_CLIENT_CA: the same CA signs every device, and a device must not drive the API.',
  })),
  FERRY_HTTP_TLS_CRL: Type.Optional(Type.String({
    minLength: 1,
    description: 'Revocation list (PEM), e.g. <pki>/crl.pem, checked for client certificates (FERRY_HTTP_TLS_CLIENT_CA). Read at start: restart the gateway after a revocation. Once its nextUpdate passes, every client certificate is refused (the token still works).',
  })),
  FERRY_HTTP_INSECURE: Type.Boolean({
    default: false,
    description:
      'Allow plain HTTP on an address other than loopback (FERRY_HTTP_HOST), so the API token and the readings cross the network in clear. Only behind a TLS proxy or on a network you trust; a warning is logged on every start.',
  }),
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

/** How the HTTP API runs: not at all, read-only, or with the token-guarded LED route; and over what. */
export type ApiMode = { kind: 'off' } | { kind: 'read-only'; transport: ApiTransport } | { kind: 'full'; token: string; transport: ApiTransport }

/** What `apiMode` reads; the HTTP settings with defaults may be left out (tests). */
export type ApiModeSettings = Pick<ApiConfig, 'FERRY_HTTP_PORT' | 'FERRY_API_READ_ONLY'> & Partial<ApiConfig>

/**
 * Decides the API mode and transport, before anything is opened or connected (`ferry gateway`
 * calls it first, so a bad setting never touches the buffer). A state-changing API without a token
 * is refused (ConfigError): secure by default, and the operator chooses read-only explicitly. The
 * TLS files are read here, so a wrong path is a configuration error naming the setting
 * (transport.ts, which also refuses plain HTTP beyond loopback).
 */
export function apiMode(c: ApiModeSettings, readFile?: (path: string) => Buffer): ApiMode {
  if (c.FERRY_HTTP_PORT === 0) return { kind: 'off' }
  if (!c.FERRY_API_READ_ONLY && !c.FERRY_API_TOKEN) {
    throw new ConfigError(
      `FERRY_API_TOKEN is not set, so the HTTP API on port ${c.FERRY_HTTP_PORT} would accept LED commands from anyone; it refuses to start. ` +
        'Set FERRY_API_TOKEN to a random string of at least 16 characters (openssl rand -hex 24), or FERRY_API_READ_ONLY=true for a read-only API and dashboard, or FERRY_HTTP_PORT=0 to turn the API off.',
    )
  }
  const transport = apiTransport(c, readFile)
  return c.FERRY_API_READ_ONLY ? { kind: 'read-only', transport } : { kind: 'full', token: c.FERRY_API_TOKEN!, transport }
}
