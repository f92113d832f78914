import { FerryError } from './errors.js'

/** Device ids as fixed by the design: they become certificate CNs, MQTT topic levels and file names. */
export const DEVICE_ID_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/

/** The gateway's own certificate CN; never a device. */
export const GATEWAY_CN = 'ferry-gateway'

/**
 * Replicas are numbered 1…GATEWAY_REPLICA_MAX. Mosquitto's ACL file has no wildcard users, so the
 * shipped `mosquitto/acl` carries one block per replica; nine keeps that file readable.
 */
export const GATEWAY_REPLICA_MAX = 9

/** True when `n` is a replica number the shipped ACLs know (an integer 1…9). */
export function isGatewayReplicaNumber(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= GATEWAY_REPLICA_MAX
}

/**
 * The certificate CN of gateway replica `n`: `ferry-gateway-<n>`. Callers validate user input first
 * (`ferry pki gateway` answers a bad number with a usage error); a bad `n` here is a bug.
 */
export function gatewayReplicaCn(n: number): string {
  if (!isGatewayReplicaNumber(n)) throw new RangeError(`gateway replica number must be an integer 1…${GATEWAY_REPLICA_MAX}, got ${n}`)
  return `${GATEWAY_CN}-${n}`
}

/** Which gateway a certificate CN names: 0 for `ferry-gateway`, n for `ferry-gateway-<n>` (1…9), null for anything else. */
export function parseGatewayCn(cn: string): number | null {
  if (cn === GATEWAY_CN) return 0
  const m = /^ferry-gateway-([1-9])$/.exec(cn)
  return m ? Number(m[1]) : null
}

/**
 * True when `id` is an acceptable device id: the pattern, and not in the gateway's reserved name space.
 * Every id beginning with `ferry-gateway` is reserved (not only the ten gateway CNs), so that adding
 * replicas can never collide with a device provisioned earlier, and a look-alike such as
 * `ferry-gateway-10` or `ferry-gateways` cannot pass for a gateway in logs.
 */
export function isDeviceId(id: unknown): id is string {
  return typeof id === 'string' && DEVICE_ID_RE.test(id) && !id.startsWith(GATEWAY_CN)
}

/** Throws a FerryError that says what a device id must look like. */
export function assertDeviceId(id: unknown): asserts id is string {
  if (typeof id === 'string' && id.startsWith(GATEWAY_CN)) {
    throw new FerryError('FERRY_ERR_DEVICE_ID', `${JSON.stringify(id)}: ids beginning with "${GATEWAY_CN}" are reserved for the gateway and its replicas; choose another device id.`)
  }
  if (!isDeviceId(id)) {
    throw new FerryError(
      'FERRY_ERR_DEVICE_ID',
      `invalid device id ${JSON.stringify(id)}: use 1-63 characters of a-z, 0-9, "_" or "-", starting with a letter or digit (^[a-z0-9][a-z0-9_-]{0,62}$).`,
    )
  }
}
