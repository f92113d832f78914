import type { KeyObject } from 'node:crypto'
import type { ServerOptions as HttpsOptions } from 'node:https'
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { silentLogger, type Logger } from '../../common/src/logger.js'
import { perDeviceDownloads } from './http/download-slots.js'
import { peerCommonName, type Identify } from './http/identity.js'
import { otaRoutes } from './routes/ota.js'
import { rolloutRoutes } from './routes/rollouts.js'
import { startRollouts } from './rollout/index.js'
import { ImageStore } from './store/images.js'
import { otaLayout } from './store/layout.js'
import { ReleaseStore } from './store/releases.js'
import { ReportStore } from './store/reports.js'

export interface OtaAppDeps {
  /** The OTA folder `ferry ota publish` writes. */
  dir: string
  /** TLS options (cert, key, ca, crl); requestCert and rejectUnauthorized are forced on. Absent: plain HTTP, for inject() tests only. */
  https?: HttpsOptions
  /** Release public keys; when given, envelopes that do not verify are never served. */
  trustedKeys?: KeyObject[]
  /** Who is asking; defaults to the verified client certificate's CN. */
  identify?: Identify
  /** Clock (epoch ms) for expiry decisions. */
  now?: () => number
  log?: Logger
  apiToken?: string
  rateLimit?: { max: number; downloadMax: number; windowMs: number }
  maxDownloads?: number
  /** Concurrent image downloads one device may hold (FERRY_OTA_MAX_DOWNLOADS_PER_DEVICE). */
  maxDownloadsPerDevice?: number
  retryAfterS?: number
}

/**
 * The OTA server without `listen` (main.ts / cli.ts listens; tests use inject() or listen on port 0).
 * It serves what `ferry ota publish` wrote and holds no private key.
 */
export async function buildApp(deps: OtaAppDeps): Promise<FastifyInstance> {
  const log = deps.log ?? silentLogger
  const layout = otaLayout(deps.dir)
  const app = Fastify({
    loggerInstance: log.child({ component: 'ota-server' }),
    // Per-request lines would be INFO per message; the routes log what matters at the right level.
    logController: new LogController({ disableRequestLogging: true }),
    // Refuse unknown fields instead of silently dropping them (Fastify's default removes them).
    ajv: { customOptions: { removeAdditional: false } },
    // Long enough for a slow device's Range request; idle connections are not worth holding longer.
    // (A revoked device's open connection is closed at the CRL reload: server.ts.)
    keepAliveTimeout: 5_000,
    ...(deps.https ? { https: { minVersion: 'TLSv1.2', ...deps.https, requestCert: true, rejectUnauthorized: true } } : {}),
  }) as unknown as FastifyInstance

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500
    if (err.validation) {
      return reply.code(400).send({ code: 'FERRY_ERR_OTA_BAD_REQUEST', message: `${err.validationContext ?? 'request'} ${err.message.replace(/^(querystring|params|body)\/?\s*/, '')}`.trim() })
    }
    if (status >= 500) req.log.error({ err, url: req.url }, 'request failed')
    return reply.code(status).send({
      code: err.code?.startsWith('FERRY_') ? err.code : status === 413 ? 'FERRY_ERR_OTA_TOO_LARGE' : status === 429 ? 'FERRY_ERR_OTA_RATE_LIMITED' : status >= 500 ? 'FERRY_ERR_OTA_INTERNAL' : 'FERRY_ERR_OTA_BAD_REQUEST',
      // Our own messages are written for devices and operators; internal ones may name paths.
      message: status >= 500 && !err.code?.startsWith('FERRY_') ? 'internal error; see the server log' : err.message,
    })
  })
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ code: 'FERRY_ERR_OTA_NOT_FOUND', message: 'no such endpoint; see ota-server/README.md' }))

  await app.register(rateLimit, { global: false })
  // Before the routes, so its preHandler reaches them.
  await app.register(perDeviceDownloads, { identify: deps.identify ?? peerCommonName, max: deps.maxDownloadsPerDevice ?? 2, retryAfterS: deps.retryAfterS ?? 30, routes: ['/ota/images/:name'] })
  // Staged rollouts and halts decide who is handed a signed envelope (docs/ota-rollouts.md).
  const releases = new ReleaseStore(layout, { trustedKeys: deps.trustedKeys, log })
  const reports = new ReportStore(layout.reportsFile)
  const rollout = startRollouts({ layout, releases, reports, now: deps.now ?? Date.now, log })
  app.addHook('onClose', async () => rollout.stop())
  await app.register(otaRoutes, {
    releases,
    images: new ImageStore(layout),
    reports,
    rollouts: rollout.engine,
    metrics: rollout.metrics,
    identify: deps.identify ?? peerCommonName,
    now: deps.now ?? Date.now,
    apiToken: deps.apiToken,
    rateLimit: deps.rateLimit ?? { max: 30, downloadMax: 600, windowMs: 60_000 },
    maxDownloads: deps.maxDownloads ?? 16,
    retryAfterS: deps.retryAfterS ?? 30,
  })
  await app.register(rolloutRoutes, {
    rollouts: rollout.engine,
    reports,
    metrics: rollout.metrics,
    identify: deps.identify ?? peerCommonName,
    now: deps.now ?? Date.now,
    apiToken: deps.apiToken,
    rateLimit: { max: deps.rateLimit?.downloadMax ?? 600, windowMs: deps.rateLimit?.windowMs ?? 60_000 },
  })
  return app
}
