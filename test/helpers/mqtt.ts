import mqtt, { type MqttClient, type IClientOptions } from 'mqtt'

interface T {
  teardown(fn: () => unknown): void
}

/**
 * Connects once (no reconnect) and resolves with the client, or rejects with the first error or a
 * close before CONNACK. Refusal tests assert on the rejection, so they fail if the broker accepts.
 */
export async function connectOnce(t: T, url: string, opts: IClientOptions): Promise<MqttClient> {
  const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...opts })
  t.teardown(() => new Promise<void>((r) => client.end(true, {}, () => r())))
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client))
    client.once('error', (err) => reject(err))
    client.once('close', () => reject(new Error('connection closed before CONNACK')))
  })
}

/** Resolves with the next `count` messages the client receives. */
export function collect(client: MqttClient, count: number): Promise<Array<{ topic: string; payload: string; retain: boolean }>> {
  const got: Array<{ topic: string; payload: string; retain: boolean }> = []
  return new Promise((resolve) => {
    const on = (topic: string, payload: Buffer, packet: { retain?: boolean }) => {
      got.push({ topic, payload: payload.toString(), retain: Boolean(packet.retain) })
      if (got.length >= count) {
        client.off('message', on)
        resolve(got)
      }
    }
    client.on('message', on)
  })
}
