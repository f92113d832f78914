import type { OpenResult } from './buffer/index.js'
import type { IngestPause } from './ingest/pause.js'

/** Live facts about the running gateway, for the API, metrics and logs. */
export interface GatewayState {
  startedAt: number
  brokerConnected: boolean
  /**
   * Set while ingest is paused (disconnected, nothing acknowledged): commits fail for lack of space
   * (disk-full), or the buffer is full of undelivered readings (backpressure). See ingest/pause.ts.
   */
  ingestPaused: IngestPause | null
  brokerDropped: number | null
  lastError: { code: string; message: string; at: number } | null
  recovered: { movedTo: string; error: string; at: number } | null
  /**
   * Set once the background check found damage in the running buffer database (buffer-checks.ts,
   * docs/integrity.md); the next start checks the file and moves it aside.
   */
  bufferDamage: { at: number; error: string } | null
  /**
   * One of several gateways sharing a site's devices (FERRY_MQTT_SHARE_GROUP, docs/scale-out.md):
   * the group and this replica's certificate CN. Null for a single gateway.
   */
  replica: { group: string; name: string } | null
}

/** The state at start-up; a buffer that was corrupt and moved aside is the first thing it reports. */
export function initialState(recovered: OpenResult['recovered'], now = Date.now()): GatewayState {
  return {
    startedAt: now,
    brokerConnected: false,
    ingestPaused: null,
    brokerDropped: null,
    lastError: recovered ? { code: 'FERRY_ERR_BUFFER_CORRUPT', message: `buffer was corrupt (${recovered.error}); moved to ${recovered.movedTo}`, at: recovered.at } : null,
    recovered: recovered ?? null,
    bufferDamage: null,
    replica: null,
  }
}
