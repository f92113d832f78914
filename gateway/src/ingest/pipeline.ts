import type { Logger } from '../../../common/src/logger.js'
import type { BufferConfig } from '../buffer/config.js'
import { META_INGEST_PAUSED, type RingBuffer } from '../buffer/index.js'
import { recordCommit, recordPause, type Metrics } from '../metrics.js'
import type { GatewayState } from '../state.js'
import { Batcher } from './batcher.js'
import type { IngestConfig, MqttConfig } from './config.js'
import { ackTopic, encodeConfirmation } from './confirmations.js'
import { confirmMode, createConfirmer } from './confirmer.js'
import { PauseGuard, isDiskFull, type IngestPause } from './pause.js'
import { toIngestItem } from './handlers/index.js'
import { createSubscriber, type Subscriber, type SubscriberOptions } from './subscriber.js'

export interface IngestOptions {
  config: IngestConfig & MqttConfig & Pick<BufferConfig, 'FERRY_DB'>
  tls: SubscriberOptions['tls']
  buffer: RingBuffer
  metrics: Metrics
  state: GatewayState
  log: Logger
  /** After a commit that stored readings: wake the drainers. */
  onStored: () => void
  /** An LED echo from a device, called once the echo is committed (so a confirmation is never ahead of the buffer). */
  onLedState: (device: string, payload: Buffer) => void
}

export interface Ingest {
  subscriber: Subscriber
  /** A sink settled a batch: with confirmations after delivery, tell devices what is now delivered. */
  settled(): void
  start(): void
  /** Stops taking messages, commits and acknowledges what is pending, disconnects. */
  stop(): Promise<void>
}

/**
 * The path of every device message: MQTT subscriber → parse (handlers/) → group commit (batcher.ts)
 * into the buffer → PUBACK. Commit failures are handled here: a full disk stops acknowledging until
 * there is space again, and a buffer full of undelivered readings (FERRY_BUFFER_ON_FULL=backpressure)
 * until the drainers have freed room (pause.ts); any other failure acknowledges nothing and
 * reconnects, so the broker redelivers.
 */
export function createIngest(opts: IngestOptions): Ingest {
  const { config, buffer, metrics, state, log } = opts
  // Counted per message in a plain Map, handed to prom-client once per commit (a labelled inc() per
  // message is measurable at tens of thousands of messages a second).
  const receivedByKind = new Map<string, number>()

  const batcher = new Batcher({
    buffer,
    maxItems: config.FERRY_INGEST_BATCH_MAX,
    maxDelayMs: config.FERRY_INGEST_BATCH_DELAY_MS,
    onCommit: ({ items, outcome, ms, committed }) => {
      recordCommit(metrics, receivedByKind, outcome, items, ms)
      receivedByKind.clear()
      confirmer?.committed(committed, outcome)
      if (outcome.dropped) log.warn({ dropped: outcome.dropped }, 'buffer full: dropped the oldest undelivered readings')
      log.debug({ items, ...outcome, ms }, 'committed')
      if (outcome.stored) opts.onStored()
    },
    onError: (err, items) => {
      const code = (err as { code?: string }).code ?? 'UNKNOWN'
      if (code === 'FERRY_ERR_BUFFER_BACKPRESSURE') {
        // Not a failure: the buffer kept every undelivered reading by refusing the group.
        paused.enter('backpressure', err.message, () => buffer.hasRoomFor(config.FERRY_INGEST_BATCH_MAX), { items })
        return
      }
      metrics.commitFailures.inc()
      if (isDiskFull(code)) {
        paused.enter('disk-full', `${code}: ${err.message}`, diskHasSpace, { err, items, db: config.FERRY_DB })
        return
      }
      state.lastError = { code, message: err.message, at: Date.now() }
      log.error({ err, items }, 'commit failed; nothing acknowledged, reconnecting so the broker redelivers')
      subscriber.pause()
      subscriber.resume()
    },
  })

  // Ingest paused until the disk has space, or the buffer has room (pause.ts).
  const paused = new PauseGuard({
    pause: (p) => {
      batcher.discard()
      subscriber.pause()
      showPause(p)
    },
    resume: () => {
      showPause(null)
      subscriber.resume()
    },
    log,
  })
  const diskHasSpace = () => {
    buffer.probeWrite(64 * 1024) // throws while the disk is still full
    return true
  }
  /** Status, metric, and `meta` for `ferry status` (best effort: on a full disk that write fails too). */
  function showPause(p: IngestPause | null) {
    state.ingestPaused = p
    if (p) state.lastError = { code: p.code, message: `${p.reason}: ${p.error}; ingest paused, nothing acknowledged (the broker keeps the messages)`, at: p.since }
    recordPause(metrics, p?.reason ?? null)
    try {
      buffer.setMeta(META_INGEST_PAUSED, p)
    } catch {
      // the disk is full; the live status still says so
    }
  }
  showPause(null) // a pause recorded by a gateway that was killed is over

  const subscriber = createSubscriber({
    url: config.FERRY_MQTT_URL,
    tls: opts.tls,
    clientId: config.FERRY_MQTT_CLIENT_ID,
    keepaliveS: config.FERRY_MQTT_KEEPALIVE_S,
    sessionExpiryS: config.FERRY_MQTT_SESSION_EXPIRY_S,
    shareGroup: config.FERRY_MQTT_SHARE_GROUP,
    onRefused: (err) => {
      state.lastError = { code: err.code, message: err.message, at: Date.now() }
    },
    receiveMaximum: config.FERRY_INGEST_BATCH_MAX,
    log: log.child({ component: 'mqtt' }),
    onMessage: (topic, payload, release) => {
      const item = toIngestItem(topic, payload, Date.now(), config.FERRY_INGEST_MAX_PAYLOAD_BYTES)
      const kind = item.type === 'event' ? item.kind : item.type === 'reading' ? 'telemetry' : 'invalid'
      receivedByKind.set(kind, (receivedByKind.get(kind) ?? 0) + 1)
      const ledEcho = item.type === 'event' && item.kind === 'led_state' ? item : undefined
      batcher.add(item, ledEcho ? () => (release(), opts.onLedState(ledEcho.device, ledEcho.payload)) : release)
    },
    onBrokerDropped: (count) => {
      if (state.brokerDropped !== null && count > state.brokerDropped) {
        log.warn({ droppedByBroker: count }, 'the broker dropped messages (its queue for a client was full); raise max_queued_messages or fix the slow client')
      }
      state.brokerDropped = count
      metrics.brokerDropped.set(count)
    },
    onConnectionChange: (up) => {
      state.brokerConnected = up
      metrics.brokerConnected.set(up ? 1 : 0)
    },
  })

  /** Confirmations (docs/delivery.md): QoS 0, retained; a lost one costs the device a resend. */
  const mode = confirmMode(config)
  const confirmer =
    mode &&
    createConfirmer(mode, buffer, (c) => {
      subscriber.client.publish(ackTopic(c.device), encodeConfirmation(c), { qos: 0, retain: true })
      metrics.confirmations.inc()
    })

  return {
    subscriber,
    settled: () => confirmer?.settled(),
    start: () => subscriber.start(),
    async stop() {
      paused.stop()
      showPause(null) // a stopped gateway is not paused: `ferry status` should not say so
      await subscriber.stop(() => batcher.flush())
    },
  }
}
