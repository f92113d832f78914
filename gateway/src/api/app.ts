import Fastify, { type FastifyInstance } from 'fastify'
import type { Gateway } from '../gateway.js'

export interface ApiDeps {
  gateway: Gateway
  token?: string
}

/** Builds the HTTP API without listening (tests use `app.inject()`); `main.ts` listens. */
export async function buildApp(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  const gw = deps.gateway

  app.get('/healthz', {
    schema: {
      response: {
        200: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },
        503: { type: 'object', properties: { ok: { type: 'boolean' }, reasons: { type: 'array', items: { type: 'string' } } }, required: ['ok', 'reasons'] },
      },
    },
  }, async (_req, reply) => {
    const reasons: string[] = []
    if (!gw.state.brokerConnected) reasons.push('broker not connected')
    if (gw.state.diskFull) reasons.push(`buffer not writable: ${gw.state.diskFull.error}`)
    if (!gw.buffer.db.open) reasons.push('buffer database closed')
    if (reasons.length) return reply.code(503).send({ ok: false, reasons })
    return { ok: true }
  })

  app.get('/api/status', async () => gw.status())

  app.get('/metrics', async (_req, reply) => {
    gw.status() // refreshes the backlog gauges
    reply.type(gw.metrics.registry.contentType)
    return gw.metrics.registry.metrics()
  })

  return app
}
