// Broker down: the gateway notices, reconnects with backoff when the broker is back, and loses nothing;
// it also reads the broker's own drop counter.
import t from 'tap'
import { startTestBroker } from '../helpers/mosquitto.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'
import { loadCoreConfig } from '../../gateway/src/core-config.js'
import { startGateway } from '../../gateway/src/gateway.js'
import { silentLogger } from '../../common/src/logger.js'

t.test('the gateway reconnects after a broker restart and stores everything, once', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const gw = startGateway(loadCoreConfig(gatewayEnv(broker, dir)), { log: silentLogger, sinks: [] })
  t.teardown(() => gw.stop())
  await waitUntil(() => gw.state.brokerConnected, 'first connection')
  const count = () => (gw.buffer.db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n

  // The broker publishes $SYS every sys_interval (10 s); the gateway keeps the dropped counter.
  await waitUntil(() => gw.state.brokerDropped !== null, "the broker's $SYS dropped counter", 25_000, 100)
  t.equal(gw.state.brokerDropped, 0)

  const dev = await deviceClient(t, broker, 'dev1')
  await publishReadings(dev, 'dev1', 1, 100)
  await waitUntil(() => count() === 100, 'the first 100')

  await broker.stop()
  await waitUntil(() => !gw.state.brokerConnected, 'the gateway to notice the broker is gone')
  const again = await broker.restart()
  await waitUntil(() => gw.state.brokerConnected, 'the gateway to reconnect', 40_000, 50)
  const dev2 = await deviceClient(t, again, 'dev1')
  await publishReadings(dev2, 'dev1', 101, 200)
  await waitUntil(() => count() === 200, 'all 200 after the restart', 20_000)
  t.equal((gw.buffer.db.prepare('SELECT count(DISTINCT seq) AS n FROM readings').get() as { n: number }).n, 200)
})

t.test('messages published while the gateway is away wait in its persistent session', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const env = gatewayEnv(broker, dir)
  let gw = startGateway(loadCoreConfig(env), { log: silentLogger, sinks: [] })
  await waitUntil(() => gw.state.brokerConnected, 'first connection')
  await gw.stop()
  const dev = await deviceClient(t, broker, 'dev1')
  await publishReadings(dev, 'dev1', 1, 300) // the gateway is offline: the broker queues these
  gw = startGateway(loadCoreConfig(env), { log: silentLogger, sinks: [] })
  t.teardown(() => gw.stop())
  const count = () => (gw.buffer.db.prepare('SELECT count(*) AS n, min(seq) AS lo, max(seq) AS hi FROM readings').get() as { n: number; lo: number; hi: number })
  await waitUntil(() => count().n === 300, 'the queued 300', 20_000)
  t.same(count(), { n: 300, lo: 1, hi: 300 }, 'all 300 queued readings arrived after the gateway came back')
})
