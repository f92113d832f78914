import type { OpenResult } from './buffer/index.js'

/** Live facts about the running gateway, for the API, metrics and logs. */
export interface GatewayState {
  startedAt: number
  brokerConnected: boolean
  /** Set while commits fail for lack of space; acknowledgements are stopped. */
  diskFull: { since: number; error: string } | null
  brokerDropped: number | null
  lastError: { code: string; message: string; at: number } | null
  recovered: { movedTo: string; error: string; at: number } | null
}

/** The state at start-up; a buffer that was corrupt and moved aside is the first thing it reports. */
export function initialState(recovered: OpenResult['recovered'], now = Date.now()): GatewayState {
  return {
    startedAt: now,
    brokerConnected: false,
    diskFull: null,
    brokerDropped: null,
    lastError: recovered ? { code: 'FERRY_ERR_BUFFER_CORRUPT', message: `buffer was corrupt (${recovered.error}); moved to ${recovered.movedTo}`, at: recovered.at } : null,
    recovered: recovered ?? null,
  }
}
