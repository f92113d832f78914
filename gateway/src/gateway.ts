/**
 * Wiring only: opens the buffer, and connects ingest (MQTT → buffer), one drainer per sink
 * (buffer → sink), the LED relay (cloud → device) and the metrics. Behaviour lives in the modules:
 *
 *   ingest/pipeline.ts ──▶ buffer/ ◀── drain/drainer.ts ──▶ sinks/<name>/
 *   led/ (relay + TalkBack) publishes through ingest's MQTT session; api/ reads this Gateway.
 */
import type { Logger } from '../../common/src/logger.js'
import { gatewayReplicaCn, GATEWAY_CN } from '../../common/src/ids.js'
import type { CoreConfig } from './core-config.js'
import { discardWarner, lockBuffer, logSinkChanges, openBuffer, RingBuffer, queryStatus, META_BUFFER_LIMITS } from './buffer/index.js'
import { bufferLimits, checkEveryMs } from './buffer/config.js'
import { watchBufferIntegrity } from './buffer-checks.js'
import { createIngest } from './ingest/pipeline.js'
import { readMqttTls, replicaNumber } from './ingest/tls.js'
import type { Subscriber } from './ingest/subscriber.js'
import { Drainer } from './drain/drainer.js'
import type { Sink } from './sinks/types.js'
import { createMetrics, recordDeadLetterDiscards, recordDrainEvent, recordExpired, recordStatus, type Metrics } from './metrics.js'
import { createLed, type LedRelay, type TalkBackFactory, type TalkBackPoller } from './led/index.js'
import { initialState, type GatewayState } from './state.js'
import type { OtaLink, OtaLinkOptions, OtaLinkStatus } from './ota/link.js'

export type { GatewayState } from './state.js'

export interface Gateway {
  buffer: RingBuffer
  subscriber: Subscriber
  drainers: Drainer[]
  metrics: Metrics
  state: GatewayState
  /** LED commands to devices (retained led/set) and their confirmations. */
  commands: LedRelay
  /** The TalkBack poller feeding `commands`, when configured. */
  talkback: TalkBackPoller | undefined
  status(): ReturnType<typeof queryStatus> & { gateway: GatewayState; drainers: Array<{ name: string; state: string; progress: unknown; lastError: unknown }>; ota: OtaLinkStatus | null }
  /** The link to the OTA server (FERRY_OTA_URL), when configured. */
  ota: OtaLink | undefined
  /** Stops taking messages, commits what is pending, acknowledges it, disconnects, closes the database. */
  stop(): Promise<void>
}

/** The link to the OTA server with its URL and interval already bound (cli.ts imports ota/link.ts only when FERRY_OTA_URL is set). */
export type OtaLinkFactory = (deps: Pick<OtaLinkOptions, 'tls' | 'buffer' | 'log' | 'registry'>) => OtaLink

/**
 * What the gateway runs besides ingest and the buffer. The optional parts come as factories made by
 * `ferry gateway` (cli.ts `loadParts`), which imports a part's code only when the configuration uses it.
 */
export interface GatewayDeps {
  log: Logger
  sinks: Sink[]
  /** Makes the TalkBack poller (led/index.ts `loadTalkBack`); unset, no TalkBack polling. */
  talkback?: TalkBackFactory | undefined
  /** Makes the link that forwards ota/status reports to the OTA server and reads its rollouts back; unset, no link. */
  ota?: OtaLinkFactory | undefined
  /** Where to read certificates from; tests pass buffers directly. */
  readFile?: (path: string) => Buffer
}

/** Starts the gateway. Config must already be validated. */
export function startGateway(config: CoreConfig, deps: GatewayDeps): Gateway {
  const log = deps.log
  // Certificates first: a bad path is a config error, reported before the buffer is touched.
  const tls = readMqttTls(config, log, deps.readFile)
  // One of a share group: the replica's number keeps point times apart (docs/scale-out.md#point-times).
  const replica = config.FERRY_MQTT_SHARE_GROUP ? replicaNumber(tls.cert, config.FERRY_MQTT_CERT) : null
  const limits = { ...bufferLimits(config), replica }

  // One gateway per database: a second one is refused here, naming the first (buffer/lock.ts).
  const lock = lockBuffer(config.FERRY_DB)
  let opened: ReturnType<typeof openBuffer>
  try {
    opened = openBuffer(config.FERRY_DB, { synchronous: config.FERRY_DB_SYNCHRONOUS, log: log.child({ component: 'buffer' }) })
  } catch (err) {
    lock.release()
    throw err
  }
  const buffer = new RingBuffer(opened.db, limits)
  buffer.setMeta(META_BUFFER_LIMITS, limits) // for `ferry status`: the runway and the dead letters' bound
  const metrics = createMetrics()
  // Dead letters over a device's share, or evicted for the total cap (buffer/dead-letter-store.ts).
  const warnDiscards = discardWarner(log.child({ component: 'buffer' }))
  buffer.onDeadLettersDiscarded((d) => {
    recordDeadLetterDiscards(metrics, d)
    warnDiscards(d)
  })
  const state = initialState(opened.recovered)
  if (config.FERRY_MQTT_SHARE_GROUP) state.replica = { group: config.FERRY_MQTT_SHARE_GROUP, name: replica ? gatewayReplicaCn(replica) : GATEWAY_CN }
  // Sinks no longer in FERRY_SINKS stop holding readings; one added back resumes (buffer/sinks.ts).
  logSinkChanges(log.child({ component: 'buffer' }), buffer.configureSinks(deps.sinks.map((s) => s.name)))

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
          recordDrainEvent(metrics, e)
          if (e.type === 'settled') ingest.settled()
          if (e.type === 'error' && (e.errorClass === 'auth' || e.errorClass === 'endpoint')) {
            state.lastError = { code: e.errorClass === 'auth' ? 'FERRY_ERR_SINK_AUTH' : 'FERRY_ERR_SINK_ENDPOINT', message: `${e.sink}: ${e.message}`, at: Date.now() }
          }
        },
      }),
  )

  const ingest = createIngest({
    config,
    tls,
    buffer,
    metrics,
    state,
    log: log.child({ component: 'ingest' }),
    onStored: () => {
      for (const d of drainers) d.notify()
    },
    onLedState: (device, payload) => led.relay.observeLedState(device, payload),
  })

  const led = createLed({ db: buffer.db, client: ingest.subscriber.client, log, registry: metrics.registry, talkback: deps.talkback, ready: () => state.brokerConnected && state.ingestPaused?.reason !== 'disk-full' })

  // FERRY_BUFFER_MAX_AGE: expire undelivered readings past it, checking every 1/100 of it (1 s to 1 min).
  const expiry = limits.maxAgeMs ? setInterval(expire, Math.min(60_000, Math.max(1000, limits.maxAgeMs / 100))) : undefined
  function expire() {
    try {
      const e = buffer.expire()
      if (e.total === 0) return
      recordExpired(metrics, e.byDevice)
      log.warn({ component: 'buffer', expired: e.total, byDevice: e.byDevice, maxAge: config.FERRY_BUFFER_MAX_AGE }, 'expired undelivered readings older than FERRY_BUFFER_MAX_AGE')
    } catch (err) {
      log.warn({ component: 'buffer', err }, 'expiring old readings failed; trying again later')
    }
  }

  // Forwards ota/status reports to the OTA server and reads its rollouts back (docs/ota-rollouts.md#the-gateway-link).
  const ota = deps.ota?.({ tls: { ca: tls.ca as Buffer, cert: tls.cert as Buffer, key: tls.key as Buffer }, buffer, log: log.child({ component: 'ota-link' }), registry: metrics.registry })

  // The whole file checked in the background; start-up checked only what it reads (docs/integrity.md).
  const integrity = watchBufferIntegrity({ path: config.FERRY_DB, everyMs: checkEveryMs(config), state, registry: metrics.registry, log: log.child({ component: 'buffer' }) })

  led.start()
  ota?.start()
  for (const d of drainers) d.start()
  ingest.start()
  log.info({ db: config.FERRY_DB, sinks: drainers.map((d) => d.name), synchronous: config.FERRY_DB_SYNCHRONOUS }, 'gateway started')

  let stopped: Promise<void> | undefined
  return {
    buffer,
    subscriber: ingest.subscriber,
    drainers,
    metrics,
    state,
    commands: led.relay,
    talkback: led.talkback,
    ota,
    status() {
      const s = queryStatus(buffer.db, Date.now(), buffer)
      recordStatus(metrics, s)
      return {
        ...s,
        gateway: state,
        drainers: drainers.map((d) => ({ name: d.name, state: d.state, progress: d.progress ?? null, lastError: d.lastError ?? null })),
        ota: ota?.status() ?? null,
      }
    },
    stop() {
      stopped ??= (async () => {
        clearInterval(expiry)
        await ota?.stop()
        await led.stop()
        // No new messages are taken; what is pending is committed and acknowledged; then DISCONNECT.
        await ingest.stop()
        await Promise.all(drainers.map((d) => d.stop()))
        await integrity.stop()
        buffer.db.close()
        lock.release()
        log.info('gateway stopped')
      })()
      return stopped
    },
  }
}
