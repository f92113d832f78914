import { readFileSync, unwatchFile, watchFile } from 'node:fs'
import type { Server as HttpsServer } from 'node:https'
import { randomBytes, type KeyObject } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { ConfigError } from '../../common/src/errors.js'
import { silentLogger, type Logger } from '../../common/src/logger.js'
import { buildApp } from './app.js'
import type { OtaServerConfig } from './config.js'
import { splitPemBundle, toPublicKey } from './manifest/keys.js'
import { readRevoked, RevokedConnectionCloser } from './http/revocation.js'

/** The TLS material named by the config, read now. Throws ConfigError naming the variable on a bad file. */
export function readTlsFiles(c: OtaServerConfig) {
  const read = (name: keyof OtaServerConfig, path: string) => {
    try {
      return readFileSync(path)
    } catch (err) {
      throw new ConfigError(`${name}=${path} cannot be read: ${(err as Error).message}`, { cause: err })
    }
  }
  return {
    cert: read('FERRY_OTA_CERT', c.FERRY_OTA_CERT),
    key: read('FERRY_OTA_KEY', c.FERRY_OTA_KEY),
    ca: read('FERRY_OTA_CA', c.FERRY_OTA_CA),
    ...(c.FERRY_OTA_CRL ? { crl: read('FERRY_OTA_CRL', c.FERRY_OTA_CRL) } : {}),
  }
}

/** The release public keys from FERRY_OTA_PUB (a PEM bundle), or undefined when unset. */
export function readTrustedKeys(c: OtaServerConfig): KeyObject[] | undefined {
  if (!c.FERRY_OTA_PUB) return undefined
  let text: string
  try {
    text = readFileSync(c.FERRY_OTA_PUB, 'utf8')
  } catch (err) {
    throw new ConfigError(`FERRY_OTA_PUB=${c.FERRY_OTA_PUB} cannot be read: ${(err as Error).message}`, { cause: err })
  }
  const pems = splitPemBundle(text)
  if (!pems.length) throw new ConfigError(`FERRY_OTA_PUB=${c.FERRY_OTA_PUB} holds no "BEGIN PUBLIC KEY" block; point it at release.pub from "ferry ota keygen"`)
  try {
    return pems.map((p) => toPublicKey(p))
  } catch (err) {
    throw new ConfigError(`FERRY_OTA_PUB=${c.FERRY_OTA_PUB}: ${(err as Error).message}`, { cause: err })
  }
}

/** The revoked certificates of FERRY_OTA_CRL; throws ConfigError naming it when they cannot be read. */
function readCrl(path: string, pem: Buffer) {
  try {
    return readRevoked(pem)
  } catch (err) {
    throw new ConfigError(`FERRY_OTA_CRL=${path} is not a readable CRL (${(err as Error).message}); point it at <pki>/crl.pem or run "ferry pki crl"`, { cause: err })
  }
}

export interface RunningOtaServer {
  app: FastifyInstance
  /** e.g. https://127.0.0.1:8443 */
  url: string
  port: number
  /**
   * Re-reads certificate, key, CA and CRL; new connections use them at once, and open connections
   * whose client certificate the CRL now revokes are closed.
   */
  reloadTls(): void
  close(): Promise<void>
}

/**
 * Starts the OTA server over HTTPS with client certificates required and checked against the CA and
 * CRL by the TLS layer. The CRL file is watched and re-read when it changes (and on reloadTls, which
 * the CLI calls on SIGHUP), so `ferry pki revoke` takes effect without a restart: new handshakes are
 * checked against it, and connections already open with a now revoked certificate are closed.
 */
export async function startOtaServer(c: OtaServerConfig, opts: { log?: Logger; now?: () => number } = {}): Promise<RunningOtaServer> {
  const log = opts.log ?? silentLogger
  const tls = readTlsFiles(c)
  const revoked = tls.crl ? readCrl(c.FERRY_OTA_CRL!, tls.crl) : new Map()
  if (!c.FERRY_OTA_CRL) log.warn('FERRY_OTA_CRL is not set: revoked device certificates are still accepted; point it at <pki>/crl.pem')
  const trustedKeys = readTrustedKeys(c)
  if (!trustedKeys) log.warn('FERRY_OTA_PUB is not set: envelopes are served unchecked (devices still verify them); set it to release.pub')
  const app = await buildApp({
    dir: c.FERRY_OTA_DIR,
    https: tls,
    trustedKeys,
    log,
    now: opts.now,
    apiToken: c.FERRY_API_TOKEN,
    rateLimit: { max: c.FERRY_OTA_RATE_LIMIT_MAX, downloadMax: c.FERRY_OTA_DOWNLOAD_RATE_LIMIT_MAX, windowMs: c.FERRY_OTA_RATE_LIMIT_WINDOW_MS },
    maxDownloads: c.FERRY_OTA_MAX_DOWNLOADS,
    maxDownloadsPerDevice: c.FERRY_OTA_MAX_DOWNLOADS_PER_DEVICE,
    retryAfterS: c.FERRY_OTA_RETRY_AFTER_S,
  })
  const closer = new RevokedConnectionCloser(log)
  closer.update(revoked)
  closer.attach(app.server as unknown as HttpsServer)
  await app.listen({ port: c.FERRY_OTA_PORT, host: c.FERRY_OTA_HOST })
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr ? addr.port : c.FERRY_OTA_PORT
  const reloadTls = () => {
    let next: ReturnType<typeof readTlsFiles>
    try {
      next = readTlsFiles(c)
      // New ticket keys: a session ticket issued before the reload would let a now revoked device
      // resume without a handshake, and so without a CRL check.
      ;(app.server as unknown as HttpsServer).setSecureContext({ minVersion: 'TLSv1.2', ...next, ticketKeys: randomBytes(48) })
    } catch (err) {
      // Keep serving with the previous context: a half-written file must not take the server down.
      log.error({ err }, 'could not reload TLS material; still using the previous certificates and CRL')
      return
    }
    let closedConnections = 0
    try {
      closedConnections = closer.update(next.crl ? readCrl(c.FERRY_OTA_CRL!, next.crl) : new Map())
    } catch (err) {
      // The TLS layer took the file but we cannot tell whom it revokes: make everyone hand-shake again.
      closedConnections = closer.closeAll()
      log.error({ err }, 'could not list the revoked certificates in the new CRL; closed every open connection so that each is checked again')
    }
    log.info({ crl: c.FERRY_OTA_CRL, closedConnections }, 'TLS material reloaded')
  }
  if (c.FERRY_OTA_CRL) watchFile(c.FERRY_OTA_CRL, { interval: 1000 }, (cur, prev) => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino) reloadTls()
  })
  const host = c.FERRY_OTA_HOST === '0.0.0.0' || c.FERRY_OTA_HOST === '::' ? '127.0.0.1' : c.FERRY_OTA_HOST
  log.info({ port, dir: c.FERRY_OTA_DIR }, 'OTA server listening')
  return {
    app,
    port,
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    reloadTls,
    async close() {
      if (c.FERRY_OTA_CRL) unwatchFile(c.FERRY_OTA_CRL)
      await app.close()
    },
  }
}
