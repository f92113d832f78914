import { readFileSync } from 'node:fs'
import { ConfigError } from '../../../common/src/errors.js'
import type { Logger } from '../../../common/src/logger.js'
import type { SubscriberOptions } from './subscriber.js'

type TlsNames = 'FERRY_MQTT_CA' | 'FERRY_MQTT_CERT' | 'FERRY_MQTT_KEY'

/**
 * Reads the gateway's client certificate, key and CA. Called before the buffer is opened: a bad path
 * is a configuration error that names the setting, not a buffer problem.
 */
export function readMqttTls(
  config: Record<TlsNames, string> & { FERRY_MQTT_TLS_INSECURE: boolean },
  log: Logger,
  readFile: (path: string) => Buffer = (p) => readFileSync(p),
): SubscriberOptions['tls'] {
  const read = (name: TlsNames) => {
    try {
      return readFile(config[name])
    } catch (err) {
      throw new ConfigError(`${name}: cannot read ${config[name]} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); point it at the PEM file from "ferry pki" (ca.crt, gateway.crt, gateway.key).`, { cause: err })
    }
  }
  const tls = { ca: read('FERRY_MQTT_CA'), cert: read('FERRY_MQTT_CERT'), key: read('FERRY_MQTT_KEY'), rejectUnauthorized: !config.FERRY_MQTT_TLS_INSECURE }
  if (config.FERRY_MQTT_TLS_INSECURE) log.warn('FERRY_MQTT_TLS_INSECURE=true: the broker certificate is NOT verified. Development only.')
  return tls
}
