import type { FastifyInstance } from 'fastify'
import type { Logger } from '../../../common/src/logger.js'
import type { Gateway } from '../gateway.js'
import { buildApp } from './app.js'

/** Starts the HTTP API unless FERRY_HTTP_PORT is 0. */
export async function startApi(
  config: { FERRY_HTTP_PORT: number; FERRY_HTTP_HOST: string; FERRY_API_TOKEN?: string },
  deps: { gateway: Gateway; log: Logger },
): Promise<FastifyInstance | undefined> {
  if (config.FERRY_HTTP_PORT === 0) return undefined
  const app = await buildApp({ gateway: deps.gateway, token: config.FERRY_API_TOKEN })
  await app.listen({ port: config.FERRY_HTTP_PORT, host: config.FERRY_HTTP_HOST })
  deps.log.info({ port: config.FERRY_HTTP_PORT }, 'HTTP API listening')
  return app
}
