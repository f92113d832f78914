import type { IngestItem } from '../../buffer/index.js'
import { parseTopic } from '../topics.js'
import { handleTelemetry } from './telemetry.js'
import { handleEvent } from './events.js'

/**
 * One switch on the topic kind, one handler per kind (MQTT.js's handlers/index.ts shape). Never
 * throws: whatever arrives becomes a reading, an event, or a dead letter with a reason.
 */
export function toIngestItem(topic: string, payload: Buffer, receivedAt: number, maxPayloadBytes: number): IngestItem {
  try {
    const parsed = parseTopic(topic)
    if (!parsed.ok) return { type: 'dead', topic, device: parsed.device, reason: parsed.reason, payload, receivedAt }
    switch (parsed.kind) {
      case 'telemetry':
        return handleTelemetry(topic, parsed.device, payload, receivedAt, maxPayloadBytes)
      case 'status':
      case 'led_state':
      case 'ota_status':
        return handleEvent(topic, parsed.device, parsed.kind, payload, receivedAt, maxPayloadBytes)
    }
  } catch (err) {
    // Defensive: a handler bug must not lose the message or crash ingest.
    return { type: 'dead', topic, device: null, reason: `internal error while parsing: ${(err as Error).message}`, payload, receivedAt }
  }
}
