import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { TypeBoxValidatorCompiler, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { silentLogger, type Logger } from '../../../common/src/logger.js'
import { ConfigError } from '../../../common/src/errors.js'
import type { Gateway } from '../gateway.js'
import type { TalkBackStatus } from '../led/talkback.js'
import { STATUS_CODES } from './errors.js'
import { healthRoutes } from './routes/health.js'
import { statusRoutes } from './routes/status.js'
import { deviceRoutes } from './routes/devices.js'
import { dashboardRoutes } from './routes/dashboard.js'
import { addSecurityHeaders } from './security-headers.js'
import type { ApiTls } from './transport.js'

/** What the API reads from the running gateway. */
export type ApiGateway = Pick<Gateway, 'buffer' | 'state' | 'status' | 'metrics' | 'commands' | 'drainers'>

export interface ApiDeps {
  gateway: ApiGateway
  /** Bearer token for the LED route. Required unless `readOnly`. */
  token?: string
  /** Serve no state-changing route; then no token is needed. */
  readOnly?: boolean
  /** Per client address, for state-changing routes. Default 30 per minute. */
  rateLimit?: { max: number; windowMs: number }
  /** Lifetime of an LED command from the API, unless the request says otherwise. Default 5 minutes. */
  ledTtlMs?: number
  /** The TalkBack poller, when one runs, for /api/status. */
  talkback?: { status(): TalkBackStatus }
  /** Dashboard folder (default: gateway/src/dashboard). */
  dashboardDir?: string
  /**
   * Serve HTTPS (TLS 1.2+) with this certificate and key, and with `clientCa` ask for client
   * certificates (transport.ts reads them from the FERRY_HTTP_TLS_* settings). Absent: plain HTTP.
   */
  tls?: ApiTls
  log?: Logger
  now?: () => number
}

/**
 * Builds the HTTP API and dashboard without listening (tests use `app.inject()`; `main.ts` listens).
 * Throws ConfigError for a state-changing API without a token.
 */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const readOnly = deps.readOnly ?? false
  if (!readOnly && !deps.token) {
    throw new ConfigError('the gateway API has a state-changing LED route and needs FERRY_API_TOKEN (or FERRY_API_READ_ONLY=true); refusing to start it without one')
  }
  const log = deps.log ?? silentLogger
  const app = Fastify({
    loggerInstance: log.child({ component: 'api' }),
    // One line per request would be INFO per dashboard poll; routes log what matters.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 16 * 1024,
    ...(deps.tls ? { https: httpsOptions(deps.tls) } : {}),
  }).withTypeProvider<TypeBoxTypeProvider>()
  // TypeBox validates: query strings and params are converted ("5" → 5), bodies are not, so
  // {"brightness":"50"} is a 400 rather than silently coerced; unknown body fields are refused.
  app.setValidatorCompiler(TypeBoxValidatorCompiler)

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500
    if (err.validation) {
      return reply.code(400).send({ code: 'FERRY_ERR_API_BAD_REQUEST', message: `${err.validationContext ?? 'request'}${err.message.replace(/^(querystring|params|body|headers)/, '')}`.trim() })
    }
    if (status >= 500 && !err.code?.startsWith('FERRY_')) req.log.error({ err, url: req.url }, 'request failed')
    return reply.code(status).send({
      code: err.code?.startsWith('FERRY_') ? err.code : (STATUS_CODES[status] ?? (status >= 500 ? 'FERRY_ERR_API_INTERNAL' : 'FERRY_ERR_API_BAD_REQUEST')),
      message: status >= 500 && !err.code?.startsWith('FERRY_') ? 'internal error; see the gateway log' : err.message,
    })
  })
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ code: 'FERRY_ERR_API_NOT_FOUND', message: 'no such route; see docs/api.md' }))
  addSecurityHeaders(app as unknown as FastifyInstance)

  // Limits only the routes that opt in (state-changing ones), per client address.
  await app.register(rateLimit, { global: false })
  await app.register(healthRoutes, { gateway: deps.gateway })
  await app.register(statusRoutes, { gateway: deps.gateway, readOnly, ...(deps.talkback ? { talkback: deps.talkback } : {}) })
  await app.register(deviceRoutes, {
    gateway: deps.gateway,
    ...(readOnly ? {} : { token: deps.token, clientNames: deps.tls?.clientNames ?? [] }),
    rateLimit: deps.rateLimit ?? { max: 30, windowMs: 60_000 },
    ledTtlMs: deps.ledTtlMs ?? 300_000,
    now: deps.now ?? Date.now,
  })
  await app.register(dashboardRoutes, deps.dashboardDir ? { dir: deps.dashboardDir } : {})
  return app as unknown as FastifyInstance
}

/**
 * Node's TLS server options for the API. TLS 1.2 is the floor (1.0 and 1.1 are deprecated, RFC 8996).
 * With a client CA the server asks for a certificate but lets the connection through without one
 * (`rejectUnauthorized: false`): browsers authenticate with the token, and auth.ts admits only a
 * certificate the CA verified (`socket.authorized`) whose name is listed.
 */
function httpsOptions(tls: ApiTls) {
  return {
    cert: tls.cert,
    key: tls.key,
    minVersion: 'TLSv1.2' as const,
    ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false, ...(tls.crl ? { crl: tls.crl } : {}) } : {}),
  }
}
