import type { FastifyInstance } from 'fastify'
import type { Logger } from '../../../common/src/logger.js'
import type { TalkBackStatus } from '../led/talkback.js'
import type { ApiGateway } from './app.js'
import { buildApp } from './app.js'
import { apiMode, type ApiConfig } from './config.js'

/**
 * Starts the HTTP API and dashboard unless FERRY_HTTP_PORT is 0, over HTTPS when
 * FERRY_HTTP_TLS_CERT/KEY are set. Throws ConfigError when a state-changing API would run without
 * FERRY_API_TOKEN, or plain HTTP beyond loopback without FERRY_HTTP_INSECURE (call `apiMode()` before
 * opening anything to fail even earlier, as `ferry gateway` does).
 */
export async function startApi(
  config: ApiConfig & { FERRY_LED_COMMAND_TTL_MS?: number },
  deps: { gateway: ApiGateway; log: Logger; talkback?: { status(): TalkBackStatus } },
): Promise<FastifyInstance | undefined> {
  const mode = apiMode(config)
  if (mode.kind === 'off') return undefined
  const { transport } = mode
  const app = await buildApp({
    gateway: deps.gateway,
    ...(mode.kind === 'full' ? { token: mode.token } : { readOnly: true }),
    rateLimit: { max: config.FERRY_API_RATE_LIMIT_MAX, windowMs: config.FERRY_API_RATE_LIMIT_WINDOW_MS },
    ...(config.FERRY_LED_COMMAND_TTL_MS ? { ledTtlMs: config.FERRY_LED_COMMAND_TTL_MS } : {}),
    ...(deps.talkback ? { talkback: deps.talkback } : {}),
    ...(transport.scheme === 'https' ? { tls: transport.tls } : {}),
    log: deps.log,
  })
  await app.listen({ port: config.FERRY_HTTP_PORT, host: config.FERRY_HTTP_HOST })
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr ? addr.port : config.FERRY_HTTP_PORT
  const log = deps.log.child({ component: 'api' })
  if (transport.scheme === 'http' && transport.exposed) {
    // Every start, on purpose: an operator must not forget that the token travels in clear.
    log.warn(
      { host: config.FERRY_HTTP_HOST, port },
      'FERRY_HTTP_INSECURE=true: the HTTP API and dashboard are served WITHOUT TLS beyond this host; the API token and the readings cross the network in clear. Set FERRY_HTTP_TLS_CERT and FERRY_HTTP_TLS_KEY for HTTPS.',
    )
  }
  const clientCerts = transport.scheme === 'https' && transport.tls.clientCa ? transport.tls.clientNames : []
  log.info({ scheme: transport.scheme, host: config.FERRY_HTTP_HOST, port, readOnly: mode.kind === 'read-only', clientCerts }, 'HTTP API and dashboard listening')
  return app
}
