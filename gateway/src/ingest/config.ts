import { Type, type Static } from 'typebox'

/** The gateway's MQTT session (ingest/subscriber.ts). Composed into the gateway's schema (core-config.ts). */
export const mqttConfigSchema = Type.Object({
  FERRY_MQTT_URL: Type.String({ default: 'mqtts://localhost:8883', pattern: '^mqtts://', description: 'Broker URL. Only mqtts:// (TLS) is accepted.' }),
  FERRY_MQTT_CA: Type.String({ description: 'Path to the CA certificate (PEM) that signed the broker certificate (the PKI ca.crt).' }),
  FERRY_MQTT_CERT: Type.String({ description: 'Path to the gateway client certificate (PEM, CN=ferry-gateway).' }),
  FERRY_MQTT_KEY: Type.String({ description: 'Path to the gateway private key (PEM).' }),
  FERRY_MQTT_CLIENT_ID: Type.String({ default: 'ferry-gateway', minLength: 1, description: 'MQTT client id of the persistent session. The broker config sets it to the certificate CN anyway (use_username_as_clientid).' }),
  FERRY_MQTT_KEEPALIVE_S: Type.Integer({ default: 30, minimum: 5, maximum: 600, description: 'MQTT keepalive in seconds.' }),
  FERRY_MQTT_SESSION_EXPIRY_S: Type.Integer({ default: 2_592_000, minimum: 60, description: 'How long the broker keeps the gateway session (and queues messages) while it is away, in seconds. Default 30 days.' }),
  FERRY_MQTT_SHARE_GROUP: Type.Optional(Type.String({
    pattern: '^[A-Za-z0-9_-]{1,64}$',
    description: 'Scale-out (docs/scale-out.md): subscribe to the device topics through the MQTT 5 shared subscription $share/<name>/..., so that several gateway replicas (certificates CN=ferry-gateway-<n>, each with its own FERRY_DB) split one site\'s messages. Replicas use a session that ends when they disconnect, so a dead replica stops receiving shares as soon as the broker notices (for a silent one, 1.5 x FERRY_MQTT_KEEPALIVE_S plus the broker\'s check interval: docs/scale-out.md#sessions); FERRY_MQTT_SESSION_EXPIRY_S does not apply. Unset: one gateway with a persistent session.',
  })),
  FERRY_MQTT_TLS_INSECURE: Type.Boolean({ default: false, description: 'Development only: do not verify the broker certificate. Logs a warning on every start.' }),
})

/** Group commit and payload limits (ingest/batcher.ts, ingest/handlers/). */
export const ingestConfigSchema = Type.Object({
  FERRY_INGEST_BATCH_MAX: Type.Integer({ default: 1024, minimum: 1, maximum: 65535, description: 'Most messages per commit; also the MQTT 5 Receive Maximum (unacknowledged messages the broker may send). Larger groups write fewer pages per message (bench/README.md: write amplification).' }),
  FERRY_INGEST_BATCH_DELAY_MS: Type.Integer({ default: 20, minimum: 0, maximum: 1000, description: 'Longest a message waits for its group commit (and so for its PUBACK), in ms. Telemetry tolerates 20 ms; a longer wait groups more messages per commit under load.' }),
  FERRY_INGEST_CONFIRM: Type.Boolean({ default: true, description: 'After each group commit, tell each device which of its readings are stored, on sensors/<id>/ack (docs/delivery.md); devices keep a reading until then. false: devices fall back to the broker\'s PUBACK after their fallback time.' }),
  FERRY_INGEST_CONFIRM_AFTER: Type.Union([Type.Literal('auto'), Type.Literal('commit'), Type.Literal('delivery')], {
    default: 'auto',
    description: 'When a reading is confirmed to its device (docs/delivery.md). commit: once it is in this gateway\'s SQLite buffer. delivery: once every configured sink has taken it (or dead-lettered it), so a gateway whose buffer never comes back loses nothing; devices hold readings for longer. auto: delivery with FERRY_MQTT_SHARE_GROUP (a replica may never return), else commit.',
  }),
  FERRY_INGEST_MAX_PAYLOAD_BYTES: Type.Integer({ default: 2048, minimum: 64, description: 'Larger payloads are dead-lettered.' }),
})

export type MqttConfig = Static<typeof mqttConfigSchema>

export type IngestConfig = Static<typeof ingestConfigSchema>
