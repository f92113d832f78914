import fp from 'fastify-plugin'
import { OtaErrors } from './errors.js'
import type { Identify } from './identity.js'

/**
 * Counts the slots each key holds, up to `max` per key. Pure bookkeeping, no HTTP: the plugin below
 * decides what a slot is (one image response in flight) and when it ends.
 */
export class SlotCounter {
  private readonly held = new Map<string, number>()

  constructor(readonly max: number) {}

  /**
   * Takes a slot for `key`. Returns its release, which may be called any number of times (only the
   * first counts), or undefined when `key` already holds `max`.
   */
  take(key: string): (() => void) | undefined {
    const n = this.held.get(key) ?? 0
    if (n >= this.max) return undefined
    this.held.set(key, n + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.held.get(key) ?? 1) - 1
      // Drop the entry at zero so the map holds only devices downloading now, not every device ever seen.
      if (left > 0) this.held.set(key, left)
      else this.held.delete(key)
    }
  }

  /** Slots `key` holds now. */
  holding(key: string): number {
    return this.held.get(key) ?? 0
  }
}

export interface PerDeviceDownloadsOptions {
  /** Who is asking (the certificate CN); a request without an identity is left to the route, which refuses it. */
  identify: Identify
  /** Concurrent responses one identity may have in flight on the limited routes. */
  max: number
  /** Retry-After seconds on a refusal. */
  retryAfterS: number
  /** Route URLs as declared (e.g. `/ota/images/:name`) whose responses take a slot. */
  routes: readonly string[]
}

/**
 * Limits concurrent image downloads per device identity, beside the server-wide
 * FERRY_OTA_MAX_DOWNLOADS the route enforces. Without it one device (a buggy retry loop, or a
 * hostile one) holding slow downloads takes every server-wide slot and every other device gets 503
 * (issue 19). Over its share a device gets 429 with Retry-After: 429 because the limit is the
 * client's own (RFC 6585 §4), where 503 says the whole server is busy.
 *
 * A slot is held from the preHandler until the response closes (finished, or the connection ended),
 * so a download cut by the network frees its slot once the server notices the socket is gone.
 * Wrapped in fastify-plugin so the hook reaches the routes registered beside it.
 */
export const perDeviceDownloads = fp<PerDeviceDownloadsOptions>(async (app, opts) => {
  const slots = new SlotCounter(opts.max)
  const limited = new Set(opts.routes)
  app.addHook('preHandler', async (req, reply) => {
    if (!limited.has(req.routeOptions.url ?? '')) return
    const device = opts.identify(req)
    if (device === undefined) return
    const release = slots.take(device)
    if (!release) {
      req.log.debug({ device, held: slots.holding(device) }, 'device holds its share of downloads; answering 429')
      reply.header('retry-after', String(opts.retryAfterS))
      throw new OtaErrors.TooManyDownloads(String(slots.holding(device)))
    }
    reply.raw.once('close', release)
    // The client may have gone while the request was queued: then 'close' has already fired.
    if (reply.raw.closed || reply.raw.destroyed) release()
  })
}, { name: 'ferry-per-device-downloads' })
