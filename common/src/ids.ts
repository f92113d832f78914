import { FerryError } from './errors.js'

/** Device ids as fixed by the design: they become certificate CNs, MQTT topic levels and file names. */
export const DEVICE_ID_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/

/** The gateway's own certificate CN; never a device. */
export const GATEWAY_CN = 'ferry-gateway'

/** True when `id` is an acceptable device id (pattern, and not the gateway's reserved name). */
export function isDeviceId(id: unknown): id is string {
  return typeof id === 'string' && DEVICE_ID_RE.test(id) && id !== GATEWAY_CN
}

/** Throws a FerryError that says what a device id must look like. */
export function assertDeviceId(id: unknown): asserts id is string {
  if (typeof id === 'string' && id === GATEWAY_CN) {
    throw new FerryError('FERRY_ERR_DEVICE_ID', `"${GATEWAY_CN}" is reserved for the gateway; choose another device id.`)
  }
  if (!isDeviceId(id)) {
    throw new FerryError(
      'FERRY_ERR_DEVICE_ID',
      `invalid device id ${JSON.stringify(id)}: use 1-63 characters of a-z, 0-9, "_" or "-", starting with a letter or digit (^[a-z0-9][a-z0-9_-]{0,62}$).`,
    )
  }
}
