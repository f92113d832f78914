/**
 * The buffer's public API: everything outside gateway/src/buffer/ imports from here (except config.ts,
 * the buffer's settings, which the gateway's config schema composes without loading the buffer), and
 * only this folder prepares SQL on the buffer's tables (the commands table excepted: led/store.ts).
 * It exports only what is used outside the folder.
 *
 * - open.ts: `openBuffer`, the only place that opens the database, sets pragmas and migrates;
 *   `checkWritable` for the health check.
 * - lock.ts: `lockBuffer`, one gateway per database (a lock held for the process's life).
 * - integrity.ts: the cheap corruption check at open and the exact counts the open's scan leaves for
 *   the ring; background-check.ts: the whole file checked in a worker thread (docs/integrity.md).
 * - ring-buffer.ts: `RingBuffer`, the ring itself: ingest (append), read, settle (advance a sink's
 *   cursor), prune, the ring bound (drop-oldest or backpressure) and expiry (FERRY_BUFFER_MAX_AGE).
 * - sinks.ts: which sinks hold readings: configured ones, and retired ones that no longer do
 *   (`RingBuffer.configureSinks`, `logSinkChanges`).
 * - devices.ts: `DeviceReads`, read-only queries on devices and their stored readings (the API).
 * - status.ts: read-only status queries (`ferry status`, the API, metrics, the demo).
 * - runway.ts: the ingest rate (EWMA), how long until the buffer is full, drain ETAs.
 * - dead-letters.ts: listing and requeueing dead letters (`ferry dlq`).
 * - dead-letter-store.ts: `DeadLetterStore`, writing dead letters within their own bound (total cap,
 *   a share per device, bounded payloads) and counting per device what it does not keep.
 * - types.ts: what goes in (ingest items) and comes out (`BufferedReading` rows, a sink's `Settlement`).
 */
export { openBuffer, checkWritable, type OpenResult } from './open.js'
export { lockBuffer } from './lock.js'
export { startBackgroundChecks, type CheckResult } from './background-check.js'
export { damageReported, type DamageReport } from './integrity.js'
export { RingBuffer } from './ring-buffer.js'
export { logSinkChanges, type SinkChange } from './sinks.js'
export { DeviceReads, type DeviceReading, type DeviceRecord } from './devices.js'
export { EventReads, type StoredEvent } from './events.js'
export { queryStatus, readingCounts, type RetiredSink, type SinkBacklog, type SinkOutlook } from './status.js'
export { META_BUFFER_LIMITS, META_INGEST_PAUSED, type Runway } from './runway.js'
export { listDeadLetters, requeueDeadLetters, type DeadLetter } from './dead-letters.js'
export { discardWarner, type DiscardCount } from './dead-letter-store.js'
export type { DeadIn, EventIn, IngestItem, IngestOutcome, ReadingIn, Settlement, BufferedReading } from './types.js'
