import type { Server as TlsServer, TLSSocket } from 'node:tls'
import * as x509 from '@peculiar/x509'
import type { Logger } from '../../../common/src/logger.js'

/** A certificate serial as both OpenSSL (upper case) and @peculiar/x509 (may keep a leading 00) print it. */
export function normalSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '')
}

/** What a CRL revokes: serial (normalSerial) to the issuer names (RFC 4514 text) that revoked it. */
export type Revoked = Map<string, Set<string>>

/**
 * The certificates a PEM CRL file revokes (every `X509 CRL` block, so a bundle works too). Throws when
 * the text holds no CRL or one that does not parse. The signature is not checked here: the TLS layer
 * loads the same file and refuses every client if it does not verify, and this list is only ever
 * used to close connections, never to admit one.
 */
export function readRevoked(pem: string | Buffer): Revoked {
  const blocks = pem.toString('utf8').match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g)
  if (!blocks) throw new Error('no "BEGIN X509 CRL" block')
  const revoked: Revoked = new Map()
  for (const block of blocks) {
    const crl = new x509.X509Crl(block)
    const issuer = crl.issuerName.toString()
    for (const e of crl.entries) {
      const serial = normalSerial(e.serialNumber)
      revoked.set(serial, (revoked.get(serial) ?? new Set<string>()).add(issuer))
    }
  }
  return revoked
}

/**
 * Closes open TLS connections whose client certificate has been revoked. OpenSSL checks the CRL only
 * during the handshake, so a new CRL (setSecureContext) refuses new connections but leaves a device's
 * keep-alive connection, and a download in progress on it, working for as long as the device keeps
 * it busy (issue 19: 16 requests over 64 s after `ferry pki revoke`, all answered). This keeps the set
 * of open connections and, whenever the revoked serials change, destroys the ones they name.
 *
 * A connection whose handshake finished under the previous context after the sweep is checked as it
 * arrives, so there is no window between the sweep and the new context.
 */
export class RevokedConnectionCloser {
  private revoked: Revoked = new Map()
  private readonly open = new Set<TLSSocket>()

  constructor(private readonly log: Logger) {}

  /** Starts tracking the server's connections; call before it listens. */
  attach(server: TlsServer): void {
    server.on('secureConnection', (socket: TLSSocket) => {
      if (this.closeIfRevoked(socket)) return
      this.open.add(socket)
      socket.once('close', () => this.open.delete(socket))
    })
  }

  /** Replaces the revoked serials and closes every open connection they name; returns how many. */
  update(revoked: Revoked): number {
    this.revoked = revoked
    let closed = 0
    for (const socket of this.open) if (this.closeIfRevoked(socket)) closed++
    return closed
  }

  /**
   * Closes every open connection: the fallback when the new CRL cannot be read here although the TLS
   * layer took it. Each device reconnects and is checked against the new CRL in its handshake.
   */
  closeAll(): number {
    const n = this.open.size
    for (const socket of this.open) socket.destroy()
    this.open.clear()
    return n
  }

  private closeIfRevoked(socket: TLSSocket): boolean {
    if (this.revoked.size === 0 || socket.destroyed) return false
    const cert = socket.getPeerCertificate()
    const issuers = cert?.serialNumber ? this.revoked.get(normalSerial(cert.serialNumber)) : undefined
    // A serial is unique per issuer only (FERRY_OTA_CA may hold more than one CA), so the issuer must match too.
    if (!issuers || !issuers.has(new x509.X509Certificate(cert.raw).issuerName.toString())) return false
    this.log.warn({ device: cert.subject?.CN, serial: normalSerial(cert.serialNumber), remote: socket.remoteAddress }, 'closed an open connection: its client certificate is now revoked')
    socket.destroy()
    this.open.delete(socket)
    return true
  }
}
