import { readFileSync } from 'node:fs'
import { isIPv4, isIPv6 } from 'node:net'
import { createSecureContext } from 'node:tls'
import { ConfigError } from '../../../common/src/errors.js'

/** The HTTPS material of the API, read from the files the settings name. */
export interface ApiTls {
  cert: Buffer
  key: Buffer
  /** Set: a client certificate this CA signed, with a CN in `clientNames`, stands in for the token. */
  clientCa?: Buffer
  clientNames: string[]
  crl?: Buffer
}

/**
 * How the API is reached: HTTPS, or plain HTTP on loopback, or plain HTTP beyond loopback because
 * the operator said FERRY_HTTP_INSECURE=true (`exposed`; main.ts warns on every start).
 */
export type ApiTransport = { scheme: 'https'; tls: ApiTls } | { scheme: 'http'; exposed: boolean }

type TransportSettings = Partial<
  Record<'FERRY_HTTP_HOST' | 'FERRY_HTTP_TLS_CERT' | 'FERRY_HTTP_TLS_KEY' | 'FERRY_HTTP_TLS_CLIENT_CA' | 'FERRY_HTTP_TLS_CLIENT_NAMES' | 'FERRY_HTTP_TLS_CRL', string> & { FERRY_HTTP_INSECURE: boolean }
>

/** The default of FERRY_HTTP_HOST (config.ts): this host only. */
const DEFAULT_HOST = '127.0.0.1'

/**
 * True for an address only this host can reach: 127.0.0.0/8, ::1 (also IPv4-mapped) and the name
 * `localhost`. Any other name counts as reachable from the network: what it resolves to can change.
 */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase()
  if (h === 'localhost') return true
  if (isIPv4(h)) return h.startsWith('127.')
  if (isIPv6(h)) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h)
  return false
}

/**
 * Decides HTTPS or HTTP from the settings and reads the TLS files. Refuses (ConfigError, saying
 * what to set) half a pair of certificate and key, a key that does not belong to the certificate,
 * client-certificate settings without HTTPS or without the names they admit, and plain HTTP on an
 * address other than loopback without FERRY_HTTP_INSECURE=true: there the bearer token would cross
 * the network in clear (issue 19).
 */
export function apiTransport(c: TransportSettings, readFile: (path: string) => Buffer = (p) => readFileSync(p)): ApiTransport {
  const host = c.FERRY_HTTP_HOST ?? DEFAULT_HOST
  const read = (name: keyof TransportSettings, what: string): Buffer => {
    const path = c[name] as string
    try {
      return readFile(path)
    } catch (err) {
      throw new ConfigError(`${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); point it at ${what} from "ferry pki".`, { cause: err })
    }
  }
  if (Boolean(c.FERRY_HTTP_TLS_CERT) !== Boolean(c.FERRY_HTTP_TLS_KEY)) {
    const [set, missing] = c.FERRY_HTTP_TLS_CERT ? ['FERRY_HTTP_TLS_CERT', 'FERRY_HTTP_TLS_KEY'] : ['FERRY_HTTP_TLS_KEY', 'FERRY_HTTP_TLS_CERT']
    throw new ConfigError(`${set} is set but ${missing} is not; HTTPS needs both (e.g. <pki>/server.crt and <pki>/server.key), or unset ${set} for plain HTTP on loopback.`)
  }
  const clientNames = (c.FERRY_HTTP_TLS_CLIENT_NAMES ?? '').split(',').map((n) => n.trim()).filter(Boolean)
  if (!c.FERRY_HTTP_TLS_CERT) {
    const clientSetting = (['FERRY_HTTP_TLS_CLIENT_CA', 'FERRY_HTTP_TLS_CLIENT_NAMES', 'FERRY_HTTP_TLS_CRL'] as const).find((n) => c[n])
    if (clientSetting) throw new ConfigError(`${clientSetting} is set, but client certificates need HTTPS; set FERRY_HTTP_TLS_CERT and FERRY_HTTP_TLS_KEY too, or unset ${clientSetting}.`)
    if (isLoopback(host)) return { scheme: 'http', exposed: false }
    if (c.FERRY_HTTP_INSECURE) return { scheme: 'http', exposed: true }
    throw new ConfigError(
      `FERRY_HTTP_HOST=${host} serves the API beyond this host over plain HTTP, so the API token and the readings would cross the network in clear; the gateway refuses to start. ` +
        'Set FERRY_HTTP_TLS_CERT and FERRY_HTTP_TLS_KEY (e.g. <pki>/server.crt and <pki>/server.key from "ferry pki server --host <this host\'s name>") for HTTPS, ' +
        'or FERRY_HTTP_HOST=127.0.0.1 to keep it on this host, or FERRY_HTTP_INSECURE=true if a TLS proxy or a trusted network protects it.',
    )
  }
  if (c.FERRY_HTTP_TLS_CLIENT_CA && clientNames.length === 0) {
    throw new ConfigError('FERRY_HTTP_TLS_CLIENT_CA is set but FERRY_HTTP_TLS_CLIENT_NAMES is not: the CA also signs every device, so name the client certificates (their CN) that may act without the token, e.g. FERRY_HTTP_TLS_CLIENT_NAMES=homeassistant.')
  }
  for (const n of ['FERRY_HTTP_TLS_CLIENT_NAMES', 'FERRY_HTTP_TLS_CRL'] as const) {
    if (c[n] && !c.FERRY_HTTP_TLS_CLIENT_CA) throw new ConfigError(`${n} is set but FERRY_HTTP_TLS_CLIENT_CA is not; set it to the CA that signed the client certificates (e.g. <pki>/ca.crt), or unset ${n}.`)
  }
  const tls: ApiTls = { cert: read('FERRY_HTTP_TLS_CERT', 'the server certificate (server.crt)'), key: read('FERRY_HTTP_TLS_KEY', 'its key (server.key)'), clientNames }
  if (c.FERRY_HTTP_TLS_CLIENT_CA) tls.clientCa = read('FERRY_HTTP_TLS_CLIENT_CA', 'the CA certificate (ca.crt)')
  if (c.FERRY_HTTP_TLS_CRL) tls.crl = read('FERRY_HTTP_TLS_CRL', 'the revocation list (crl.pem)')
  try {
    // What the HTTPS server will do at listen time, done now: a key that does not match, or a file
    // that is not PEM, stops the start with the settings named instead of failing later.
    createSecureContext({ cert: tls.cert, key: tls.key, ...(tls.clientCa ? { ca: tls.clientCa } : {}), ...(tls.crl ? { crl: tls.crl } : {}) })
  } catch (err) {
    throw new ConfigError(
      `FERRY_HTTP_TLS_CERT=${c.FERRY_HTTP_TLS_CERT} and FERRY_HTTP_TLS_KEY=${c.FERRY_HTTP_TLS_KEY}${tls.clientCa ? ', FERRY_HTTP_TLS_CLIENT_CA' : ''}${tls.crl ? ', FERRY_HTTP_TLS_CRL' : ''} cannot be used (${(err as Error).message}); ` +
        'use a certificate and the key it was issued with (server.crt and server.key from the same "ferry pki server"), all PEM.',
      { cause: err },
    )
  }
  return { scheme: 'https', tls }
}
