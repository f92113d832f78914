import { join } from 'node:path'
import { startBroker, type RunningBroker } from '../../common/src/broker/broker.js'
import { freePort } from './ports.js'
import { makePki, type TestPki } from './pki.js'
import { tempDir } from './tmp.js'

interface T {
  teardown(fn: () => unknown): void
}

export interface TestBroker extends RunningBroker {
  pki: TestPki
  url: string
  dataDir: string
  /** Starts the broker again on the same port and data (after stop or kill). */
  restart(): Promise<TestBroker>
}

/**
 * A real mosquitto on a free loopback port, configured from the repo's own mosquitto/ files with a
 * temp PKI (or the one given). Stopped (SIGKILL if it does not exit) when the test ends.
 */
export async function startTestBroker(t: T, opts: { pki?: TestPki; devices?: string[]; port?: number; dataDir?: string } = {}): Promise<TestBroker> {
  const pki = opts.pki ?? (await makePki(t, opts.devices))
  const dataDir = opts.dataDir ?? join(tempDir(t, 'ferry-broker-'), 'data')
  const port = opts.port ?? (await freePort())
  const b = await startBroker({ pkiDir: pki.dir, dataDir, port, bind: '127.0.0.1' })
  t.teardown(async () => {
    const killer = setTimeout(() => b.process.kill('SIGKILL'), 3000)
    await b.stop()
    clearTimeout(killer)
  })
  const tb: TestBroker = Object.assign(b, {
    pki,
    url: `mqtts://localhost:${port}`,
    dataDir,
    restart: () => startTestBroker(t, { pki, port, dataDir }),
  })
  return tb
}
