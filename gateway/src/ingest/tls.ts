import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ConfigError } from '../../../common/src/errors.js'
import { parseGatewayCn } from '../../../common/src/ids.js'
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

/**
 * A replica's number from its client certificate (CN=ferry-gateway → 0, ferry-gateway-<n> → n): the
 * broker knows a client by its CN, so it is the one identity every replica surely has and no two
 * share. Point times depend on it (buffer/ring-buffer.ts `sharedPointTime`).
 */
export function replicaNumber(cert: Buffer | undefined, certPath: string): number {
  let cn: string | undefined
  try {
    cn = cert ? /(?:^|\n)CN=([^\n]*)/.exec(new X509Certificate(cert).subject)?.[1] : undefined
  } catch (err) {
    throw new ConfigError(`FERRY_MQTT_CERT: ${certPath} is not a PEM certificate (${(err as Error).message}); point it at the replica certificate from "ferry pki gateway <n>".`, { cause: err })
  }
  const n = cn === undefined ? null : parseGatewayCn(cn)
  if (n === null) {
    throw new ConfigError(
      `FERRY_MQTT_SHARE_GROUP needs each replica to use its own gateway certificate (CN=ferry-gateway-<n>, n = 1…9), but FERRY_MQTT_CERT (${certPath}) has CN=${JSON.stringify(cn ?? '')}: issue one with "ferry pki gateway <n> --dir <pki dir>" (docs/scale-out.md).`,
    )
  }
  return n
}
