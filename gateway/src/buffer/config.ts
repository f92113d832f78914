import { Type, type Static } from 'typebox'

/** The SQLite ring buffer: file, durability and bounds. Composed into the gateway's schema (core-config.ts). */
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

export type BufferConfig = Static<typeof bufferConfigSchema>
