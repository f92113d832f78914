import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { DiscardCount, IngestOutcome, Runway, SinkOutlook } from './buffer/index.js'
import type { DrainEvent } from './drain/drainer.js'
import { PAUSE_REASONS, type PauseReason } from './ingest/pause.js'

/**
 * Prometheus metrics (prom-client): one registry per gateway so tests can run several in a process.
 * Names follow Prometheus conventions: `ferry_<noun>_<unit>_total` for counters.
 */
export function createMetrics() {
  const registry = new Registry()
  const m = {
    registry,
    messagesIn: new Counter({ name: 'ferry_messages_received_total', help: 'MQTT messages handed to the gateway, by topic kind.', labelNames: ['kind'] as const, registers: [registry] }),
    messagesAcked: new Counter({ name: 'ferry_messages_acked_total', help: 'Messages committed to the buffer and acknowledged to the broker.', registers: [registry] }),
    duplicates: new Counter({ name: 'ferry_messages_duplicate_total', help: 'Redelivered readings recognised by (device, boot, seq) and stored once.', registers: [registry] }),
    dropped: new Counter({ name: 'ferry_buffer_dropped_total', help: 'Undelivered readings dropped because the buffer was full.', registers: [registry] }),
    deadLettered: new Counter({ name: 'ferry_dead_letters_total', help: 'Messages or readings dead-lettered, by source (those over their device\'s share are counted, not stored: ferry_dead_letters_discarded_total).', labelNames: ['source'] as const, registers: [registry] }),
    deadLettersDiscarded: new Counter({ name: 'ferry_dead_letters_discarded_total', help: 'Dead letters not kept, by device and reason: over-share (the device held its FERRY_DEADLETTER_DEVICE_SHARE; never stored) or evicted (deleted, oldest first, for FERRY_DEADLETTER_MAX_ROWS / _BYTES).', labelNames: ['device', 'reason'] as const, registers: [registry] }),
    commitSeconds: new Histogram({
      name: 'ferry_buffer_commit_seconds',
      help: 'Time to commit one group of messages to SQLite.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    confirmations: new Counter({ name: 'ferry_confirmations_sent_total', help: 'Commit confirmations published to devices on sensors/<id>/ack (one per device and boot per commit).', registers: [registry] }),
    commitFailures: new Counter({ name: 'ferry_buffer_commit_failures_total', help: 'Group commits that failed (e.g. disk full); nothing was acknowledged.', registers: [registry] }),
    sinkSent: new Counter({ name: 'ferry_sink_sent_total', help: 'Readings accepted by a sink.', labelNames: ['sink'] as const, registers: [registry] }),
    sinkErrors: new Counter({ name: 'ferry_sink_errors_total', help: 'Failed sink writes by error class.', labelNames: ['sink', 'class'] as const, registers: [registry] }),
    sinkBacklog: new Gauge({ name: 'ferry_sink_backlog_rows', help: 'Readings not yet delivered to a sink.', labelNames: ['sink'] as const, registers: [registry] }),
    sinkOldestAge: new Gauge({ name: 'ferry_sink_oldest_unsent_age_seconds', help: 'Age of the oldest reading not yet delivered to a sink.', labelNames: ['sink'] as const, registers: [registry] }),
    sinkUp: new Gauge({ name: 'ferry_sink_up', help: '1 while a sink delivers or idles, 0 while it retries, has failed or is stopped (auth).', labelNames: ['sink'] as const, registers: [registry] }),
    drainerFailed: new Gauge({ name: 'ferry_drainer_failed', help: "1 while a sink's drainer has failed: its loop threw outside the sink (e.g. the buffer database locked by another process) and starts again after a back-off; 0 otherwise.", labelNames: ['sink'] as const, registers: [registry] }),
    bufferRows: new Gauge({ name: 'ferry_buffer_rows', help: 'Readings held in the buffer.', registers: [registry] }),
    brokerConnected: new Gauge({ name: 'ferry_broker_connected', help: '1 while the MQTT session is up.', registers: [registry] }),
    brokerDropped: new Gauge({ name: 'ferry_broker_dropped_messages', help: "Mosquitto's $SYS/broker/publish/messages/dropped.", registers: [registry] }),
    ingestPaused: new Gauge({ name: 'ferry_ingest_paused', help: '1 while ingest is paused (disconnected from the broker, nothing acknowledged), by reason: disk-full or backpressure (FERRY_BUFFER_ON_FULL).', labelNames: ['reason'] as const, registers: [registry] }),
    expired: new Counter({ name: 'ferry_buffer_expired_total', help: 'Undelivered readings removed for being older than FERRY_BUFFER_MAX_AGE, by device.', labelNames: ['device'] as const, registers: [registry] }),
    ingestRate: new Gauge({ name: 'ferry_buffer_ingest_readings_per_second', help: 'Readings committed per second, recently (EWMA, 5 min time constant).', registers: [registry] }),
    runway: new Gauge({ name: 'ferry_buffer_runway_seconds', help: 'How long the buffer can absorb the current ingest rate before it must drop the oldest undelivered readings (or, with backpressure, pause ingest); +Inf when nothing comes in, 0 while paused by backpressure.', registers: [registry] }),
    drainEta: new Gauge({ name: 'ferry_sink_drain_eta_seconds', help: "Estimated time until a sink's backlog is delivered, at its send rate minus the ingest rate; 0 with no backlog, +Inf while it is not shrinking (sink failing or too slow).", labelNames: ['sink'] as const, registers: [registry] }),
  }
  for (const reason of PAUSE_REASONS) m.ingestPaused.set({ reason }, 0)
  processMemory(registry)
  return m
}

/**
 * The process's memory, read at each scrape, so a leak shows on a dashboard (bench/soak.bench.ts
 * reads them too). The names and meanings of prom-client's default metrics, of which only these are
 * registered (the defaults also start an event-loop monitor per registry).
 */
function processMemory(registry: Registry): void {
  const gauge = (name: string, help: string, read: (m: NodeJS.MemoryUsage) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(process.memoryUsage()))
      },
    })
  gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', (m) => m.rss)
  gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', (m) => m.heapUsed)
  gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', (m) => m.heapTotal)
  gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', (m) => m.external)
}

export type Metrics = ReturnType<typeof createMetrics>

/** One group commit: messages by kind since the last commit, and what the buffer did with them. */
export function recordCommit(m: Metrics, receivedByKind: ReadonlyMap<string, number>, outcome: IngestOutcome, items: number, ms: number): void {
  for (const [kind, count] of receivedByKind) m.messagesIn.inc({ kind }, count)
  m.commitSeconds.observe(ms / 1000)
  m.messagesAcked.inc(items)
  if (outcome.duplicates) m.duplicates.inc(outcome.duplicates)
  if (outcome.dead) m.deadLettered.inc({ source: 'ingest' }, outcome.dead)
  if (outcome.dropped) m.dropped.inc(outcome.dropped)
}

/** A drainer's settled batch, failed write or state change. */
export function recordDrainEvent(m: Metrics, e: DrainEvent): void {
  if (e.type === 'settled') {
    m.sinkSent.inc({ sink: e.sink }, e.accepted)
    if (e.rejected) m.deadLettered.inc({ source: `sink:${e.sink}` }, e.rejected)
  } else if (e.type === 'error') {
    m.sinkErrors.inc({ sink: e.sink, class: e.errorClass })
  } else {
    m.sinkUp.set({ sink: e.sink }, e.state === 'idle' || e.state === 'sending' ? 1 : 0)
    m.drainerFailed.set({ sink: e.sink }, e.state === 'failed' ? 1 : 0)
  }
}

/** The gauges that come from a status query (refreshed whenever the status is read, e.g. by a scrape). */
export function recordStatus(m: Metrics, s: { buffered: { rows: number }; sinks: readonly SinkOutlook[]; runway: Runway | null }): void {
  m.bufferRows.set(s.buffered.rows)
  for (const sink of s.sinks) {
    m.sinkBacklog.set({ sink: sink.name }, sink.rows)
    m.sinkOldestAge.set({ sink: sink.name }, sink.oldestAgeMs === null ? 0 : sink.oldestAgeMs / 1000)
    m.drainEta.set({ sink: sink.name }, sink.drainEtaS ?? Infinity)
  }
  if (s.runway) {
    m.ingestRate.set(s.runway.ingestPerS)
    m.runway.set(s.runway.seconds ?? Infinity)
  }
}

/** Ingest paused for `reason`, or running (null). */
export function recordPause(m: Metrics, reason: PauseReason | null): void {
  for (const r of PAUSE_REASONS) m.ingestPaused.set({ reason: r }, r === reason ? 1 : 0)
}

/** Dead letters not kept, per device and reason (`RingBuffer.onDeadLettersDiscarded`). */
export function recordDeadLetterDiscards(m: Metrics, discards: readonly DiscardCount[]): void {
  for (const d of discards) m.deadLettersDiscarded.inc({ device: d.device, reason: d.reason }, d.count)
}

/** Readings expired by FERRY_BUFFER_MAX_AGE, per device (`RingBuffer.expire`). */
export function recordExpired(m: Metrics, byDevice: Readonly<Record<string, number>>): void {
  for (const [device, n] of Object.entries(byDevice)) m.expired.inc({ device }, n)
}
