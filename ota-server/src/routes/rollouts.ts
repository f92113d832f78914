import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { DEVICE_ID_RE } from '../../../common/src/ids.js'
import { DEPLOYMENT_PATTERN } from '../manifest/envelope.js'
import { otaReportSchema } from '../manifest/report.js'
import type { Identify } from '../http/identity.js'
import type { Rollouts } from '../rollout/engine.js'
import { RolloutErrors } from '../rollout/errors.js'
import type { OtaMetrics } from '../rollout/metrics.js'
import { RolloutStatusSchema } from '../rollout/status.js'
import type { ReportStore } from '../store/reports.js'
import { requireGateway, requireOperator, requireReader } from './access.js'

export interface RolloutRoutesOptions {
  rollouts: Rollouts
  reports: ReportStore
  metrics: OtaMetrics
  identify: Identify
  now: () => number
  apiToken?: string
  rateLimit: { max: number; windowMs: number }
}

/** At most this many reports per forwarded batch (the gateway sends up to 200). */
export const FORWARD_MAX = 500

const Deployment = Type.Object({ deployment: Type.String({ pattern: DEPLOYMENT_PATTERN }) })
const Why = Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500, description: 'Why, in the operator\'s words; kept in the rollout history.' })) }, { additionalProperties: false })

/**
 * Rollout status and control, forwarded reports and metrics (docs/ota-rollouts.md):
 * - `GET /ota/rollouts`, `GET /ota/rollouts/:deployment`: gateway certificate or token;
 * - `POST /ota/rollouts/:deployment/{halt,resume,advance}` `{"reason"?}`: token only;
 * - `POST /ota/reports` `{"reports":[…]}`: the gateway forwards its devices' MQTT `ota/status`;
 * - `GET /metrics`: Prometheus text, gateway certificate or token.
 */
export const rolloutRoutes: FastifyPluginAsync<RolloutRoutesOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const key = (req: FastifyRequest) => opts.identify(req) ?? `ip:${req.ip}`
  const limit = { rateLimit: { max: opts.rateLimit.max, timeWindow: opts.rateLimit.windowMs, keyGenerator: key } }
  const reader = (what: string) => async (req: FastifyRequest) => requireReader(req, opts.identify, opts.apiToken, what)

  app.get('/ota/rollouts', {
    config: limit,
    preHandler: reader('rollouts'),
    schema: { response: { 200: Type.Object({ rollouts: Type.Array(RolloutStatusSchema) }) } },
  }, async () => ({ rollouts: opts.rollouts.list(opts.now()) }))

  app.get('/ota/rollouts/:deployment', {
    config: limit,
    preHandler: reader('rollouts'),
    schema: { params: Deployment, response: { 200: RolloutStatusSchema } },
  }, async (req) => {
    const s = opts.rollouts.status(req.params.deployment, opts.now())
    if (!s) throw new RolloutErrors.NotFound(`no deployment ${req.params.deployment}: no release names it and it has no rollout state`)
    return s
  })

  for (const action of ['halt', 'resume', 'advance'] as const) {
    app.post(`/ota/rollouts/:deployment/${action}`, {
      config: limit,
      // The body is optional: `curl -X POST …/halt` with nothing more is a halt without a reason.
      preValidation: async (req) => {
        if (req.body === undefined || req.body === null) req.body = {}
      },
      // After the rate limiter (onRequest), so failed attempts count and a token cannot be guessed quickly.
      preHandler: async (req) => requireOperator(req, opts.identify, opts.apiToken),
      schema: { params: Deployment, body: Why, response: { 200: RolloutStatusSchema } },
    }, async (req) => {
      const reason = (req.body as { reason?: string } | undefined)?.reason
      const deployment = (req.params as { deployment: string }).deployment
      req.log.info({ deployment, action, reason }, 'operator changes a rollout')
      return opts.rollouts[action](deployment, reason, opts.now())
    })
  }

  app.post('/ota/reports', {
    config: limit,
    bodyLimit: 512 * 1024,
    schema: {
      body: Type.Object(
        {
          reports: Type.Array(
            Type.Object(
              {
                ts: Type.Integer({ minimum: 0, description: 'When the gateway received it (epoch ms).' }),
                device: Type.String({ pattern: DEVICE_ID_RE.source }),
                deployment: otaReportSchema.properties.deployment,
                state: otaReportSchema.properties.state,
                version: otaReportSchema.properties.version,
                reason: Type.Optional(otaReportSchema.properties.reason),
              },
              { additionalProperties: false },
            ),
            { maxItems: FORWARD_MAX },
          ),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Object({ stored: Type.Integer() }) },
    },
  }, async (req) => {
    const gateway = requireGateway(req, opts.identify)
    const now = opts.now()
    for (const r of req.body.reports) {
      // The gateway's clock stamps them; a time ahead of ours would count a report in stages it never saw.
      opts.reports.append({ ts: Math.min(r.ts, now), device: r.device, source: 'mqtt', deployment: r.deployment, state: r.state, version: r.version, ...(r.reason !== undefined ? { reason: r.reason } : {}) })
      opts.metrics.reports.inc({ state: r.state, source: 'mqtt' })
    }
    if (req.body.reports.length) req.log.debug({ gateway, stored: req.body.reports.length }, 'forwarded OTA reports stored')
    return { stored: req.body.reports.length }
  })

  app.get('/metrics', {
    config: limit,
    preHandler: reader('metrics'),
  }, async (_req, reply) => {
    reply.type(opts.metrics.registry.contentType)
    return opts.metrics.registry.metrics()
  })
}
