import type { Logger } from '../../../common/src/logger.js'
import type { BufferConfig } from '../buffer/config.js'
import type { IngestItem, RingBuffer } from '../buffer/index.js'
import { recordCommit, type Metrics } from '../metrics.js'
import type { GatewayState } from '../state.js'
import { Batcher } from './batcher.js'
import type { IngestConfig, MqttConfig } from './config.js'
import { ackTopic, confirmationsFor, encodeConfirmation } from './confirmations.js'
import { DiskFullGuard, isDiskFull } from './disk-full.js'
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
  start(): void
  /** Stops taking messages, commits and acknowledges what is pending, disconnects. */
  stop(): Promise<void>
}

/**
 * The path of every device message: MQTT subscriber → parse (handlers/) → group commit (batcher.ts)
 * into the buffer → PUBACK. Commit failures are handled here: a full disk stops acknowledging until
 * there is space again (disk-full.ts); any other failure acknowledges nothing and reconnects, so the
 * broker redelivers.
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
      if (config.FERRY_INGEST_CONFIRM) confirm(committed)
      if (outcome.dropped) log.warn({ dropped: outcome.dropped }, 'buffer full: dropped the oldest undelivered readings')
      log.debug({ items, ...outcome, ms }, 'committed')
      if (outcome.stored) opts.onStored()
    },
    onError: (err, items) => {
      metrics.commitFailures.inc()
      const code = (err as { code?: string }).code ?? 'UNKNOWN'
      if (isDiskFull(code)) {
        if (!diskFull.enter()) return
        state.diskFull = { since: Date.now(), error: `${code}: ${err.message}` }
        state.lastError = { code: 'FERRY_ERR_BUFFER_FULL_DISK', message: `disk full (${code}); acknowledgements stopped, the broker keeps the messages`, at: Date.now() }
        log.error({ err, items, db: config.FERRY_DB }, 'disk full: stopped acknowledging; the broker keeps the messages. Free space on the buffer volume; ingest resumes by itself')
        return
      }
      state.lastError = { code, message: err.message, at: Date.now() }
      log.error({ err, items }, 'commit failed; nothing acknowledged, reconnecting so the broker redelivers')
      subscriber.pause()
      subscriber.resume()
    },
  })

  const diskFull = new DiskFullGuard({
    probeWrite: () => buffer.probeWrite(64 * 1024),
    pause: () => {
      batcher.discard()
      subscriber.pause()
    },
    resume: () => {
      state.diskFull = null
      subscriber.resume()
    },
    log,
  })

  const subscriber = createSubscriber({
    url: config.FERRY_MQTT_URL,
    tls: opts.tls,
    clientId: config.FERRY_MQTT_CLIENT_ID,
    keepaliveS: config.FERRY_MQTT_KEEPALIVE_S,
    sessionExpiryS: config.FERRY_MQTT_SESSION_EXPIRY_S,
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

  /** Commit confirmations (docs/delivery.md): QoS 0, retained; a lost one costs the device a resend. */
  function confirm(committed: readonly IngestItem[]) {
    for (const c of confirmationsFor(committed)) {
      subscriber.client.publish(ackTopic(c.device), encodeConfirmation(c), { qos: 0, retain: true })
      metrics.confirmations.inc()
    }
  }

  return {
    subscriber,
    start: () => subscriber.start(),
    async stop() {
      diskFull.stop()
      await subscriber.stop(() => batcher.flush())
    },
  }
}
