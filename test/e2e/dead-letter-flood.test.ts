// A device that floods the gateway with large invalid payloads, against a real mosquitto and real
// SQLite: the dead letters stay within their bound (a share per device of FERRY_DEADLETTER_MAX_BYTES,
// oversized payloads cut to FERRY_INGEST_MAX_PAYLOAD_BYTES), the other device's readings are all
// stored, what is not kept is counted per device (status, API, metric, log), and on a small file
// system the flood cannot fill the disk and stop ingest for everyone.
import t from 'tap'
import { statSync, statfsSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { MqttClient } from 'mqtt'
import { startTestBroker } from '../helpers/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { mountTmpfs, tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings, spawnFerry } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'
import { ferryStatusJson, ferryStatusText, type StatusJson } from '../helpers/status.js'
import { loadCoreConfig } from '../../gateway/src/core-config.js'
import { startGateway } from '../../gateway/src/gateway.js'
import { silentLogger } from '../../common/src/logger.js'

const FLOOD = 1000
/** Under the broker's message_size_limit (65,536), far over FERRY_INGEST_MAX_PAYLOAD_BYTES (2,048). */
const FLOOD_BYTES = 60_000
const READINGS = 500

/** `count` invalid telemetry payloads of `bytes` each, at QoS 1, ten in flight. */
async function flood(client: MqttClient, device: string, count: number, bytes: number): Promise<void> {
  const junk = Buffer.alloc(bytes, '{')
  for (let i = 0; i < count; i += 10) await Promise.all(Array.from({ length: Math.min(10, count - i) }, () => client.publishAsync(`sensors/${device}/telemetry`, junk, { qos: 1 })))
}

/** The flood and 500 readings from dev2 at the same time (dev2 one at a time, so they spread over the flood). */
async function floodWhileReading(broker: Awaited<ReturnType<typeof startTestBroker>>, tt: Parameters<typeof deviceClient>[0]): Promise<void> {
  const [bad, good] = await Promise.all([deviceClient(tt, broker, 'flood'), deviceClient(tt, broker, 'dev2')])
  await Promise.all([flood(bad, 'flood', FLOOD, FLOOD_BYTES), publishReadings(good, 'dev2', 1, READINGS, { window: 1 })])
}

/** The database file and its WAL, in bytes. */
const dbBytes = (db: string) => statSync(db).size + (statSync(`${db}-wal`, { throwIfNoEntry: false })?.size ?? 0)

t.test("one device floods large invalid payloads: the other's readings are all stored, the dead letters stay within the device's share, the counts show", async (t) => {
  const broker = await startTestBroker(t, { devices: ['flood', 'dev2'] })
  const dir = tempDir(t)
  const port = await freePort()
  const env = gatewayEnv(broker, dir, { FERRY_HTTP_PORT: String(port), FERRY_HTTP_HOST: '127.0.0.1', FERRY_API_READ_ONLY: 'true' })
  const db = env.FERRY_DB!
  const api = async (path: string) => fetch(`http://127.0.0.1:${port}${path}`)
  const status = async () => (await (await api('/api/status')).json()) as StatusJson & { gateway: { brokerConnected: boolean; ingestPaused: unknown } }
  const gw = spawnFerry(t, ['gateway'], env)
  await gw.waitFor(/connected to the broker/)

  await floodWhileReading(broker, t)
  const ro = new Database(db, { readonly: true })
  t.teardown(() => ro.close())
  const readings = () => (ro.prepare("SELECT count(DISTINCT seq) AS n FROM readings WHERE device = 'dev2'").get() as { n: number }).n
  await waitUntil(async () => {
    const d = (await status()).deadLetters
    return d.total + (d.discarded.byDevice.flood ?? 0) === FLOOD && readings() === READINGS
  }, 'every flood message dead-lettered or counted, and every reading stored', 60_000, 100)

  t.equal(readings(), READINGS, "every one of dev2's readings is stored, once")
  const s = await status()
  const limits = s.deadLetters.limits!
  t.match(limits, { maxRows: 10_000, maxBytes: 8_388_608, deviceMaxRows: 1000, deviceMaxBytes: 838_860, maxPayloadBytes: 2048 }, 'the default bound')
  const kept = s.deadLetters.total
  t.ok(kept > 0 && s.deadLetters.held.bytes <= limits.deviceMaxBytes, `the flood holds at most its share: ${kept} dead letters, ${s.deadLetters.held.bytes} bytes`)
  t.same(s.deadLetters.discarded, { total: FLOOD - kept, byDevice: { flood: FLOOD - kept }, byReason: { 'over-share': FLOOD - kept } }, 'the rest is counted for that device, not stored')
  const shapes = ro.prepare('SELECT DISTINCT device, length(payload) AS kept, payload_bytes AS received FROM dead_letters').all()
  t.same(shapes, [{ device: 'flood', kept: 2048, received: FLOOD_BYTES }], 'each keeps the first 2,048 bytes and the length received')
  const size = dbBytes(db)
  t.ok(size < 4 * 1024 * 1024, `the database (with its WAL) stays small: ${size} bytes after ${FLOOD * FLOOD_BYTES} bytes of flood`)
  t.equal(s.gateway.brokerConnected, true)
  t.equal(s.gateway.ingestPaused, null, 'ingest never stopped')

  const cli = ferryStatusJson(db)
  t.same(cli.deadLetters.discarded, s.deadLetters.discarded, 'ferry status --json says the same')
  t.same(cli.deadLetters.held, s.deadLetters.held)
  const text = ferryStatusText(db)
  t.match(text, new RegExp(`^dead letters: ${kept} \\(ingest: ${kept}\\); held ${kept} rows, \\d+ bytes of 10000 rows, 8388608 bytes \\(per device 1000 rows, 838860 bytes\\)$`, 'm'))
  t.match(text, new RegExp(`^  not kept: +${FLOOD - kept} \\(flood: ${FLOOD - kept}\\): over-share ${FLOOD - kept}$`, 'm'))
  const metrics = await (await api('/metrics')).text()
  t.match(metrics, new RegExp(`^ferry_dead_letters_discarded_total\\{device="flood",reason="over-share"\\} ${FLOOD - kept}$`, 'm'))
  t.match(metrics, new RegExp(`^ferry_dead_letters_total\\{source="ingest"\\} ${FLOOD}$`, 'm'))
  t.notMatch(metrics, /ferry_dead_letters_discarded_total\{device="dev2"/, 'nothing of dev2')
  const warned = gw.lines.filter((l) => /dead letters not kept/.test(l))
  t.equal(warned.length, 1, 'one WARN for the whole flood (at most one a minute)')
  t.match(warned[0], /"level":40.*"discarded":\{"flood":\{"over-share":\d+\}\}/)
})

t.test('on an 8 MB file system a dead-letter flood cannot fill the disk: ingest never stops for the other device', async (t) => {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a small tmpfs and needs root')
  const broker = await startTestBroker(t, { devices: ['flood', 'dev2'] })
  const dir = tempDir(t)
  const mnt = mountTmpfs(t, dir, 'small', 'size=8m')
  // The defaults: 60 MB of flood would have filled this disk 7 times over before dead letters were bounded.
  const gw = startGateway(loadCoreConfig({ ...gatewayEnv(broker, dir), FERRY_DB: join(mnt, 'buffer.db') }), { log: silentLogger, sinks: [] })
  t.teardown(() => gw.stop())
  await waitUntil(() => gw.state.brokerConnected, 'the gateway to connect')

  await floodWhileReading(broker, t)
  const readings = () => (gw.buffer.db.prepare("SELECT count(DISTINCT seq) AS n FROM readings WHERE device = 'dev2'").get() as { n: number }).n
  await waitUntil(() => {
    const d = gw.status().deadLetters
    return (d.total + (d.discarded.byDevice.flood ?? 0) === FLOOD && readings() === READINGS) || gw.state.ingestPaused
  }, 'every flood message dead-lettered or counted, and every reading stored', 60_000, 100)

  t.equal(gw.state.ingestPaused, null, 'ingest never paused for a full disk')
  t.equal((await gw.metrics.commitFailures.get()).values[0]?.value ?? 0, 0, 'no commit failed')
  t.equal(readings(), READINGS, "every one of dev2's readings is stored")
  const free = statfsSync(mnt)
  t.ok(free.bavail * free.bsize > 2 * 1024 * 1024, `more than a quarter of the file system is still free (${free.bavail * free.bsize} bytes)`)
  t.ok(gw.status().deadLetters.discarded.total > 0, 'the flood was cut short')
})
