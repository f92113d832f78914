/**
 * The MQTT load both sides of an ingest comparison receive: one `mosquitto_pub -l` per device (a C
 * client, so the load generator takes as little of the machine's CPU as possible), each sending its
 * own file of telemetry lines at QoS 1 with a window of in-flight messages. The same files and the
 * same publishers are used for Ferry and for the baseline subscriber.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TestBroker } from '../../test/helpers/mosquitto.js'
import type { Scope } from './harness.js'
import { start } from './procs.js'

export interface Load {
  devices: string[]
  perDevice: number
  files: string[]
  /** Mean payload size in bytes (without the newline). */
  payloadBytes: number
  total: number
}

/** A realistic reading, as the firmware sends it (README.md#topics-and-payloads: seq, boot, ts, pot, switch, led). */
export function reading(seq: number, boot: number, tsMs: number): string {
  return JSON.stringify({ seq, boot, ts: tsMs, pot: (seq * 37) % 4096, switch: seq % 2, led: seq % 101 })
}

/** Writes one file of `perDevice` readings per device. */
export function prepareLoad(dir: string, devices: string[], perDevice: number, boot = 1): Load {
  let bytes = 0
  const t0 = Date.UTC(2024, 0, 1)
  const files = devices.map((d) => {
    const lines: string[] = []
    for (let seq = 1; seq <= perDevice; seq++) {
      const l = reading(seq, boot, t0 + seq * 1000)
      bytes += l.length
      lines.push(l)
    }
    const f = join(dir, `${d}.lines`)
    writeFileSync(f, lines.join('\n') + '\n')
    return f
  })
  const total = devices.length * perDevice
  return { devices, perDevice, files, payloadBytes: bytes / total, total }
}

function tlsArgs(broker: TestBroker, device: string): string[] {
  const f = broker.pki.files
  return ['-h', 'localhost', '-p', String(broker.port), '--cafile', f.caCert, '--cert', f.deviceCert(device), '--key', f.deviceKey(device), '-q', '1']
}

/** Starts every publisher at once; resolves with the time until all of them got their last PUBACK from the broker. */
export async function publishLoad(scope: Scope, broker: TestBroker, load: Load, inflight: number): Promise<number> {
  const started = performance.now()
  const pubs = load.devices.map((d, i) =>
    start(scope, 'sh', ['-c', `exec mosquitto_pub "$@" -M ${inflight} -t sensors/${d}/telemetry -l < "${load.files[i]}"`, 'sh', ...tlsArgs(broker, d)]),
  )
  const codes = await Promise.all(pubs.map((p) => p.exited))
  const bad = codes.findIndex((c) => c.code !== 0)
  if (bad >= 0) throw new Error(`mosquitto_pub for ${load.devices[bad]} failed (${JSON.stringify(codes[bad])}): ${pubs[bad]!.lines.slice(-5).join('\n')}`)
  return performance.now() - started
}

/** Publishes one message and waits for the broker's PUBACK. */
export async function publishOne(scope: Scope, broker: TestBroker, device: string, payload: string): Promise<void> {
  const p = start(scope, 'mosquitto_pub', [...tlsArgs(broker, device), '-t', `sensors/${device}/telemetry`, '-m', payload])
  const r = await p.exited
  if (r.code !== 0) throw new Error(`mosquitto_pub failed: ${p.lines.join('\n')}`)
}

/**
 * Publishes readings from `device` one at a time until `arrived()` says the receiving side has one:
 * proof that it is connected and subscribed before the timed load starts.
 */
export async function warmUp(scope: Scope, broker: TestBroker, device: string, arrived: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (let seq = 1; ; seq++) {
    await publishOne(scope, broker, device, reading(seq, 1, Date.now()))
    const until = Date.now() + 300
    while (Date.now() < until) {
      if (arrived()) return
      await new Promise((r) => setTimeout(r, 5))
    }
    if (Date.now() > deadline) throw new Error(`the receiver never got a warm-up message from ${device}`)
  }
}
