import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { checkWritable } from '../../buffer/index.js'
import type { ApiGateway } from '../app.js'
import { Health } from '../schemas.js'

/**
 * `GET /healthz`: 200 only when the buffer database takes writes and the background check found no
 * damage in it (docs/integrity.md), the broker session is up and no drainer has failed
 * (drain/drainer.ts: its loop threw, e.g. the database was locked); 503 with the reasons otherwise (the container health check and load balancers read the status).
 * `GET /metrics`: Prometheus text from the gateway's prom-client registry.
 */
export const healthRoutes: FastifyPluginAsyncTypebox<{ gateway: ApiGateway }> = async (app, { gateway: gw }) => {
  app.get('/healthz', { schema: { response: { 200: Health, 503: Health } } }, async (_req, reply) => {
    const reasons: string[] = []
    const database = databaseCheck(gw)
    if (database !== 'ok') reasons.push(`database: ${database}`)
    const broker = gw.state.brokerConnected ? 'ok' : 'not connected'
    if (gw.state.ingestPaused?.reason === 'backpressure') reasons.push('broker: disconnected on purpose, ingest paused by backpressure until the drainers free room in the buffer (FERRY_ERR_BUFFER_BACKPRESSURE)')
    else if (broker !== 'ok') reasons.push('broker: not connected (the gateway keeps reconnecting with backoff)')
    const failed = gw.drainers.filter((d) => d.state === 'failed')
    for (const d of failed) reasons.push(`drainer ${d.name}: failed (${d.lastError?.message ?? 'unknown error'}); it starts again after a back-off, data stays buffered`)
    const drainers = failed.length ? `failed: ${failed.map((d) => d.name).join(', ')}` : 'ok'
    return reply.code(reasons.length ? 503 : 200).send({ ok: reasons.length === 0, checks: { database, broker, drainers }, reasons })
  })

  app.get('/metrics', { schema: { response: { 200: Type.String() } } }, async (_req, reply) => {
    gw.status() // refreshes the backlog and oldest-age gauges
    reply.type(gw.metrics.registry.contentType)
    return gw.metrics.registry.metrics()
  })
}

/** 'ok' when the buffer database is open and takes writes (see `checkWritable`), else why not. */
function databaseCheck(gw: ApiGateway): string {
  const db = gw.buffer.db
  if (!db.open) return 'closed'
  // Takes writes, but they go into a file the next start moves aside (docs/integrity.md).
  const damage = gw.state.bufferDamage
  if (damage) return `damaged (FERRY_ERR_BUFFER_DAMAGED, found by the background check at ${new Date(damage.at).toISOString()}: ${damage.error}); readings are still taken and delivered; once the sinks have caught up, restart the gateway: the next start moves the file aside`
  const paused = gw.state.ingestPaused
  if (paused?.reason === 'disk-full') return `not writable (${paused.error}); free space on the buffer volume`
  try {
    checkWritable(db)
    return 'ok'
  } catch (err) {
    return `not writable (${(err as Error).message})`
  }
}
