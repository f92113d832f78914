// The gateway's link to the OTA server (issue 19): ota/status events committed to the buffer reach the
// OTA server, once and in order, across a gateway restart and an OTA server outage; the rollouts come
// back for /api/status and `ferry status`. Against a real OTA server over mutual TLS, in-process.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { writeFileSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { tempDir } from '../../../test/helpers/tmp.js'
import { makePki, type TestPki } from '../../../test/helpers/pki.js'
import { silentLogger } from '../../../common/src/logger.js'
import { buildApp } from '../../../ota-server/src/app.js'
import { generateReleaseKey } from '../../../ota-server/src/manifest/index.js'
import { publishRelease } from '../../../ota-server/src/store/publish.js'
import { openBuffer } from '../buffer/open.js'
import { RingBuffer } from '../buffer/ring-buffer.js'
import { META_OTA_CURSOR, META_OTA_ROLLOUTS, OtaLink, type OtaRolloutsSnapshot } from './link.js'

const key = generateReleaseKey()

async function otaServer(t: { teardown(fn: () => unknown): void }, pki: TestPki, dir: string, port = 0): Promise<{ app: FastifyInstance; url: string }> {
  const app = await buildApp({ dir, https: { ca: pki.ca, cert: readFileSync(pki.files.serverCert), key: readFileSync(pki.files.serverKey) }, log: silentLogger })
  t.teardown(() => app.close())
  await app.listen({ port, host: '127.0.0.1' })
  return { app, url: `https://localhost:${(app.server.address() as AddressInfo).port}` }
}

function buffer(t: { teardown(fn: () => unknown): void }, file: string) {
  const { db } = openBuffer(file)
  t.teardown(() => db.close())
  const buf = new RingBuffer(db, { maxRows: 1000, maxBytes: 1e9, dedupWindowMs: 60_000, maxEvents: 1000 })
  const event = (device: string, body: object, at = Date.now()) =>
    db.prepare("INSERT INTO events (at, device, kind, payload) VALUES (?, ?, 'ota_status', ?)").run(at, device, Buffer.from(JSON.stringify(body)))
  return { db, buf, event }
}

t.test('ota/status events reach the OTA server once, survive a gateway restart and an OTA server outage, and the rollouts come back', async (t) => {
  const pki = await makePki(t, ['node-1', 'node-2', 'node-3'])
  const root = tempDir(t)
  const dir = join(root, 'ota')
  writeFileSync(join(root, 'fw.bin'), randomBytes(1000))
  await publishRelease({ image: join(root, 'fw.bin'), version: '1.2.0', hw: 'esp32dev', secureVersion: 0, keys: [key.privateKeyPem], dir, expiresInMs: 86_400_000, deployment: 'd1', plan: { schema: 1, stages: [{ devices: ['node-1', 'node-2', 'node-3'] }, { percent: 100 }], success: { percent: 95, min_devices: 3, soak_ms: 0 }, halt: { failures: 2 }, stall_timeout_ms: 600_000 } })
  const ota = await otaServer(t, pki, dir)
  const dbFile = join(root, 'buffer.db')
  const b = buffer(t, dbFile)
  const tls = pki.tls('gateway')
  const link = new OtaLink({ url: ota.url, intervalMs: 60_000, tls, buffer: b.buf, log: silentLogger })
  t.teardown(() => link.stop())

  b.event('node-1', { deployment: 'd1', state: 'downloading', version: '1.2.0' })
  b.event('node-1', { deployment: 'd1', state: 'rolled-back', version: '1.2.0', reason: 'self_test_failed' })
  b.db.prepare("INSERT INTO events (at, device, kind, payload) VALUES (?, 'node-2', 'status', 'online')").run(Date.now())
  await link.sync()
  let s = link.status()
  t.equal(s.lastError, null)
  t.equal(s.forwarded, 2, 'the two ota/status events, not the status event')
  t.equal(b.buf.getMeta<number>(META_OTA_CURSOR), 2, 'the cursor is the last ota/status event id')
  t.match(s.rollouts, [{ deployment: 'd1', status: 'active', counts: { failed: 1 } }])
  t.match(b.buf.getMeta<OtaRolloutsSnapshot>(META_OTA_ROLLOUTS), { url: ota.url, rollouts: [{ deployment: 'd1' }] }, 'a dated copy for ferry status')

  // The OTA server goes away; a report waits in the buffer, and the link says why once it is back.
  const port = Number(new URL(ota.url).port)
  await ota.app.close()
  b.event('node-2', { deployment: 'd1', state: 'failed', version: '1.2.0', reason: 'sha256' })
  await link.sync()
  s = link.status()
  t.match(s.lastError, { message: /ECONNREFUSED|connect|closed/ })
  t.equal(s.forwarded, 2)
  t.equal(s.rollouts.length, 1, 'the last rollouts read stay shown, dated')

  // A new gateway process on the same buffer (a restart) and the OTA server back on its port.
  await link.stop()
  const again = await otaServer(t, pki, dir, port)
  const link2 = new OtaLink({ url: again.url, intervalMs: 60_000, tls, buffer: b.buf, log: silentLogger })
  t.teardown(() => link2.stop())
  t.equal(link2.status().rollouts.length, 1, 'before its first sync, the restarted gateway shows what it last read')
  await link2.sync()
  s = link2.status()
  t.equal(s.lastError, null)
  t.equal(s.forwarded, 1, 'only the report the OTA server had not received')
  t.same(s.halted, ['d1'], 'two failures: halted, and the gateway sees it')
  const lines = readFileSync(join(dir, 'reports.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { device: string; state: string; source: string })
  t.same(lines.map((l) => [l.device, l.state, l.source]), [['node-1', 'downloading', 'mqtt'], ['node-1', 'rolled-back', 'mqtt'], ['node-2', 'failed', 'mqtt']], 'each report once, in order')
})

t.test('a certificate that is not the gateway\'s cannot forward: the link reports the 403 and keeps the reports', async (t) => {
  const pki = await makePki(t, ['node-1'])
  const root = tempDir(t)
  const ota = await otaServer(t, pki, join(root, 'ota'))
  const b = buffer(t, join(root, 'buffer.db'))
  const link = new OtaLink({ url: ota.url, intervalMs: 60_000, tls: pki.tls('node-1'), buffer: b.buf, log: silentLogger })
  t.teardown(() => link.stop())
  b.event('node-1', { deployment: 'd1', state: 'installed', version: '1.2.0' })
  await link.sync()
  t.match(link.status().lastError, { message: /403/ })
  t.equal(link.status().cursor, 0, 'nothing is skipped')
})
