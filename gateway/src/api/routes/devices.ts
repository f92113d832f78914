import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { ApiGateway } from '../app.js'
import { requireAuth } from '../auth.js'
import { ApiErrors } from '../errors.js'
import { DeviceQueries } from '../queries.js'
import { CommandRecord, Device, DeviceParams, DeviceScope, ErrorBody, LedBody, Reading, ReadingsQuery } from '../schemas.js'

export interface DeviceRoutesOptions {
  gateway: ApiGateway
  /** Set: the LED route is served and needs this bearer token. Unset: read-only API. */
  token?: string
  /** Client certificate names that count instead of the token (FERRY_HTTP_TLS_CLIENT_NAMES). */
  clientNames?: readonly string[]
  rateLimit: { max: number; windowMs: number }
  ledTtlMs: number
  now: () => number
}

/** Default window of `GET /api/devices/:id/readings` without `since`. */
const DEFAULT_HISTORY_MS = 10 * 60_000

/**
 * Devices, their readings, and LED commands:
 * `GET /api/devices`, `GET /api/devices/:id`, `GET /api/devices/:id/readings?since=&limit=`,
 * `GET /api/commands?device=&limit=`, and (with a token) `POST /api/devices/:id/led`.
 */
export const deviceRoutes: FastifyPluginAsyncTypebox<DeviceRoutesOptions> = async (app, opts) => {
  const gw = opts.gateway
  const q = new DeviceQueries(gw.buffer.db, gw.commands.store)
  const unknown = (id: string) => new ApiErrors.NotFound(`no device "${id}" has sent anything to this gateway yet`)

  // A replica of a share group knows only the messages its share brought (docs/scale-out.md#what-each-replica-knows).
  const scope = () => {
    const r = gw.state.replica
    if (!r) return { gateway: 'single' as const, note: 'this gateway receives every device message' }
    return {
      gateway: 'replica' as const,
      group: r.group,
      replica: r.name,
      note: `one of several gateways sharing the devices (FERRY_MQTT_SHARE_GROUP=${r.group}): devices, readings and LED commands shown are those that reached ${r.name}; ask every replica (or the sink) for the whole picture`,
    }
  }
  app.get('/api/devices', { schema: { response: { 200: Type.Object({ devices: Type.Array(Device), scope: DeviceScope }) } } }, async () => ({ devices: q.devices(), scope: scope() }))

  app.get('/api/devices/:id', { schema: { params: DeviceParams, response: { 200: Device, 404: ErrorBody } } }, async (req) => {
    const d = q.device(req.params.id)
    if (!d) throw unknown(req.params.id)
    return d
  })

  app.get(
    '/api/devices/:id/readings',
    {
      schema: {
        params: DeviceParams,
        querystring: ReadingsQuery,
        response: { 200: Type.Object({ device: Type.String(), since: Type.Integer(), readings: Type.Array(Reading), more: Type.Boolean() }), 404: ErrorBody },
      },
    },
    async (req) => {
      const { id } = req.params
      if (!q.device(id)) throw unknown(id)
      const since = req.query.since ?? opts.now() - DEFAULT_HISTORY_MS
      return { device: id, since, ...q.readings(id, since, req.query.limit ?? 1000) }
    },
  )

  app.get(
    '/api/commands',
    {
      schema: {
        querystring: Type.Object({
          device: Type.Optional(DeviceParams.properties.id),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Default 50.' })),
        }),
        response: { 200: Type.Object({ commands: Type.Array(CommandRecord) }) },
      },
    },
    async (req) => ({ commands: gw.commands.list({ ...(req.query.device ? { device: req.query.device } : {}), limit: req.query.limit ?? 50 }) }),
  )

  if (opts.token === undefined) return

  app.post(
    '/api/devices/:id/led',
    {
      // Counted per client address before authentication, so wrong tokens are limited too.
      config: { rateLimit: { max: opts.rateLimit.max, timeWindow: opts.rateLimit.windowMs } },
      preHandler: requireAuth({ token: opts.token, clientNames: opts.clientNames ?? [] }),
      schema: {
        params: DeviceParams,
        body: LedBody,
        headers: Type.Object({ authorization: Type.Optional(Type.String({ description: 'Bearer <FERRY_API_TOKEN>' })) }),
        response: { 202: CommandRecord, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      },
    },
    async (req, reply) => {
      const { id } = req.params
      if (!q.device(id)) throw unknown(id)
      // Refuse rather than queue: the caller learns at once that the LED will not follow.
      if (!gw.state.brokerConnected) throw new ApiErrors.BrokerDown()
      const expiresAt = opts.now() + (req.body.ttlMs ?? opts.ledTtlMs)
      const rec = await gw.commands.send({ device: id, brightness: req.body.brightness, expiresAt, source: 'api', raw: JSON.stringify(req.body) }, { waitMs: 3000 })
      req.log.info({ cmd: rec.cmd, device: id, brightness: req.body.brightness, state: rec.state }, 'LED command from the API')
      return reply.code(202).send(rec)
    },
  )
}
