import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import type { TestBroker } from './mosquitto.js'
import { start, type Proc } from './process.js'

interface T {
  teardown(fn: () => unknown): void
}

const ROOT = join(import.meta.dirname, '..', '..')

/** The FERRY_* environment for a gateway talking to a test broker, with its buffer in `dir`. */
export function gatewayEnv(broker: TestBroker, dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    FERRY_MQTT_URL: broker.url,
    FERRY_MQTT_CA: broker.pki.files.caCert,
    FERRY_MQTT_CERT: broker.pki.files.gatewayCert,
    FERRY_MQTT_KEY: broker.pki.files.gatewayKey,
    FERRY_DB: join(dir, 'buffer.db'),
    FERRY_SINKS: 'none',
    FERRY_HTTP_PORT: '0',
    FERRY_LOG_LEVEL: 'info',
    FERRY_ENV_FILE: join(dir, 'no.env'),
    ...extra,
  }
}

export type FerryProcess = Proc

/** Runs `ferry <args>` from the TypeScript sources in a child process; stopped at teardown. */
export function spawnFerry(t: T, args: string[], env: Record<string, string>): FerryProcess {
  return start(t, process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  })
}

/** A device client (mutual TLS as `device`), ended at teardown. */
export async function deviceClient(t: T, broker: TestBroker, device: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(broker.url, { ...broker.pki.tls(device), clientId: device, reconnectPeriod: 0 })
  t.teardown(() => c.endAsync(true))
  return c
}

/** Publishes telemetry seq from..to (inclusive) at QoS 1 with up to `window` in flight; resolves when all are PUBACKed by the broker. */
export async function publishReadings(client: MqttClient, device: string, from: number, to: number, opts: { boot?: number; window?: number } = {}): Promise<void> {
  const window = opts.window ?? 50
  let next = from
  const worker = async () => {
    while (next <= to) {
      const seq = next++
      const payload = JSON.stringify({ seq, boot: opts.boot ?? 1, pot: seq % 4096, switch: seq % 2, led: seq % 101 })
      await client.publishAsync(`sensors/${device}/telemetry`, payload, { qos: 1 })
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
}
