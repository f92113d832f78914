/**
 * What goes into the buffer and what comes out of it. Ingest builds `IngestItem`s, the drainer reads
 * `BufferedReading`s and hands a sink's answer back as a `Settlement`; sinks import `BufferedReading`
 * from here (through the sink contract), never the other way round.
 */
import type { DeadLetterLimits } from './dead-letter-store.js'

/** A telemetry reading that passed validation, ready to store. */
export interface ReadingIn {
  type: 'reading'
  topic: string
  device: string
  boot: number
  seq: number
  /** Device timestamp (ms) if it sent one. */
  tsMs?: number
  receivedAt: number
  /**
   * A point time (µs) the reading keeps instead of one from the device clock: set only for a
   * requeued dead letter (dead-letters.ts), whose point time was fixed when it first arrived.
   */
  pointTimeUs?: number
  pot: number
  switch: 0 | 1
  led: number | null
  payload: Buffer
  /**
   * The payload holds the reading's fields and nothing else (seq, boot, pot, switch, and ts and led
   * when present): the buffer may store the columns alone and rebuild the JSON from them
   * (docs/buffer-storage.md). Unset: the raw bytes are kept.
   */
  fieldsOnly?: boolean
}

/** Something that could not be stored as what it claimed to be. */
export interface DeadIn {
  type: 'dead'
  topic: string
  device: string | null
  reason: string
  payload: Buffer
  receivedAt: number
  /** Telemetry with a valid boot and seq but a bad field: what the commit confirmation names (docs/delivery.md). */
  reading?: { boot: number; seq: number }
}

/** A device message that is not a reading. */
export interface EventIn {
  type: 'event'
  topic: string
  device: string
  kind: 'status' | 'led_state' | 'ota_status'
  payload: Buffer
  receivedAt: number
}

export type IngestItem = ReadingIn | DeadIn | EventIn

export interface BufferLimits {
  /** Most readings kept (delivered or not). */
  maxRows: number
  /** Most payload bytes kept. */
  maxBytes: number
  /** How long delivered readings are kept to recognise broker redeliveries (dedupe on device, boot, seq). */
  dedupWindowMs: number
  /** Most device events kept. */
  maxEvents: number
  /**
   * When a commit would break a limit by undelivered readings: drop the oldest of them (default), or
   * refuse the commit with FERRY_ERR_BUFFER_BACKPRESSURE and keep them all (ingest then pauses).
   */
  onFull?: 'drop-oldest' | 'backpressure'
  /** Undelivered readings received longer ago than this are expired by `RingBuffer.expire`; null/unset: never. */
  maxAgeMs?: number | null
  /** The dead letters' own bound (dead-letter-store.ts); unset: unbounded (`ferry dlq`, tests). */
  deadLetters?: DeadLetterLimits
  /**
   * One of a share group (FERRY_MQTT_SHARE_GROUP): this replica's number (0 for ferry-gateway, n for
   * ferry-gateway-<n>), so point times agree across replicas (ring-buffer.ts `sharedPointTime`).
   * Unset/null: a single gateway, point times from its own per-device clock.
   */
  replica?: number | null
}

export interface IngestOutcome {
  stored: number
  duplicates: number
  dead: number
  events: number
  /** Undelivered readings dropped to make room. */
  dropped: number
  /** The readings of this batch that were already stored (present only when there were some). */
  duplicateReadings?: ReadingIn[]
}

/**
 * One reading as it sits in the buffer (a row of the `readings` table): what the drainer reads from
 * a sink's cursor and hands to the sink in a batch. Ids increase in ingest order.
 */
export interface BufferedReading {
  /** Buffer row id; increases in ingest order, never reused. */
  id: number
  device: string
  boot: number
  seq: number
  /**
   * Point timestamp in microseconds since the epoch: the device's `ts` when plausible, else the
   * receive time; made strictly increasing per device at ingest, so no two readings of a device
   * share a timestamp and a replay overwrites (InfluxDB) instead of duplicating.
   */
  tsUs: number
  /** When the gateway received it, ms since the epoch. */
  receivedAt: number
  pot: number
  switch: 0 | 1
  led: number | null
  /**
   * The raw JSON payload as received. Not loaded when the drainer reads a backlog (sinks encode from
   * the parsed fields above); the buffer keeps it and copies it into a dead letter when a sink refuses
   * the reading.
   */
  payload?: string
}


/**
 * What a sink made of a batch, as far as the buffer cares (`RingBuffer.settle`); a sink's
 * `WriteResult` is one. Ids in neither list are sent again later, in order.
 */
export interface Settlement {
  /** Buffer ids the remote confirmed. */
  readonly accepted: readonly number[]
  /** Permanent refusals, with the sink's reason: they become dead letters. */
  readonly rejected: readonly { id: number; reason: string }[]
}
