import { join } from 'node:path'
import { readFileSync } from 'node:fs'
import { initPki, issueDevice, issueServer, pkiFiles } from '../../common/src/pki/pki.js'
import { tempDir } from './tmp.js'

interface T {
  teardown(fn: () => unknown): void
}

export interface TestPki {
  dir: string
  ca: Buffer
  /** TLS options for a client with the given identity ('gateway' or a device id). */
  tls(identity: string): { ca: Buffer; cert: Buffer; key: Buffer }
  files: ReturnType<typeof pkiFiles>
}

/** A real PKI in a temp folder: CA, server cert for localhost/127.0.0.1, gateway cert, and the named devices. */
export async function makePki(t: T, devices: string[] = ['dev1', 'dev2']): Promise<TestPki> {
  const dir = join(tempDir(t, 'ferry-pki-'), 'pki')
  await initPki(dir)
  await issueServer(dir, { hosts: ['localhost'], ips: ['127.0.0.1'] })
  for (const d of devices) await issueDevice(dir, d)
  const files = pkiFiles(dir)
  const ca = readFileSync(files.caCert)
  return {
    dir,
    ca,
    files,
    tls(identity: string) {
      const [cert, key] = identity === 'gateway' ? [files.gatewayCert, files.gatewayKey] : [files.deviceCert(identity), files.deviceKey(identity)]
      return { ca, cert: readFileSync(cert), key: readFileSync(key) }
    },
  }
}
