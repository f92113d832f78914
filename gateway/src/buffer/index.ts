/**
 * The buffer's public API: everything outside gateway/src/buffer/ imports from here.
 *
 * - open.ts: `openBuffer`, the only place that opens the database, sets pragmas and migrates.
 * - ring-buffer.ts: `RingBuffer`, the ring itself: ingest (append), read, settle (advance a sink's
 *   cursor), prune and the ring bound.
 * - status.ts: read-only status queries (`ferry status`, the API, metrics, the demo).
 * - dead-letters.ts: listing and requeueing dead letters (`ferry dlq`).
 * - types.ts: what goes in (ingest items) and comes out (`Stored` rows, a sink's `Settlement`).
 */
export { openBuffer, type OpenResult, type SyncMode } from './open.js'
export { RingBuffer, receiveTimeSearch, LIVE_READING } from './ring-buffer.js'
export { queryStatus, readingCounts, type BufferStatus, type LiveCounts, type SinkBacklog } from './status.js'
export { listDeadLetters, requeueDeadLetters, type DeadLetter, type RequeueResult, type Revalidate } from './dead-letters.js'
export type { BufferLimits, DeadIn, EventIn, IngestItem, IngestOutcome, ReadingIn, Settlement, Stored } from './types.js'
