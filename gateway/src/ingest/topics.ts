import { isDeviceId } from '../../../common/src/ids.js'

/** The device topics the gateway subscribes to (QoS 1). `+` is the device id. */
export const SUBSCRIPTIONS = ['sensors/+/telemetry', 'sensors/+/status', 'sensors/+/led/state', 'sensors/+/ota/status'] as const

/** Mosquitto's count of messages it dropped (queue full); the gateway surfaces it in status. */
export const SYS_DROPPED = '$SYS/broker/publish/messages/dropped'

export type TopicKind = 'telemetry' | 'status' | 'led_state' | 'ota_status'

export type ParsedTopic =
  | { ok: true; device: string; kind: TopicKind }
  | { ok: false; device: string | null; reason: string }

const SUFFIX: Record<string, TopicKind> = { telemetry: 'telemetry', status: 'status', 'led/state': 'led_state', 'ota/status': 'ota_status' }

/** Splits `sensors/<id>/<kind>`; anything else is named precisely so the dead letter says why. */
export function parseTopic(topic: string): ParsedTopic {
  const match = /^sensors\/([^/]*)\/(.+)$/.exec(topic)
  if (!match) return { ok: false, device: null, reason: `unexpected topic ${JSON.stringify(topic.slice(0, 200))}` }
  const [, device, rest] = match as unknown as [string, string, string]
  if (!isDeviceId(device)) {
    return { ok: false, device: null, reason: `device id ${JSON.stringify(String(device).slice(0, 80))} not allowed (must match ^[a-z0-9][a-z0-9_-]{0,62}$ and not begin with ferry-gateway, reserved for the gateway and its replicas)` }
  }
  const kind = SUFFIX[rest]
  if (!kind) return { ok: false, device, reason: `unknown topic kind ${JSON.stringify(rest.slice(0, 80))}` }
  return { ok: true, device, kind }
}
