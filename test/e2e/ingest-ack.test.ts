// The PUBACK is our promise: a broker may forget a message once we acknowledge it, so the row must be
// committed first. This test watches every PUBACK the gateway writes and, at that moment, looks for
// the row through a second SQLite connection, which sees only committed transactions (WAL snapshot).
// It fails if any acknowledgement can precede its commit.
import t from 'tap'
import Database from 'better-sqlite3'
import type { IPublishPacket, Packet } from 'mqtt'
import { startTestBroker } from '../helpers/mosquitto.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings } from '../helpers/gateway.js'
import { loadCoreConfig } from '../../gateway/src/core-config.js'
import { startGateway } from '../../gateway/src/gateway.js'
import { silentLogger } from '../../common/src/logger.js'

t.test('PUBACK waits for the SQLite commit', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const config = loadCoreConfig(gatewayEnv(broker, dir, { FERRY_INGEST_BATCH_MAX: '64', FERRY_INGEST_BATCH_DELAY_MS: '20' }))
  const gw = startGateway(config, { log: silentLogger, sinks: [] })
  t.teardown(() => gw.stop())
  const reader = new Database(config.FERRY_DB, { readonly: true })
  t.teardown(() => reader.close())
  const lookup = reader.prepare('SELECT count(*) AS n FROM readings WHERE device = ? AND boot = ? AND seq = ?')

  const inFlight = new Map<number, { device: string; boot: number; seq: number }>()
  let checked = 0
  const violations: string[] = []
  gw.subscriber.client.on('packetreceive', (p: Packet) => {
    if (p.cmd !== 'publish') return
    const pub = p as IPublishPacket
    const m = /^sensors\/([^/]+)\/telemetry$/.exec(pub.topic)
    if (!m || pub.messageId === undefined) return
    const body = JSON.parse(pub.payload.toString()) as { boot: number; seq: number }
    inFlight.set(pub.messageId, { device: m[1]!, boot: body.boot, seq: body.seq })
  })
  gw.subscriber.client.on('packetsend', (p: Packet) => {
    if (p.cmd !== 'puback') return
    const msg = inFlight.get((p as { messageId: number }).messageId)
    if (!msg) return
    checked++
    const { n } = lookup.get(msg.device, msg.boot, msg.seq) as { n: number }
    if (n !== 1) violations.push(`${msg.device}/${msg.boot}/${msg.seq} acknowledged before commit`)
  })
  await new Promise<void>((resolve) => (gw.state.brokerConnected ? resolve() : gw.subscriber.client.once('connect', () => resolve())))

  const [d1, d2] = await Promise.all([deviceClient(t, broker, 'dev1'), deviceClient(t, broker, 'dev2')])
  await Promise.all([publishReadings(d1, 'dev1', 1, 1000), publishReadings(d2, 'dev2', 1, 1000)])
  // Every reading acknowledged by the broker to the devices reaches the gateway; wait until all 2,000
  // have been acknowledged by the gateway too.
  await new Promise<void>((resolve) => {
    const poll = () => (checked >= 2000 ? resolve() : setTimeout(poll, 20))
    poll()
  })
  t.same(violations, [])
  t.equal(checked, 2000, 'every telemetry PUBACK was checked')
  t.equal((reader.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n, 2000)
  const commits = await gw.metrics.commitSeconds.get()
  const count = commits.values.find((v) => v.metricName === 'ferry_buffer_commit_seconds_count')?.value ?? 0
  t.ok(count < 2000, `messages were grouped: ${count} commits for 2000 messages`)
})
