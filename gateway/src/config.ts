import { Type, type Static } from 'typebox'
import { loadEnv } from '../../common/src/config/env.js'

/**
 * The gateway's configuration: one TypeBox schema per module, composed here. It is also the
 * documentation: `ferry config` prints it and `npm run docs:config` writes docs/configuration.md and
 * .env.example from it (a test fails when those files are stale).
 */
export const mqttConfigSchema = Type.Object({
  FERRY_MQTT_URL: Type.String({ default: 'mqtts://localhost:8883', pattern: '^mqtts://', description: 'Broker URL. Only mqtts:// (TLS) is accepted.' }),
  FERRY_MQTT_CA: Type.String({ description: 'Path to the CA certificate (PEM) that signed the broker certificate (the PKI ca.crt).' }),
  FERRY_MQTT_CERT: Type.String({ description: 'Path to the gateway client certificate (PEM, CN=ferry-gateway).' }),
  FERRY_MQTT_KEY: Type.String({ description: 'Path to the gateway private key (PEM).' }),
  FERRY_MQTT_CLIENT_ID: Type.String({ default: 'ferry-gateway', minLength: 1, description: 'MQTT client id of the persistent session. The broker config sets it to the certificate CN anyway (use_username_as_clientid).' }),
  FERRY_MQTT_KEEPALIVE_S: Type.Integer({ default: 30, minimum: 5, maximum: 600, description: 'MQTT keepalive in seconds.' }),
  FERRY_MQTT_SESSION_EXPIRY_S: Type.Integer({ default: 2_592_000, minimum: 60, description: 'How long the broker keeps the gateway session (and queues messages) while it is away, in seconds. Default 30 days.' }),
  FERRY_MQTT_TLS_INSECURE: Type.Boolean({ default: false, description: 'Development only: do not verify the broker certificate. Logs a warning on every start.' }),
})

export const bufferConfigSchema = Type.Object({
  FERRY_DB: Type.String({ default: 'ferry-buffer.db', description: 'Path of the SQLite buffer database.' }),
  FERRY_DB_SYNCHRONOUS: Type.Union([Type.Literal('NORMAL'), Type.Literal('FULL')], {
    default: 'FULL',
    description: 'SQLite synchronous level in WAL mode. FULL (default) also survives power loss, at one fsync per group commit; with group commit it ingested as fast as NORMAL in bench/README.md. NORMAL survives a killed or crashed process but can lose the last commits on power loss.',
  }),
  FERRY_BUFFER_MAX_ROWS: Type.Integer({ default: 1_000_000, minimum: 1, description: 'Most readings kept. When full, the oldest undelivered readings are dropped and counted.' }),
  FERRY_BUFFER_MAX_BYTES: Type.Integer({ default: 268_435_456, minimum: 1024, description: 'Most payload bytes kept (raw JSON, not counting SQLite overhead). When full, the oldest undelivered readings are dropped and counted.' }),
  FERRY_BUFFER_DEDUP_WINDOW_MS: Type.Integer({ default: 600_000, minimum: 0, description: 'Delivered readings are kept this long to recognise broker redeliveries (same device, boot, seq).' }),
  FERRY_BUFFER_MAX_EVENTS: Type.Integer({ default: 100_000, minimum: 100, description: 'Most device events (status, LED state, OTA status) kept.' }),
})

export const ingestConfigSchema = Type.Object({
  FERRY_INGEST_BATCH_MAX: Type.Integer({ default: 1024, minimum: 1, maximum: 65535, description: 'Most messages per commit; also the MQTT 5 Receive Maximum (unacknowledged messages the broker may send). Larger groups write fewer pages per message (bench/README.md: write amplification).' }),
  FERRY_INGEST_BATCH_DELAY_MS: Type.Integer({ default: 20, minimum: 0, maximum: 1000, description: 'Longest a message waits for its group commit (and so for its PUBACK), in ms. Telemetry tolerates 20 ms; a longer wait groups more messages per commit under load.' }),
  FERRY_INGEST_MAX_PAYLOAD_BYTES: Type.Integer({ default: 2048, minimum: 64, description: 'Larger payloads are dead-lettered.' }),
})

export const drainConfigSchema = Type.Object({
  FERRY_DRAIN_RETRY_MIN_MS: Type.Integer({ default: 1000, minimum: 10, description: 'First retry delay after a failed write (doubles, with jitter).' }),
  FERRY_DRAIN_RETRY_MAX_MS: Type.Integer({ default: 60_000, minimum: 10, description: 'Longest retry delay.' }),
  FERRY_DRAIN_RETRY_AFTER_CAP_MS: Type.Integer({ default: 300_000, minimum: 0, description: 'Longest pause a server Retry-After may impose.' }),
  FERRY_DRAIN_PROGRESS_MS: Type.Integer({ default: 5000, minimum: 100, description: 'How often backlog progress (rows left, rate, ETA) is logged while draining.' }),
})

export const processConfigSchema = Type.Object({
  FERRY_LOG_LEVEL: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info', description: 'Log level (pino): fatal, error, warn, info, debug, trace or silent.' }),
})

export const coreConfigSchema = Type.Object({
  ...processConfigSchema.properties,
  ...mqttConfigSchema.properties,
  ...bufferConfigSchema.properties,
  ...ingestConfigSchema.properties,
  ...drainConfigSchema.properties,
})

export type CoreConfig = Static<typeof coreConfigSchema>

/** Loads and validates; throws ConfigError naming each bad variable. Touches nothing else. */
export function loadCoreConfig(env?: NodeJS.ProcessEnv): CoreConfig {
  return loadEnv<CoreConfig>(coreConfigSchema, { env })
}
