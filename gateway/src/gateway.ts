import { readFileSync } from 'node:fs'
import type { Logger } from '../../common/src/logger.js'
import { ConfigError } from '../../common/src/errors.js'
import type { CoreConfig } from './core-config.js'
import { openBuffer, RingBuffer, queryStatus } from './buffer/index.js'
import { Batcher } from './ingest/batcher.js'
import { createSubscriber, type Subscriber } from './ingest/subscriber.js'
import { toIngestItem } from './ingest/handlers/index.js'
import { Drainer } from './drain/drainer.js'
import type { Sink } from './sinks/types.js'
import { createMetrics, type Metrics } from './metrics.js'
import { LedRelay, mqttPublisher } from './led/relay.js'
import { CommandStore } from './led/store.js'

/** Live facts about the running gateway, for the API, metrics and logs. */
export interface GatewayState {
  startedAt: number
  brokerConnected: boolean
  /** Set while commits fail for lack of space; acknowledgements are stopped. */
  diskFull: { since: number; error: string } | null
  brokerDropped: number | null
  lastError: { code: string; message: string; at: number } | null
  recovered: { movedTo: string; error: string; at: number } | null
}

export interface Gateway {
  buffer: RingBuffer
  subscriber: Subscriber
  drainers: Drainer[]
  metrics: Metrics
  state: GatewayState
  /** LED commands to devices (retained led/set) and their confirmations. */
  commands: LedRelay
  status(): ReturnType<typeof queryStatus> & { gateway: GatewayState; drainers: Array<{ name: string; state: string; progress: unknown; lastError: unknown }> }
  /** Stops taking messages, commits what is pending, acknowledges it, disconnects, closes the database. */
  stop(): Promise<void>
}

export interface GatewayDeps {
  log: Logger
  sinks: Sink[]
  /** Where to read certificates from; tests pass buffers directly. */
  readFile?: (path: string) => Buffer
}

const DISK_FULL_CODES = new Set(['SQLITE_FULL', 'ENOSPC', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC', 'SQLITE_IOERR_SHMSIZE', 'SQLITE_IOERR'])
const DISK_PROBE_MS = 2000

/** Wires buffer, ingest and drainers. Config must already be validated. */
export function startGateway(config: CoreConfig, deps: GatewayDeps): Gateway {
  const log = deps.log
  const readFile = deps.readFile ?? ((p: string) => readFileSync(p))
  // Read the certificates before touching the buffer: a bad path is a config error, not a buffer problem.
  const read = (name: 'FERRY_MQTT_CA' | 'FERRY_MQTT_CERT' | 'FERRY_MQTT_KEY') => {
    try {
      return readFile(config[name])
    } catch (err) {
      throw new ConfigError(`${name}: cannot read ${config[name]} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); point it at the PEM file from "ferry pki" (ca.crt, gateway.crt, gateway.key).`, { cause: err })
    }
  }
  const tls = {
    ca: read('FERRY_MQTT_CA'),
    cert: read('FERRY_MQTT_CERT'),
    key: read('FERRY_MQTT_KEY'),
    rejectUnauthorized: !config.FERRY_MQTT_TLS_INSECURE,
  }
  if (config.FERRY_MQTT_TLS_INSECURE) log.warn('FERRY_MQTT_TLS_INSECURE=true: the broker certificate is NOT verified. Development only.')

  const opened = openBuffer(config.FERRY_DB, { synchronous: config.FERRY_DB_SYNCHRONOUS, log: log.child({ component: 'buffer' }) })
  const buffer = new RingBuffer(opened.db, {
    maxRows: config.FERRY_BUFFER_MAX_ROWS,
    maxBytes: config.FERRY_BUFFER_MAX_BYTES,
    dedupWindowMs: config.FERRY_BUFFER_DEDUP_WINDOW_MS,
    maxEvents: config.FERRY_BUFFER_MAX_EVENTS,
  })
  const metrics = createMetrics()
  const state: GatewayState = {
    startedAt: Date.now(),
    brokerConnected: false,
    diskFull: null,
    brokerDropped: null,
    lastError: opened.recovered ? { code: 'FERRY_ERR_BUFFER_CORRUPT', message: `buffer was corrupt (${opened.recovered.error}); moved to ${opened.recovered.movedTo}`, at: opened.recovered.at } : null,
    recovered: opened.recovered ?? null,
  }

  const drainers = deps.sinks.map(
    (sink) =>
      new Drainer({
        sink,
        buffer,
        log,
        retryMinMs: config.FERRY_DRAIN_RETRY_MIN_MS,
        retryMaxMs: config.FERRY_DRAIN_RETRY_MAX_MS,
        retryAfterCapMs: config.FERRY_DRAIN_RETRY_AFTER_CAP_MS,
        progressEveryMs: config.FERRY_DRAIN_PROGRESS_MS,
        onEvent: (e) => {
          if (e.type === 'settled') {
            metrics.sinkSent.inc({ sink: e.sink }, e.accepted)
            if (e.rejected) metrics.deadLettered.inc({ source: `sink:${e.sink}` }, e.rejected)
          } else if (e.type === 'error') {
            metrics.sinkErrors.inc({ sink: e.sink, class: e.errorClass })
            if (e.errorClass === 'auth') state.lastError = { code: 'FERRY_ERR_SINK_AUTH', message: `${e.sink}: ${e.message}`, at: Date.now() }
          } else {
            metrics.sinkUp.set({ sink: e.sink }, e.state === 'idle' || e.state === 'sending' ? 1 : 0)
          }
        },
      }),
  )

  const ingestLog = log.child({ component: 'ingest' })
  const received = new Map<string, number>()
  let probe: NodeJS.Timeout | undefined
  const batcher = new Batcher({
    buffer,
    maxItems: config.FERRY_INGEST_BATCH_MAX,
    maxDelayMs: config.FERRY_INGEST_BATCH_DELAY_MS,
    onCommit: ({ items, outcome, ms }) => {
      // Counted per message in a plain Map, handed to prom-client once per commit (a labelled
      // inc() per message is measurable at tens of thousands of messages a second).
      for (const [kind, n] of received) metrics.messagesIn.inc({ kind }, n)
      received.clear()
      metrics.commitSeconds.observe(ms / 1000)
      metrics.messagesAcked.inc(items)
      if (outcome.duplicates) metrics.duplicates.inc(outcome.duplicates)
      if (outcome.dead) metrics.deadLettered.inc({ source: 'ingest' }, outcome.dead)
      if (outcome.dropped) {
        metrics.dropped.inc(outcome.dropped)
        ingestLog.warn({ dropped: outcome.dropped }, 'buffer full: dropped the oldest undelivered readings')
      }
      ingestLog.debug({ items, ...outcome, ms }, 'committed')
      if (outcome.stored) for (const d of drainers) d.notify()
    },
    onError: (err, items) => {
      metrics.commitFailures.inc()
      const code = (err as { code?: string }).code ?? 'UNKNOWN'
      if (DISK_FULL_CODES.has(code)) enterDiskFull(err, code, items)
      else {
        // Any other commit failure: acknowledge nothing, reconnect so the broker redelivers.
        state.lastError = { code, message: err.message, at: Date.now() }
        ingestLog.error({ err, items }, 'commit failed; nothing acknowledged, reconnecting so the broker redelivers')
        subscriber.pause()
        subscriber.resume()
      }
    },
  })

  function enterDiskFull(err: Error, code: string, items: number) {
    if (state.diskFull) return
    state.diskFull = { since: Date.now(), error: `${code}: ${err.message}` }
    state.lastError = { code: 'FERRY_ERR_BUFFER_FULL_DISK', message: `disk full (${code}); acknowledgements stopped, the broker keeps the messages`, at: Date.now() }
    ingestLog.error({ err, items, db: config.FERRY_DB }, 'disk full: stopped acknowledging; the broker keeps the messages. Free space on the buffer volume; ingest resumes by itself')
    batcher.discard()
    subscriber.pause()
    probe = setInterval(() => {
      try {
        // A write the size of a large batch: if this commits, a real batch will too.
        buffer.db.transaction(() => {
          buffer.setMeta('disk_probe', 'x'.repeat(64 * 1024))
          buffer.setMeta('disk_probe', Date.now())
        })()
      } catch {
        return
      }
      clearInterval(probe)
      probe = undefined
      ingestLog.warn({ downForMs: Date.now() - state.diskFull!.since }, 'disk has space again; resuming ingest (nothing was lost: the broker held the messages)')
      state.diskFull = null
      subscriber.resume()
    }, DISK_PROBE_MS)
  }

  const maxPayload = config.FERRY_INGEST_MAX_PAYLOAD_BYTES
  const subscriber = createSubscriber({
    url: config.FERRY_MQTT_URL,
    tls,
    clientId: config.FERRY_MQTT_CLIENT_ID,
    keepaliveS: config.FERRY_MQTT_KEEPALIVE_S,
    sessionExpiryS: config.FERRY_MQTT_SESSION_EXPIRY_S,
    receiveMaximum: config.FERRY_INGEST_BATCH_MAX,
    log: log.child({ component: 'mqtt' }),
    onMessage: (topic, payload, release) => {
      const item = toIngestItem(topic, payload, Date.now(), maxPayload)
      const kind = item.type === 'event' ? item.kind : item.type === 'reading' ? 'telemetry' : 'invalid'
      received.set(kind, (received.get(kind) ?? 0) + 1)
      // release() runs after the commit: an LED echo confirms its command only once it is stored.
      const ledEcho = item.type === 'event' && item.kind === 'led_state' ? item : undefined
      batcher.add(item, ledEcho ? () => (release(), commands.observeLedState(ledEcho.device, ledEcho.payload)) : release)
    },
    onBrokerDropped: (n) => {
      if (state.brokerDropped !== null && n > state.brokerDropped) {
        log.warn({ droppedByBroker: n }, 'the broker dropped messages (its queue for a client was full); raise max_queued_messages or fix the slow client')
      }
      state.brokerDropped = n
      metrics.brokerDropped.set(n)
    },
    onConnectionChange: (up) => {
      state.brokerConnected = up
      metrics.brokerConnected.set(up ? 1 : 0)
    },
  })

  const commands = new LedRelay({ store: new CommandStore(buffer.db), publisher: mqttPublisher(subscriber.client), log: log.child({ component: 'commands' }), registry: metrics.registry })
  commands.start()

  for (const d of drainers) d.start()
  subscriber.start()
  log.info({ db: config.FERRY_DB, sinks: drainers.map((d) => d.name), synchronous: config.FERRY_DB_SYNCHRONOUS }, 'gateway started')

  let stopped: Promise<void> | undefined
  return {
    buffer,
    subscriber,
    drainers,
    metrics,
    state,
    commands,
    status() {
      const s = queryStatus(buffer.db, Date.now(), buffer)
      metrics.bufferRows.set(s.buffered.rows)
      for (const sink of s.sinks) {
        metrics.sinkBacklog.set({ sink: sink.name }, sink.rows)
        metrics.sinkOldestAge.set({ sink: sink.name }, sink.oldestAgeMs === null ? 0 : sink.oldestAgeMs / 1000)
      }
      return {
        ...s,
        gateway: state,
        drainers: drainers.map((d) => ({ name: d.name, state: d.state, progress: d.progress ?? null, lastError: d.lastError ?? null })),
      }
    },
    stop() {
      stopped ??= (async () => {
        clearInterval(probe)
        await commands.stop()
        // No new messages are taken; what is pending is committed and acknowledged; then DISCONNECT.
        await subscriber.stop(() => batcher.flush())
        await Promise.all(drainers.map((d) => d.stop()))
        buffer.db.close()
        log.info('gateway stopped')
      })()
      return stopped
    },
  }
}
