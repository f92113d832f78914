import type { FastifyInstance } from 'fastify'
import type { Logger } from '../../../common/src/logger.js'
import type { TalkBackStatus } from '../led/talkback.js'
import type { ApiGateway } from './app.js'
import { buildApp } from './app.js'
import { apiMode, type ApiConfig } from './config.js'

/**
 * Starts the HTTP API and dashboard unless FERRY_HTTP_PORT is 0. Throws ConfigError when a
 * state-changing API would run without FERRY_API_TOKEN (call `apiMode()` before opening anything to
 * fail even earlier, as `ferry gateway` does).
 */
export async function startApi(
  config: ApiConfig & { FERRY_LED_COMMAND_TTL_MS?: number },
  deps: { gateway: ApiGateway; log: Logger; talkback?: { status(): TalkBackStatus } },
): Promise<FastifyInstance | undefined> {
  const mode = apiMode(config)
  if (mode.kind === 'off') return undefined
  const app = await buildApp({
    gateway: deps.gateway,
    ...(mode.kind === 'full' ? { token: mode.token } : { readOnly: true }),
    rateLimit: { max: config.FERRY_API_RATE_LIMIT_MAX, windowMs: config.FERRY_API_RATE_LIMIT_WINDOW_MS },
    ...(config.FERRY_LED_COMMAND_TTL_MS ? { ledTtlMs: config.FERRY_LED_COMMAND_TTL_MS } : {}),
    ...(deps.talkback ? { talkback: deps.talkback } : {}),
    log: deps.log,
  })
  await app.listen({ port: config.FERRY_HTTP_PORT, host: config.FERRY_HTTP_HOST })
  const addr = app.server.address()
  deps.log.info({ host: config.FERRY_HTTP_HOST, port: typeof addr === 'object' && addr ? addr.port : config.FERRY_HTTP_PORT, readOnly: mode.kind === 'read-only' }, 'HTTP API and dashboard listening')
  return app
}
