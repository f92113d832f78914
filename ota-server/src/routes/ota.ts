import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { isDeviceId } from '../../../common/src/ids.js'
import { HW_PATTERN } from '../manifest/envelope.js'
import { MAX_REPORT_BYTES, otaReportRecordSchema, otaReportSchema } from '../manifest/report.js'
import { SEMVER_MAX_LENGTH, SEMVER_PATTERN } from '../manifest/semver.js'
import { OtaErrors } from '../http/errors.js'
import type { Identify } from '../http/identity.js'
import { ifRangeHolds, noneMatch, parseRange } from '../http/range.js'
import { bufferBody } from '../http/buffer-body.js'
import { ImageCorruptError, ImageNotFoundError, type ImageStore } from '../store/images.js'
import type { ReleaseStore } from '../store/releases.js'
import type { ReportStore } from '../store/reports.js'
import type { Rollouts } from '../rollout/engine.js'
import type { OtaMetrics } from '../rollout/metrics.js'
import { requireReader } from './access.js'

export interface OtaRoutesOptions {
  releases: ReleaseStore
  images: ImageStore
  reports: ReportStore
  identify: Identify
  now: () => number
  /** Staged rollouts and halts (rollout/engine.ts); without it every release goes to all its manifest includes. */
  rollouts?: Rollouts
  metrics?: OtaMetrics
  /** Bearer token accepted by GET /ota/reports besides the gateway certificate. */
  apiToken?: string
  rateLimit: { max: number; downloadMax: number; windowMs: number }
  maxDownloads: number
  retryAfterS: number
}

/** The device id of a request, from its certificate; throws 401/403 for anything else. */
function requireDevice(req: FastifyRequest, identify: Identify): string {
  const cn = identify(req)
  if (cn === undefined) throw new OtaErrors.Unauthenticated()
  if (!isDeviceId(cn)) throw new OtaErrors.Forbidden(`certificate CN ${JSON.stringify(cn)} is not a device id`)
  return cn
}

/**
 * The OTA endpoints. Every route needs a client certificate whose CN is a device id (the TLS layer
 * has already checked it against the CA and CRL), except GET /ota/reports, which is for the gateway
 * (CN ferry-gateway or a replica's) or an operator holding FERRY_API_TOKEN (routes/access.ts). The
 * rollout routes (status, halt, resume, advance, forwarded reports, metrics) are in routes/rollouts.ts.
 */
export const otaRoutes: FastifyPluginAsync<OtaRoutesOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
  const keyByDevice = (req: FastifyRequest) => opts.identify(req) ?? `ip:${req.ip}`
  const limit = (max: number) => ({ rateLimit: { max, timeWindow: opts.rateLimit.windowMs, keyGenerator: keyByDevice } })
  let activeDownloads = 0
  const busy = (reply: FastifyReply) => {
    reply.header('retry-after', String(opts.retryAfterS))
    return new OtaErrors.Busy(String(activeDownloads))
  }

  app.get('/ota/latest', {
    config: limit(opts.rateLimit.max),
    schema: {
      querystring: Type.Object({
        hw: Type.String({ pattern: HW_PATTERN, description: 'Hardware id the device was built for.' }),
        version: Type.String({ pattern: SEMVER_PATTERN, maxLength: SEMVER_MAX_LENGTH, description: 'Running firmware version (semver).' }),
        secure_version: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffffff, description: 'The device\'s anti-rollback counter; lower releases are never offered.' })),
      }),
      // 200 is the envelope file's exact bytes (EnvelopeSchema), sent raw and so not declared here.
    },
  }, async (req, reply) => {
    const device = requireDevice(req, opts.identify)
    const q = req.query
    const now = opts.now()
    // The rollout decides only whether this device may have a release's signed envelope, never its bytes.
    const admit = opts.rollouts && ((r: Parameters<Rollouts['admits']>[0]) => opts.rollouts!.admits(r, device, now))
    const d = opts.releases.decide({ device, hw: q.hw, version: q.version, secureVersion: q.secure_version }, now, admit)
    reply.header('cache-control', 'no-store')
    if (d.kind === 'up-to-date') {
      req.log.debug({ device, hw: q.hw, version: q.version }, 'device is up to date')
      return reply.code(204).send()
    }
    // Offering an update we could not deliver would only make the device fail its download.
    if (activeDownloads >= opts.maxDownloads) throw busy(reply)
    req.log.info({ device, hw: q.hw, from: q.version, to: d.release.manifest.version, deployment: d.release.manifest.deployment }, 'offering an update')
    opts.rollouts?.offered(d.release, device, now)
    // The envelope file's exact bytes: the server never re-encodes what was signed.
    return reply.code(200).type('application/json').send(d.release.raw)
  })

  app.get('/ota/images/:name', {
    config: limit(opts.rateLimit.downloadMax),
    schema: {
      params: Type.Object({ name: Type.String({ pattern: '^[0-9a-f]{64}\\.bin$', description: '<sha256>.bin as in the manifest' }) }),
    },
  }, async (req, reply) => {
    requireDevice(req, opts.identify)
    const etag = `"${req.params.name.slice(0, 64)}"`
    if (activeDownloads >= opts.maxDownloads) throw busy(reply)
    let image
    try {
      image = await opts.images.open(req.params.name)
    } catch (err) {
      if (err instanceof ImageNotFoundError) throw new OtaErrors.NotFound('no such image; ask /ota/latest for the current one')
      if (err instanceof ImageCorruptError) {
        req.log.error({ err, image: req.params.name }, 'image does not match its sha256; not serving it')
        throw new OtaErrors.ImageCorrupt()
      }
      throw err
    }
    reply.header('etag', etag).header('accept-ranges', 'bytes')
      // Content-addressed, so a cached copy is never stale; private because access needs a certificate.
      .header('cache-control', 'private, max-age=31536000, immutable')
    if (noneMatch(req.headers['if-none-match'], etag)) {
      await image.close()
      return reply.code(304).send()
    }
    const range = ifRangeHolds(req.headers['if-range'] as string | undefined, etag)
      ? parseRange(req.headers.range, image.size)
      : { kind: 'full' as const }
    if (range.kind === 'unsatisfiable') {
      await image.close()
      reply.header('content-range', `bytes */${image.size}`)
      throw new OtaErrors.RangeNotSatisfiable(String(image.size))
    }
    activeDownloads++
    reply.raw.once('close', () => {
      activeDownloads--
      void image.close()
    })
    reply.type('application/octet-stream')
    // An image kept in memory goes out in slices (http/buffer-body.ts); a large one streams from its file.
    const send = (body: ReturnType<typeof image.body>) => reply.send(Buffer.isBuffer(body) ? bufferBody(body) : body)
    if (range.kind === 'partial') {
      reply.code(206)
        .header('content-range', `bytes ${range.start}-${range.end}/${image.size}`)
        .header('content-length', String(range.end - range.start + 1))
      return send(image.body(range))
    }
    reply.header('content-length', String(image.size))
    return send(image.body())
  })

  app.post('/ota/report', {
    config: limit(opts.rateLimit.max),
    bodyLimit: MAX_REPORT_BYTES,
    schema: { body: otaReportSchema },
  }, async (req, reply) => {
    const device = requireDevice(req, opts.identify)
    const b = req.body
    opts.reports.append({ ts: opts.now(), device, source: 'http', deployment: b.deployment, state: b.state, version: b.version, ...(b.reason !== undefined ? { reason: b.reason } : {}) })
    opts.metrics?.reports.inc({ state: b.state, source: 'http' })
    const level = b.state === 'failed' || b.state === 'rolled-back' ? 'warn' : 'info'
    req.log[level]({ device, deployment: b.deployment, state: b.state, version: b.version, reason: b.reason }, 'device reported OTA progress')
    return reply.code(204).send()
  })

  app.get('/ota/reports', {
    config: limit(opts.rateLimit.max),
    schema: {
      querystring: Type.Object({
        device: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' })),
        deployment: Type.Optional(otaReportSchema.properties.deployment),
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
      }),
      response: { 200: Type.Object({ reports: Type.Array(otaReportRecordSchema) }) },
    },
  }, async (req) => {
    requireReader(req, opts.identify, opts.apiToken, 'reports')
    return { reports: opts.reports.list(req.query) }
  })
}
