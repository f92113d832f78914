import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient, type Packet } from 'mqtt'
import type { Logger } from '../../../common/src/logger.js'
import { SUBSCRIPTIONS, SYS_DROPPED } from './topics.js'

export interface SubscriberOptions {
  url: string
  tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized: boolean }
  clientId: string
  keepaliveS: number
  sessionExpiryS: number
  /** MQTT 5 Receive Maximum: how many unacknowledged messages the broker may send us (the most one commit can group). */
  receiveMaximum: number
  log: Logger
  /** Every device message; `release()` sends its PUBACK and must be called only after the message is committed. */
  onMessage(topic: string, payload: Buffer, release: () => void): void
  /** The broker's `$SYS/broker/publish/messages/dropped` counter. */
  onBrokerDropped?(count: number): void
  onConnectionChange?(connected: boolean): void
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
const BACKOFF_MAX_MS = 30_000

/**
 * The gateway's MQTT session: MQTT 5, persistent (`clean: false` plus a session expiry, without which
 * Mosquitto forgets the session at disconnect), fixed client id, QoS 1 subscriptions, mutual TLS.
 *
 * Acknowledgement after commit. MQTT.js sends a PUBACK when `handleMessage` calls back, and hands over
 * the next message only after that, so acking after each commit would mean one commit (one fsync with
 * synchronous=FULL) per message. Instead `handleMessage` calls back at once and the PUBACK MQTT.js
 * then tries to send is swallowed here; the real PUBACK is sent by `release()`, which the batcher calls
 * after the transaction holding the message has committed. Acks released after the connection they
 * belong to has closed are dropped: the broker redelivers those messages on the new connection and the
 * buffer stores them once (dedupe on device, boot, seq). The broker never has more than
 * `receiveMaximum` messages outstanding, which bounds what waits in memory.
 * This relies on MQTT.js's `_sendPacket` (mqtt 5.x, handlers/publish.ts); test/e2e/ingest-ack.test.ts
 * fails if a PUBACK ever leaves before its row is committed.
 */
export function createSubscriber(o: SubscriberOptions): Subscriber {
  const opts: IClientOptions = {
    manualConnect: true,
    clientId: o.clientId,
    clean: false,
    protocolVersion: 5,
    keepalive: o.keepaliveS,
    reconnectPeriod: BACKOFF_MIN_MS,
    connectTimeout: 15_000,
    properties: { sessionExpiryInterval: o.sessionExpiryS, receiveMaximum: o.receiveMaximum },
    ca: o.tls.ca,
    cert: o.tls.cert,
    key: o.tls.key,
    rejectUnauthorized: o.tls.rejectUnauthorized,
    minVersion: 'TLSv1.2',
    // A refused CONNACK (e.g. not authorised) is retried with backoff instead of stopping for good.
    reconnectOnConnackError: true,
    // MQTT.js traces every packet through `debug`; even disabled, those calls cost ~4% of ingest CPU
    // (bench/README.md). DEBUG=mqttjs* still turns them on.
    ...(process.env.DEBUG?.includes('mqttjs') ? {} : { log: () => {} }),
  } as IClientOptions
  const client = mqtt.connect(o.url, opts)
  const log = o.log
  let generation = 0
  let failures = 0
  let stopping = false

  type SendPacket = (packet: Packet, cb?: (err?: Error) => void, ...rest: unknown[]) => void
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
      const n = Number(payload.toString())
      if (Number.isFinite(n)) o.onBrokerDropped?.(n)
      cb()
      return
    }
    const gen = generation
    const { messageId, qos } = packet
    o.onMessage(packet.topic, payload, () => {
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
      o.onConnectionChange?.(true)
    }
    if (ack.sessionPresent) return ready()
    client.subscribe([...SUBSCRIPTIONS], { qos: 1 }, (err) => {
      if (!err) return ready()
      log.error({ err }, 'subscribing failed; reconnecting')
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
    o.onConnectionChange?.(false)
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
