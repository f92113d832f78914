// The background check in a running gateway (docs/integrity.md), against a real mosquitto and a real
// SQLite file whose dedupe index was damaged on disk where start-up does not read: the gateway starts
// on it, keeps acknowledging, and says so in /healthz, /metrics, its state and `ferry status`; the
// next start moves the file aside.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { startTestBroker } from '../../test/helpers/mosquitto.js'
import { tempDir } from '../../test/helpers/tmp.js'
import { deviceClient, gatewayEnv, publishReadings } from '../../test/helpers/gateway.js'
import { waitUntil } from '../../test/helpers/wait.js'
import { damageMiddleLeaf, indexOf, makeBuffer } from '../../test/helpers/damage.js'
import { loadCoreConfig } from './core-config.js'
import { startGateway } from './gateway.js'
import { buildApp } from './api/app.js'
import { silentLogger } from '../../common/src/logger.js'

const rowsOf = (db: { prepare(sql: string): { get(): unknown } }) => (db.prepare("SELECT count(*) AS n FROM readings WHERE device = 'dev1' AND boot = 2").get() as { n: number }).n

t.test('damage found by the background check is reported everywhere, ingest goes on, and the next start moves the file aside', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const env = gatewayEnv(broker, dir, { FERRY_DB_CHECK_EVERY: '1s' })
  makeBuffer(env.FERRY_DB!, 20_000)
  damageMiddleLeaf(env.FERRY_DB!, indexOf(env.FERRY_DB!), 'rowid')

  const gw = startGateway(loadCoreConfig(env), { log: silentLogger, sinks: [] })
  let stopped = false
  t.teardown(() => (stopped ? undefined : gw.stop()))
  t.equal(gw.state.recovered, null, 'the cheap check at start does not see the damage')
  const app = await buildApp({ gateway: gw, token: 'test-token-0123456789abcdef' })
  t.teardown(() => app.close())
  await waitUntil(() => gw.state.brokerConnected, 'the gateway to connect')
  t.equal((await app.inject('/healthz')).statusCode, 200, 'healthy before the check has run')

  await waitUntil(() => gw.state.bufferDamage !== null, 'the background check to find the damage', 30_000)
  t.match(gw.state.lastError, { code: 'FERRY_ERR_BUFFER_DAMAGED', message: /missing from index/ })
  const health = await app.inject('/healthz')
  t.equal(health.statusCode, 503)
  t.match(health.json().checks.database, /^damaged \(FERRY_ERR_BUFFER_DAMAGED/)
  t.match((await app.inject('/metrics')).body, /^ferry_buffer_damaged 1$/m)
  const status = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../cli/main.ts'), 'status', '--db', env.FERRY_DB!], { encoding: 'utf8' })
  t.match(status, /^DAMAGED: .*missing from index/m)

  // Still taking readings (said so above): the broker's messages are not left to pile up.
  const dev = await deviceClient(t, broker, 'dev1')
  await publishReadings(dev, 'dev1', 1, 10, { boot: 2 })
  await waitUntil(() => rowsOf(gw.buffer.db) === 10, 'ten more readings stored')
  await gw.stop()
  stopped = true

  const next = startGateway(loadCoreConfig(env), { log: silentLogger, sinks: [] })
  t.teardown(() => next.stop())
  t.match(next.state.recovered, { error: /integrity_check/, movedTo: /buffer\.db\.corrupt-/ }, 'moved aside at the next start')
  t.equal(next.state.lastError?.code, 'FERRY_ERR_BUFFER_CORRUPT')
  t.equal(next.buffer.size().rows, 0, 'a fresh buffer')
  await waitUntil(() => next.state.brokerConnected, 'the next gateway to connect')
  await publishReadings(dev, 'dev1', 11, 12, { boot: 2 })
  await waitUntil(() => rowsOf(next.buffer.db) === 2, 'the fresh buffer to take readings')
})
