import { randomBytes } from 'node:crypto'
import type { MqttClient } from 'mqtt'
import { Counter, type Registry } from 'prom-client'
import type { Logger } from '../../../common/src/logger.js'
import { isDeviceId } from '../../../common/src/ids.js'
import { CommandStore, type CommandRecord, type CommandSource, type CommandState } from './store.js'

/**
 * Publishes a retained QoS 1 message; resolves on the broker's PUBACK, rejects if it refuses (an
 * error with the MQTT 5 reason code, 0x80 or more, as its numeric `code`) or cannot send it now
 * (e.g. MQTT.js's "client disconnecting" while the gateway stops).
 */
export interface LedPublisher {
  publish(topic: string, payload: string, opts: { expirySeconds?: number }): Promise<void>
}

/**
 * Publishes through the gateway's own MQTT session (certificate CN ferry-gateway, which the ACL lets
 * write `sensors/+/led/set`). While the session is down MQTT.js keeps QoS 1 publishes in its outgoing
 * store and sends them after reconnecting; the command's expiry bounds how stale that can get.
 */
export function mqttPublisher(client: MqttClient): LedPublisher {
  return {
    async publish(topic, payload, opts) {
      await client.publishAsync(topic, payload, {
        qos: 1,
        retain: true,
        // MQTT 5 message expiry: the broker itself drops the retained command when it expires, even
        // if this gateway is down at that moment (an MQTT 3.1.1 device still benefits: expiry is
        // enforced by the broker).
        ...(opts.expirySeconds ? { properties: { messageExpiryInterval: opts.expirySeconds } } : {}),
      })
    },
  }
}

/** An LED command to deliver. */
export interface LedRequest {
  device: string
  /** 0..100 */
  brightness: number
  /** ms since the epoch; the command is not delivered after this. */
  expiresAt: number
  source: CommandSource
  /** E.g. the TalkBack command id. */
  sourceRef?: string
  /** The command as received, for the audit trail. */
  raw?: string
}

export interface LedRelayOptions {
  store: CommandStore
  publisher: LedPublisher
  log: Logger
  /** Registers `ferry_led_commands_total` here when given. */
  registry?: Registry
  now?: () => number
}

/** The broker answered the publish with a failure reason code (MQTT 5 PUBACK, 0x80 and up): it will refuse it again. */
const refusedByBroker = (err: unknown): boolean => typeof (err as { code?: unknown }).code === 'number' && (err as { code: number }).code >= 0x80

/** The `led/set` topic of a device (README.md#topics-and-payloads). */
export const ledSetTopic = (device: string) => `sensors/${device}/led/set`

/** A command id: time-ordered, unique, short enough for the device's 64-character limit. */
export function newCommandId(now = Date.now()): string {
  return `c${now.toString(36)}${randomBytes(4).toString('hex')}`
}

/**
 * Turns LED commands into retained QoS 1 `sensors/<id>/led/set` messages
 * `{"cmd","brightness","expires"}` and follows each to its end (see `CommandState`).
 *
 * Guarantees:
 * - A command whose expiry has passed is never published; it is recorded as `expired`.
 * - A newer command replaces the older retained one (same topic); the older one, if unconfirmed,
 *   becomes `superseded`.
 * - When the device's current retained command expires, the gateway publishes an empty retained
 *   payload, which removes it from the broker, so a device that reconnects later never receives a
 *   stale command. (The broker also drops it by MQTT 5 message expiry.) Timers are rebuilt from the
 *   commands table at `start()`, so this holds across gateway restarts.
 * - `observeLedState` marks a command `confirmed` when the device echoes its id.
 */
export class LedRelay {
  readonly store: CommandStore
  private readonly publisher: LedPublisher
  private readonly log: Logger
  private readonly now: () => number
  private readonly timers = new Map<string, { cmd: string; timer: NodeJS.Timeout }>()
  private readonly inflight = new Set<Promise<unknown>>()
  private readonly counter: Counter<'source' | 'state'> | undefined
  private stopped = false

  constructor(opts: LedRelayOptions) {
    this.store = opts.store
    this.publisher = opts.publisher
    this.log = opts.log
    this.now = opts.now ?? Date.now
    this.counter = opts.registry
      ? new Counter({ name: 'ferry_led_commands_total', help: 'LED commands by source and outcome (published, confirmed, expired, rejected, failed).', labelNames: ['source', 'state'] as const, registers: [opts.registry] })
      : undefined
  }

  /**
   * Rebuilds expiry timers for the commands the broker still retains, clears those that expired
   * while the gateway was down, and republishes commands that never reached the broker.
   */
  start(): void {
    const now = this.now()
    for (const c of this.store.retained()) {
      if (!c.device) continue
      if (c.expiresAt === null || c.expiresAt <= now) {
        this.track(this.expire(c.device, c.cmd))
        continue
      }
      this.schedule(c.device, c.cmd, c.expiresAt)
      if (c.state === 'pending') this.track(this.publish(c))
    }
  }

  /**
   * Records and publishes a command. The record is committed before `send` first awaits anything, so
   * a command is in the commands table before anything else happens to it (a TalkBack command has
   * just left the cloud queue). Resolves with its record once the broker has acknowledged it, or
   * after `waitMs` (then still `pending`; MQTT.js delivers it when the session is back, and `start`
   * publishes it again after a restart).
   */
  async send(req: LedRequest, opts: { waitMs?: number } = {}): Promise<CommandRecord> {
    // Invariants (a programming bug if broken): the API and TalkBack are stopped before the relay, and
    // both validate the device id and the brightness (schema, parseLedCommand) before they call send.
    if (!isDeviceId(req.device)) throw new Error(`invalid device id ${JSON.stringify(req.device)}`)
    if (!Number.isInteger(req.brightness) || req.brightness < 0 || req.brightness > 100) throw new Error(`brightness ${req.brightness} is outside 0..100`)
    const now = this.now()
    const base = { cmd: newCommandId(now), source: req.source, sourceRef: req.sourceRef ?? null, raw: req.raw ?? null, device: req.device, brightness: req.brightness, createdAt: now, expiresAt: req.expiresAt }
    if (req.expiresAt <= now) {
      const rec = this.store.insert({ ...base, state: 'expired', reason: `expired before delivery (at ${new Date(req.expiresAt).toISOString()})` })
      this.count(rec.source, 'expired')
      this.log.info({ cmd: rec.cmd, device: rec.device, source: rec.source, expiredMsAgo: now - req.expiresAt }, 'LED command expired before delivery; not published')
      return rec
    }
    const rec = this.store.insert({ ...base, state: 'pending' })
    if (this.stopped) {
      // Should not happen (see above), but a command taken off the TalkBack queue must not be lost.
      this.log.warn({ cmd: rec.cmd, device: rec.device, source: rec.source }, 'LED command arrived while the relay was stopping; recorded as pending, published when the gateway starts again')
      return rec
    }
    // From now on this command is the device's retained one: its expiry decides when to clear it.
    this.schedule(req.device, rec.cmd, req.expiresAt)
    const done = this.track(this.publish(rec))
    const waitMs = opts.waitMs ?? 5000
    let timer: NodeJS.Timeout | undefined
    await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))])
    clearTimeout(timer)
    return this.store.get(rec.cmd) ?? rec
  }

  /** Records a command that could not be read (never published). */
  reject(source: CommandSource, raw: string, reason: string, sourceRef?: string): CommandRecord {
    const now = this.now()
    const rec = this.store.insert({ cmd: newCommandId(now), source, sourceRef: sourceRef ?? null, raw, device: null, brightness: null, createdAt: now, expiresAt: null, state: 'rejected', reason })
    this.count(source, 'rejected')
    return rec
  }

  /**
   * A committed `sensors/<device>/led/state` message (already validated by ingest). An echo with the
   * id of one of our commands confirms it; an echo without an id (a local change on the device) is
   * only stored as the device's LED state by ingest.
   */
  observeLedState(device: string, payload: Buffer | string): void {
    // Called from the ingest acknowledgement path: it must never throw.
    try {
      this.confirmFrom(device, payload)
    } catch (err) {
      this.log.error({ err, device }, 'could not record the LED confirmation')
    }
  }

  private confirmFrom(device: string, payload: Buffer | string): void {
    let o: { cmd?: unknown; brightness?: unknown }
    try {
      o = JSON.parse(payload.toString()) as typeof o
    } catch {
      return
    }
    if (typeof o.cmd !== 'string' || typeof o.brightness !== 'number') return
    const before = this.store.get(o.cmd)
    if (!before || before.device !== device) return
    if (!this.store.confirm(device, o.cmd, o.brightness, this.now())) return
    if (before.confirmedAt === null) {
      this.count(before.source, 'confirmed')
      const mismatch = before.brightness !== o.brightness
      this.log[mismatch ? 'warn' : 'info'](
        { cmd: o.cmd, device, brightness: o.brightness, commanded: before.brightness, latencyMs: this.now() - before.createdAt },
        mismatch ? 'device confirmed the LED command with a different brightness' : 'device confirmed the LED command',
      )
    }
  }

  /** The last commands, newest first. */
  list(opts: { device?: string; limit?: number } = {}): CommandRecord[] {
    return this.store.list(opts)
  }

  /** Counts by state, for /api/status. */
  counts(): Record<CommandState, number> {
    return this.store.counts()
  }

  /** Cancels timers and waits (briefly) for publishes in flight. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true
    for (const t of this.timers.values()) clearTimeout(t.timer)
    this.timers.clear()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.allSettled([...this.inflight]), new Promise<void>((r) => (timer = setTimeout(r, 1000)))])
    clearTimeout(timer)
  }

  private async publish(rec: CommandRecord): Promise<void> {
    const device = rec.device!
    const payload = JSON.stringify({ cmd: rec.cmd, brightness: rec.brightness, expires: rec.expiresAt })
    const expirySeconds = rec.expiresAt === null ? undefined : Math.max(1, Math.ceil((rec.expiresAt - this.now()) / 1000))
    try {
      await this.publisher.publish(ledSetTopic(device), payload, { expirySeconds })
    } catch (err) {
      if (!refusedByBroker(err)) {
        // Not an answer from the broker (the session is closing): the command stays pending, and
        // `start` publishes it at the next start if it has not expired by then.
        this.log.warn({ err, cmd: rec.cmd, device }, 'LED command not published yet; it stays pending and is published again when the gateway restarts')
        return
      }
      this.store.markFailed(rec.cmd, `the broker refused the publish: ${(err as Error).message}`)
      this.count(rec.source, 'failed')
      this.log.error({ err, cmd: rec.cmd, device }, 'LED command could not be published; check the broker ACL for the gateway (write sensors/+/led/set)')
      return
    }
    this.store.markPublished(rec.cmd, device, this.now())
    this.count(rec.source, 'published')
    this.log.info({ cmd: rec.cmd, device, brightness: rec.brightness, source: rec.source, expires: rec.expiresAt }, 'LED command published')
  }

  private schedule(device: string, cmd: string, expiresAt: number): void {
    const prev = this.timers.get(device)
    if (prev) clearTimeout(prev.timer)
    // Node timers hold at most 2^31-1 ms; the TTL maximum (7 days) stays below that.
    const timer = setTimeout(() => this.track(this.expire(device, cmd)), Math.max(0, expiresAt - this.now()))
    timer.unref()
    this.timers.set(device, { cmd, timer })
  }

  /** The device's retained command expired: mark it if unconfirmed and remove it from the broker. */
  private async expire(device: string, cmd: string): Promise<void> {
    const current = this.timers.get(device)
    if (current && current.cmd !== cmd) return // a newer command took its place
    this.timers.delete(device)
    if (this.store.expireUnconfirmed(cmd, 'not confirmed by the device before it expired')) {
      const rec = this.store.get(cmd)
      if (rec) this.count(rec.source, 'expired')
    }
    try {
      // An empty retained payload deletes the retained message (MQTT 3.1.1 §3.3.1.3, MQTT 5 §3.3.1.3).
      await this.publisher.publish(ledSetTopic(device), '', {})
      this.store.markCleared(cmd, this.now())
      this.log.debug({ cmd, device }, 'expired LED command removed from the broker')
    } catch (err) {
      this.log.warn({ err, cmd, device }, 'could not remove the expired retained LED command; the broker drops it by message expiry')
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p)
    p.finally(() => this.inflight.delete(p)).catch(() => {})
    return p
  }

  private count(source: CommandSource, state: CommandState): void {
    this.counter?.inc({ source, state })
  }
}
