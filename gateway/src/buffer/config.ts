import { Type, type Static } from 'typebox'
import { parseDuration } from '../../../common/src/cli-args.js'
import { ConfigError } from '../../../common/src/errors.js'
import type { BufferLimits } from './types.js'
import { TEXT_MAX_BYTES, type DeadLetterLimits } from './dead-letter-store.js'

/** The SQLite ring buffer: file, durability and bounds. Composed into the gateway's schema (core-config.ts). */
export const bufferConfigSchema = Type.Object({
  FERRY_DB: Type.String({ default: 'ferry-buffer.db', description: 'Path of the SQLite buffer database.' }),
  FERRY_DB_SYNCHRONOUS: Type.Union([Type.Literal('NORMAL'), Type.Literal('FULL')], {
    default: 'FULL',
    description: 'SQLite synchronous level in WAL mode. FULL (default) also survives power loss, at one fsync per group commit; with group commit it ingested as fast as NORMAL in bench/README.md. NORMAL survives a killed or crashed process but can lose the last commits on power loss.',
  }),
  FERRY_DB_CHECK_EVERY: Type.String({
    default: '24h',
    pattern: '^([1-9][0-9]*(s|m|h|d|w)|off)$',
    description: 'How often the whole buffer database is checked for damage in the background (PRAGMA integrity_check on a read-only connection in a worker thread; the first check runs 30 s after start, or sooner when this is shorter). Start-up itself checks only what it reads anyway, so a large buffer starts quickly. Damage found is logged (FERRY_ERR_BUFFER_DAMAGED), shown in /healthz, ferry status and the ferry_buffer_damaged metric, and the next start checks the whole file and moves it aside (docs/integrity.md). off: no background checks.',
  }),
  FERRY_BUFFER_MAX_ROWS: Type.Integer({ default: 1_000_000, minimum: 1, description: 'Most readings kept. When full, the oldest undelivered readings are dropped and counted (or ingest pauses: FERRY_BUFFER_ON_FULL).' }),
  FERRY_BUFFER_MAX_BYTES: Type.Integer({ default: 268_435_456, minimum: 1024, description: 'Most payload bytes kept (raw JSON, not counting SQLite overhead). When full, the oldest undelivered readings are dropped and counted (or ingest pauses: FERRY_BUFFER_ON_FULL).' }),
  FERRY_BUFFER_ON_FULL: Type.Union([Type.Literal('drop-oldest'), Type.Literal('backpressure')], {
    default: 'drop-oldest',
    description: 'What a full buffer does. drop-oldest: delete the oldest undelivered readings to make room (counted per device as dropped). backpressure: never delete an undelivered reading; a group commit that does not fit is refused, nothing is acknowledged and ingest pauses (the broker and the devices keep the messages) until the drainers have freed room for a full group. Needs FERRY_BUFFER_MAX_ROWS >= FERRY_INGEST_BATCH_MAX and FERRY_BUFFER_MAX_BYTES >= FERRY_INGEST_BATCH_MAX x FERRY_INGEST_MAX_PAYLOAD_BYTES.',
  }),
  FERRY_BUFFER_MAX_AGE: Type.Optional(Type.String({
    pattern: '^[1-9][0-9]*(s|m|h|d|w)$',
    description: 'Undelivered readings received longer ago than this (e.g. 30d, 12h, 90m) are removed and counted per device as expired, whatever FERRY_BUFFER_ON_FULL says. Unset: readings never expire.',
  })),
  FERRY_BUFFER_DEDUP_WINDOW_MS: Type.Integer({ default: 600_000, minimum: 0, description: 'Delivered readings are kept this long to recognise broker redeliveries (same device, boot, seq).' }),
  FERRY_BUFFER_MAX_EVENTS: Type.Integer({ default: 100_000, minimum: 100, description: 'Most device events (status, LED state, OTA status) kept.' }),
  FERRY_DEADLETTER_MAX_ROWS: Type.Integer({ default: 10_000, minimum: 1, description: 'Most dead letters kept (requeued ones included), apart from the readings\' FERRY_BUFFER_MAX_ROWS. Past it the oldest are deleted, counted per device as evicted.' }),
  FERRY_DEADLETTER_MAX_BYTES: Type.Integer({ default: 8_388_608, minimum: 4096, description: 'Most dead-letter bytes kept (payload, reason and topic; not counting SQLite overhead), apart from FERRY_BUFFER_MAX_BYTES. Past it the oldest are deleted, counted per device as evicted. A dead letter keeps only the first FERRY_INGEST_MAX_PAYLOAD_BYTES bytes of an oversized payload (it can then not be requeued) and the first 1024 bytes of its reason and topic.' }),
  FERRY_DEADLETTER_DEVICE_SHARE: Type.Integer({ default: 10, minimum: 1, maximum: 100, description: 'Percent of FERRY_DEADLETTER_MAX_ROWS and of FERRY_DEADLETTER_MAX_BYTES that the dead letters (not requeued) of one device may hold. Past it that device\'s dead letters are not stored, only counted per device as over-share, so a device sending bad messages cannot crowd out the others. Must hold one dead letter: FERRY_DEADLETTER_MAX_BYTES x share >= FERRY_INGEST_MAX_PAYLOAD_BYTES + 2048.' }),
})

export type BufferConfig = Static<typeof bufferConfigSchema>

/** What the limits depend on outside the buffer: the largest group ingest commits at once. */
interface GroupSettings {
  FERRY_INGEST_BATCH_MAX: number
  FERRY_INGEST_MAX_PAYLOAD_BYTES: number
}

/**
 * The buffer's limits from the settings. Throws ConfigError when backpressure could never resume: a
 * refused group is retried whole, so the buffer must be able to hold the largest group ingest makes;
 * and when a device's share of the dead letters could not hold one (`deadLetterLimits`).
 */
export function bufferLimits(c: BufferConfig & GroupSettings): BufferLimits {
  if (c.FERRY_BUFFER_ON_FULL === 'backpressure') {
    const groupBytes = c.FERRY_INGEST_BATCH_MAX * c.FERRY_INGEST_MAX_PAYLOAD_BYTES
    if (c.FERRY_BUFFER_MAX_ROWS < c.FERRY_INGEST_BATCH_MAX || c.FERRY_BUFFER_MAX_BYTES < groupBytes) {
      throw new ConfigError(
        `FERRY_BUFFER_ON_FULL=backpressure needs room for one full group commit: FERRY_BUFFER_MAX_ROWS (${c.FERRY_BUFFER_MAX_ROWS}) >= FERRY_INGEST_BATCH_MAX (${c.FERRY_INGEST_BATCH_MAX}) and FERRY_BUFFER_MAX_BYTES (${c.FERRY_BUFFER_MAX_BYTES}) >= FERRY_INGEST_BATCH_MAX x FERRY_INGEST_MAX_PAYLOAD_BYTES (${groupBytes}); raise the buffer limits or lower FERRY_INGEST_BATCH_MAX.`,
      )
    }
  }
  return {
    maxRows: c.FERRY_BUFFER_MAX_ROWS,
    maxBytes: c.FERRY_BUFFER_MAX_BYTES,
    dedupWindowMs: c.FERRY_BUFFER_DEDUP_WINDOW_MS,
    maxEvents: c.FERRY_BUFFER_MAX_EVENTS,
    onFull: c.FERRY_BUFFER_ON_FULL,
    // The schema's pattern admits only what parseDuration reads.
    maxAgeMs: c.FERRY_BUFFER_MAX_AGE === undefined ? null : parseDuration(c.FERRY_BUFFER_MAX_AGE),
    deadLetters: deadLetterLimits(c),
  }
}

/**
 * The dead letters' own bound (dead-letter-store.ts). Throws ConfigError when a device's share could
 * not hold even one dead letter of the largest size kept (payload prefix, reason and topic).
 */
function deadLetterLimits(c: BufferConfig & GroupSettings): DeadLetterLimits {
  const share = (n: number) => Math.floor((n * c.FERRY_DEADLETTER_DEVICE_SHARE) / 100)
  const limits = {
    maxRows: c.FERRY_DEADLETTER_MAX_ROWS,
    maxBytes: c.FERRY_DEADLETTER_MAX_BYTES,
    deviceMaxRows: Math.max(1, share(c.FERRY_DEADLETTER_MAX_ROWS)),
    deviceMaxBytes: share(c.FERRY_DEADLETTER_MAX_BYTES),
    maxPayloadBytes: c.FERRY_INGEST_MAX_PAYLOAD_BYTES,
  }
  const largest = c.FERRY_INGEST_MAX_PAYLOAD_BYTES + 2 * TEXT_MAX_BYTES
  if (limits.deviceMaxBytes < largest) {
    throw new ConfigError(
      `a device's share of the dead letters, FERRY_DEADLETTER_MAX_BYTES (${c.FERRY_DEADLETTER_MAX_BYTES}) x FERRY_DEADLETTER_DEVICE_SHARE (${c.FERRY_DEADLETTER_DEVICE_SHARE}%) = ${limits.deviceMaxBytes} bytes, must hold one dead letter of FERRY_INGEST_MAX_PAYLOAD_BYTES + ${2 * TEXT_MAX_BYTES} (${largest}) bytes; raise FERRY_DEADLETTER_MAX_BYTES or FERRY_DEADLETTER_DEVICE_SHARE.`,
    )
  }
  return limits
}

/** FERRY_DB_CHECK_EVERY in ms; null when off (background-check.ts). */
export function checkEveryMs(c: Pick<BufferConfig, 'FERRY_DB_CHECK_EVERY'>): number | null {
  // The schema's pattern admits only "off" and what parseDuration reads.
  return c.FERRY_DB_CHECK_EVERY === 'off' ? null : parseDuration(c.FERRY_DB_CHECK_EVERY)
}
