import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient, type Packet } from 'mqtt'
import { FerryError } from '../../../common/src/errors.js'
import type { Logger } from '../../../common/src/logger.js'
import { SUBSCRIPTIONS, SYS_DROPPED } from './topics.js'

export interface SubscriberOptions {
  url: string
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean }
  clientId: string
  keepaliveS: number
  sessionExpiryS: number
  /**
   * FERRY_MQTT_SHARE_GROUP: subscribe through `$share/<group>/…` with a session that ends at
   * disconnect (docs/scale-out.md#sessions); unset, a persistent session of its own.
   */
  shareGroup?: string | undefined
  /** MQTT 5 Receive Maximum: how many unacknowledged messages the broker may send us (the most one commit can group). */
  receiveMaximum: number
  log: Logger
  /** Every device message; `release()` sends its PUBACK and must be called only after the message is committed. */
  onMessage(topic: string, payload: Buffer, release: () => void): void
  /** The broker's `$SYS/broker/publish/messages/dropped` counter. */
  onBrokerDropped?(count: number): void
  onConnectionChange?(connected: boolean): void
  /** The broker refused the subscriptions for a reason retrying will not fix (e.g. no shared subscriptions). */
  onRefused?(err: FerryError): void
}

export interface Subscriber {
  client: MqttClient
  readonly connected: boolean
  start(): void
  /** Disconnects now, without a DISCONNECT packet; pending acks are dropped (used when the disk is full). */
  pause(): void
  resume(): void
  /** Stops taking messages, runs `flush` (commit + release acks), then disconnects cleanly. */
  stop(flush: () => void): Promise<void>
}

const BACKOFF_MIN_MS = 1000

/** MQTT 5 SUBACK reason codes that name a configuration problem rather than a passing one. */
const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9e
const NOT_AUTHORIZED = 0x87

/** The device topic filters, through the shared subscription when the gateway is one of a group. */
export function subscriptionFilters(shareGroup: string | undefined): string[] {
  return SUBSCRIPTIONS.map((f) => (shareGroup ? `$share/${shareGroup}/${f}` : f))
}

/** Says what to change when the broker refuses the subscriptions. */
export function refusalError(code: number | undefined, shareGroup: string | undefined, message: string): FerryError | undefined {
  if (shareGroup && code === SHARED_SUBSCRIPTIONS_NOT_SUPPORTED) {
    return new FerryError(
      'FERRY_ERR_MQTT_SHARE_REFUSED',
      `the broker does not support shared subscriptions (SUBACK 0x9e), which FERRY_MQTT_SHARE_GROUP=${shareGroup} needs: use an MQTT 5 broker with shared subscriptions (Mosquitto >= 2.0, EMQX) or unset FERRY_MQTT_SHARE_GROUP to run a single gateway (docs/scale-out.md).`,
    )
  }
  if (code === NOT_AUTHORIZED) {
    return new FerryError(
      'FERRY_ERR_MQTT_SUBSCRIBE_DENIED',
      `the broker refused the gateway's subscriptions (not authorised: ${message}): its ACL must give this certificate's CN the gateway's rights (mosquitto/acl: user ferry-gateway and ferry-gateway-1 ... 9)${shareGroup ? `, for the shared subscriptions $share/${shareGroup}/... too` : ''}.`,
    )
  }
  return undefined
}
const BACKOFF_MAX_MS = 30_000

type SendPacket = (packet: Packet, cb?: (err?: Error) => void, ...rest: unknown[]) => void

/**
 * The start-up check of the ack hook. MQTT.js 5.x (handlers/publish.ts) calls
 * `handleMessage(packet, cb)` for each QoS 1 message and, from `cb`, sends the PUBACK through the
 * private `_sendPacket(packet, cb, cbStorePut, noStore)`. The subscriber below replaces both. If
 * either is missing or has another shape, MQTT.js changed underneath us and a PUBACK could leave
 * before its reading is committed: refuse to start rather than risk that. `mqtt` is pinned to an
 * exact version in package.json for this reason.
 */
export function assertAckHook(client: unknown): void {
  const c = client as { _sendPacket?: unknown; handleMessage?: unknown } | null
  const problem =
    typeof c?._sendPacket !== 'function'
      ? 'has no _sendPacket method'
      : c._sendPacket.length !== 4
        ? `has _sendPacket with ${c._sendPacket.length} parameters, not (packet, cb, cbStorePut, noStore)`
        : typeof c.handleMessage !== 'function'
          ? 'has no handleMessage method'
          : c.handleMessage.length !== 2
            ? `has handleMessage with ${c.handleMessage.length} parameters, not (packet, callback)`
            : undefined
  if (problem === undefined) return
  throw new FerryError(
    'FERRY_ERR_MQTT_INCOMPATIBLE',
    `MQTT.js changed: its client ${problem}. The gateway holds each PUBACK until the reading is committed through that hook; without it acknowledgements could be sent before commit, so the gateway does not start. Install the mqtt version pinned in package.json (npm ci); to upgrade MQTT.js, adapt gateway/src/ingest/subscriber.ts and run test/e2e/ingest-ack.test.ts.`,
  )
}

/**
 * The gateway's MQTT session: MQTT 5, persistent (`clean: false` plus a session expiry, without which
 * Mosquitto forgets the session at disconnect: docs/mqtt.md#durable-sessions-and-queues), fixed
 * client id, QoS 1 subscriptions, mutual TLS.
 *
 * One of a share group (FERRY_MQTT_SHARE_GROUP) instead: clean start and session expiry 0, so the
 * session, and with it the replica's share of the messages, ends when the connection does. A
 * persistent member would keep being assigned shares while it is dead (Mosquitto), or hold them until
 * its session expires (EMQX); devices resend whatever no replica confirmed, so nothing depends on the
 * broker's queue (docs/scale-out.md#sessions).
 *
 * Acknowledgement after commit. MQTT.js sends a PUBACK when `handleMessage` calls back, and hands over
 * the next message only after that, so acking after each commit would mean one commit (one fsync with
 * synchronous=FULL) per message. Instead `handleMessage` calls back at once and the PUBACK MQTT.js
 * then tries to send is swallowed here; the real PUBACK is sent by `release()`, which the batcher calls
 * after the transaction holding the message has committed. Acks released after the connection they
 * belong to has closed are dropped: the broker redelivers those messages on the new connection and the
 * buffer stores them once (dedupe on device, boot, seq). The broker never has more than
 * `receiveMaximum` messages outstanding, which bounds what waits in memory.
 * This relies on MQTT.js's `_sendPacket` (mqtt 5.x, handlers/publish.ts;
 * docs/mqtt.md#when-mqttjs-sends-the-puback): `assertAckHook` refuses to start when its shape
 * changed, and test/e2e/ingest-ack.test.ts fails if a PUBACK ever leaves before its row is committed.
 *
 * `connect` makes the client (MQTT.js's `connect` unless a test passes a fake); nothing is sent
 * before `start()`.
 */
export function createSubscriber(options: SubscriberOptions, connect: (url: string, opts: IClientOptions) => MqttClient = mqtt.connect): Subscriber {
  const clientOpts: IClientOptions = {
    manualConnect: true,
    clientId: options.clientId,
    clean: !!options.shareGroup,
    protocolVersion: 5,
    keepalive: options.keepaliveS,
    reconnectPeriod: BACKOFF_MIN_MS,
    connectTimeout: 15_000,
    properties: { sessionExpiryInterval: options.shareGroup ? 0 : options.sessionExpiryS, receiveMaximum: options.receiveMaximum },
    ca: options.tls.ca,
    cert: options.tls.cert,
    key: options.tls.key,
    rejectUnauthorized: options.tls.rejectUnauthorized,
    minVersion: 'TLSv1.2',
    // A refused CONNACK (e.g. not authorised) is retried with backoff instead of stopping for good.
    reconnectOnConnackError: true,
    // MQTT.js traces every packet through `debug`; even disabled, those calls cost ~4% of ingest CPU
    // (bench/README.md). DEBUG=mqttjs* still turns them on.
    ...(process.env.DEBUG?.includes('mqttjs') ? {} : { log: () => {} }),
  } as IClientOptions
  const client = connect(options.url, clientOpts)
  // Nothing to close on refusal: with manualConnect the client has opened nothing yet.
  assertAckHook(client)
  const log = options.log
  let generation = 0
  let failures = 0
  let stopping = false

  const internal = client as unknown as { _sendPacket: SendPacket }
  const send = internal._sendPacket.bind(client)
  internal._sendPacket = (packet, cb, ...rest) => {
    if (packet.cmd === 'puback') {
      // Swallowed: the real PUBACK comes from release() after the commit (see above).
      cb?.()
      return
    }
    send(packet, cb, ...rest)
  }

  client.handleMessage = (packet: IPublishPacket, cb: (err?: Error) => void) => {
    if (stopping) return // no callback: nothing more is taken; unacked messages stay with the broker
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    if (packet.topic === SYS_DROPPED) {
      const dropped = Number(payload.toString())
      if (Number.isFinite(dropped)) options.onBrokerDropped?.(dropped)
      cb()
      return
    }
    const gen = generation
    const { messageId, qos } = packet
    options.onMessage(packet.topic, payload, () => {
      if (qos === 0 || messageId === undefined) return
      if (gen !== generation || !client.connected) return
      send({ cmd: 'puback', messageId, reasonCode: 0 } as Packet)
    })
    cb()
  }

  client.on('connect', (ack) => {
    failures = 0
    client.options.reconnectPeriod = BACKOFF_MIN_MS
    client.subscribe(SYS_DROPPED, { qos: 0 })
    // "Connected" means ready to receive: with a session the broker kept, the subscriptions exist
    // already; with a new session (first start, or the broker lost it) only after the SUBACK. Until
    // then a device's message has no subscriber and the broker discards it, so readiness waits.
    const ready = () => {
      log.info({ sessionPresent: ack.sessionPresent }, 'connected to the broker')
      options.onConnectionChange?.(true)
    }
    if (ack.sessionPresent) return ready()
    client.subscribe(subscriptionFilters(options.shareGroup), { qos: 1 }, (err) => {
      if (!err) return ready()
      const refused = refusalError((err as { code?: number }).code, options.shareGroup, err.message)
      if (refused) options.onRefused?.(refused)
      log.error({ err: refused ?? err }, 'subscribing failed; reconnecting')
      client.end(true, () => client.reconnect())
    })
  })
  client.on('close', () => {
    generation++
    if (stopping) return
    // MQTT.js retries at a fixed period; widen it with full jitter so a fleet of gateways (or one
    // after a broker restart) does not hammer the broker in lockstep.
    failures++
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(failures, 10))
    client.options.reconnectPeriod = Math.round(BACKOFF_MIN_MS / 2 + Math.random() * ceiling)
    options.onConnectionChange?.(false)
  })
  client.on('offline', () => log.warn({ retryInMs: client.options.reconnectPeriod }, 'broker connection lost; reconnecting'))
  client.on('error', (err) => log.warn({ err: { message: err.message, code: (err as { code?: unknown }).code } }, 'broker connection error'))

  return {
    client,
    get connected() {
      return client.connected
    },
    start() {
      client.connect()
    },
    pause() {
      generation++
      client.options.reconnectPeriod = 0
      client.end(true)
    },
    resume() {
      client.options.reconnectPeriod = BACKOFF_MIN_MS
      client.reconnect()
    },
    async stop(flush: () => void) {
      stopping = true
      flush()
      await client.endAsync(false)
    },
  }
}
