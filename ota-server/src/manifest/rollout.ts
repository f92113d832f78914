import { createHash } from 'node:crypto'
import type { Manifest } from './envelope.js'

/**
 * The device's bucket 0..99 for a deployment: the first 4 bytes of sha256("<deployment>:<device id>")
 * as a big-endian integer, mod 100. Stable across runs and machines; salted by the deployment so the
 * same devices are not always first. (The 2^32 mod 100 bias is below 1e-7 and does not matter.)
 */
export function rolloutBucket(deployment: string, deviceId: string): number {
  const h = createHash('sha256').update(`${deployment}:${deviceId}`, 'utf8').digest()
  return h.readUInt32BE(0) % 100
}

/**
 * True when the manifest's rollout includes the device: no rollout means everyone; a device list
 * means exactly those; a percentage p means bucket < p, so raising p only ever adds devices as long
 * as the deployment id stays the same.
 */
export function inRollout(m: Pick<Manifest, 'deployment' | 'rollout'>, deviceId: string): boolean {
  const r = m.rollout
  if (!r) return true
  if ('devices' in r) return r.devices.includes(deviceId)
  return rolloutBucket(m.deployment, deviceId) < r.percent
}
