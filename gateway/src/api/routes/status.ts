import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { TalkBackStatus } from '../../led/talkback.js'
import type { ApiGateway } from '../app.js'
import { Status } from '../schemas.js'

/**
 * `GET /api/status`: buffer depth, per-sink backlog, oldest age, totals and last error, drops, dead
 * letters, gateway state, drainer states, LED command counts and the TalkBack poller.
 */
export const statusRoutes: FastifyPluginAsyncTypebox<{ gateway: ApiGateway; talkback?: { status(): TalkBackStatus }; readOnly: boolean }> = async (app, opts) => {
  app.get('/api/status', { schema: { response: { 200: Status } } }, async () => ({
    ...opts.gateway.status(),
    commands: { byState: opts.gateway.commands.counts(), talkback: opts.talkback?.status() ?? null },
    api: { readOnly: opts.readOnly },
  }))
}
