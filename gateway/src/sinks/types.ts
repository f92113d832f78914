/**
 * The sink contract. A sink delivers buffered readings to one destination (InfluxDB, ThingSpeak,
 * a local file). One drainer per sink calls it; the drainer owns cursors, retries and dead letters,
 * so a sink is mostly "encode a batch, send it, say what happened to each row".
 *
 * Lifecycle guarantees (as Telegraf's Output): at most `concurrency` (default 1) `write` calls are in
 * flight at once for one sink instance;
 * `close` is called once, after the last `write` has settled, and must be idempotent.
 */

import type { BufferedReading } from '../buffer/index.js'

/** A batch hands the sink buffered readings as the buffer stores them. */
export type { BufferedReading }

/**
 * What happened to a batch. Ids in none of the lists count as retryable (a sink bug can't lose data).
 * The drainer hands it to the buffer as its `Settlement` (accepted and rejected ids).
 */
export interface WriteResult {
  /** Buffer ids the remote confirmed; the drainer moves the cursor past them. */
  accepted: number[]
  /** Kept, retried later in order. */
  retryable: number[]
  /** Permanent refusals: moved to the dead-letter table with the reason. */
  rejected: { id: number; reason: string }[]
  /** The server asked for a pause (Retry-After); the drainer caps it by config. */
  retryAfterMs?: number
  /**
   * Set when the sink cannot deliver anything until its configuration is fixed: the credentials were
   * refused (401/403, or ThingSpeak's `-1` for a channel it may not read), or there is no write
   * endpoint at the configured URL (404 naming no database). The drainer stops this sink and alerts;
   * every row stays buffered. The message names the setting to fix.
   */
  authError?: string
  /**
   * The error code of the stop `authError` reports (docs/errors.md): `FERRY_ERR_SINK_AUTH` (the
   * default, refused credentials) or `FERRY_ERR_SINK_ENDPOINT` (no write endpoint at the URL: wrong
   * `FERRY_INFLUX_URL` or `FERRY_INFLUX_VERSION`).
   */
  stopCode?: SinkStopCode
  /** Low-cardinality class of the failure for metrics and status, e.g. 'http_429', 'http_5xx', 'network'. */
  errorClass?: string
  /** Human-readable detail of the failure (server message), for logs and status. */
  errorMessage?: string
}

/** Codes a sink may stop with (see `WriteResult.stopCode`). */
export type SinkStopCode = 'FERRY_ERR_SINK_AUTH' | 'FERRY_ERR_SINK_ENDPOINT'

export interface Sink {
  /** 'influxdb' | 'thingspeak' | 'file'; also the log and metric label and the cursor name. */
  readonly name: string
  /** Largest batch the drainer should hand over. */
  readonly maxBatch: number
  /**
   * How many batches may be in flight at once (default 1). More than one only where the order of
   * arrival does not matter and a batch may be delivered twice (InfluxDB: the same points overwrite).
   * The cursor still moves strictly in order.
   */
  readonly concurrency?: number
  /**
   * Delivers a batch, oldest first. Resolves with a result for every answer the server gave;
   * throws only on transport failure (timeout, DNS, TLS, connection refused), which the drainer retries.
   */
  write(batch: readonly BufferedReading[], signal: AbortSignal): Promise<WriteResult>
  /**
   * Optional: called once before the first write after a (re)start, to learn what the remote
   * already holds. ThingSpeak uses it to skip entries that a crash made it send twice.
   */
  resume?(signal: AbortSignal): Promise<void>
  close(): Promise<void>
}
