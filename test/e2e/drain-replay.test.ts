// Sinks acceptance with real processes: a real InfluxDB 1.6 that is down while 10,000 readings are
// buffered, a gateway SIGKILLed in the middle of the replay, and two sinks of which one refuses the
// credentials.
import t from 'tap'
import Database from 'better-sqlite3'
import { execFileSync } from 'node:child_process'
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { startTestBroker } from '../helpers/mosquitto.js'
import { startInfluxd } from '../helpers/influxd.js'
import { freePort } from '../helpers/ports.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings, spawnFerry } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'

const ROOT = join(import.meta.dirname, '..', '..')

function dbValue<T>(path: string, sql: string): T {
  const d = new Database(path, { readonly: true })
  try {
    return d.prepare(sql).get() as T
  } finally {
    d.close()
  }
}

t.test('10,000 readings buffered while InfluxDB is down arrive exactly once, in order, across a SIGKILL mid-replay', async (t) => {
  const devices = ['dev1', 'dev2', 'dev3', 'dev4']
  const broker = await startTestBroker(t, { devices })
  const dir = tempDir(t)
  const influxPort = await freePort() // nothing listens here yet: InfluxDB is "down"
  const env = gatewayEnv(broker, dir, {
    FERRY_SINKS: 'influxdb',
    FERRY_INFLUX_URL: `http://127.0.0.1:${influxPort}`,
    FERRY_INFLUX_VERSION: '1',
    FERRY_INFLUX_DB: 'ferry',
    FERRY_INFLUX_BATCH_SIZE: '250',
    FERRY_DRAIN_RETRY_MIN_MS: '50',
    FERRY_DRAIN_RETRY_MAX_MS: '300',
    FERRY_DRAIN_PROGRESS_MS: '200',
  })
  let gw = spawnFerry(t, ['gateway'], env)
  await gw.waitFor(/connected to the broker/)
  const clients = await Promise.all(devices.map((d) => deviceClient(t, broker, d)))
  await Promise.all(clients.map((c, i) => publishReadings(c, devices[i]!, 1, 2500, { window: 20 })))
  await waitUntil(() => dbValue<{ n: number }>(env.FERRY_DB!, 'SELECT count(*) AS n FROM readings').n === 10_000, '10,000 readings buffered', 60_000)
  await gw.waitFor(/sink write failed; will retry/)
  const status = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'status', '--json', '--db', env.FERRY_DB!], { encoding: 'utf8' })) as {
    sinks: Array<{ name: string; rows: number; lastErrorCode: string }>
  }
  t.same(status.sinks.map((s) => [s.name, s.rows, s.lastErrorCode]), [['influxdb', 10_000, 'network']], 'status shows the backlog and why')

  // InfluxDB comes back.
  const influx = await startInfluxd(t, { httpPort: influxPort })
  await influx.createDatabase('ferry')
  const cursor = () => dbValue<{ c: number }>(env.FERRY_DB!, "SELECT cursor AS c FROM sink_state WHERE name = 'influxdb'").c
  // Kill the gateway in the middle of the replay.
  await waitUntil(() => cursor() >= 1000, 'the replay to be under way', 60_000, 2)
  gw.child.kill('SIGKILL')
  await gw.exited
  const atKill = cursor()
  t.ok(atKill < 10_000, `killed mid-replay (cursor ${atKill} of 10,000)`)

  gw = spawnFerry(t, ['gateway'], env)
  await waitUntil(() => cursor() >= 10_000, 'the replay to finish', 60_000)
  gw.child.kill('SIGTERM')
  t.equal((await gw.exited).code, 0)

  const count = await influx.query('SELECT count(pot) FROM telemetry', 'ferry')
  t.equal(count.results[0]!.series![0]!.values[0]![1], 10_000, 'count(*) is exactly 10,000')
  const rows = await influx.select('ferry')
  t.equal(rows.length, 10_000)
  for (const device of devices) {
    const mine = rows.filter((r) => r.device === device) // oldest first
    const seqs = mine.map((r) => r.seq as number)
    t.same(seqs, Array.from({ length: 2500 }, (_, i) => i + 1), `${device}: seq 1..2500 in time order, each once`)
    t.ok(mine.every((r) => r.pot === (r.seq as number) % 4096 && r.switch === (r.seq as number) % 2 && r.led === (r.seq as number) % 101 && r.boot === 1), `${device}: values match what was published`)
  }
})

t.test('two sinks, one answering 401: the other gets everything, the refused backlog drains after the fix and a restart', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const influx = await startInfluxd(t, { auth: { user: 'admin', password: 'right-password' } })
  await influx.createDatabase('ferry')
  const file = join(dir, 'out', 'telemetry.lp')
  const env = gatewayEnv(broker, dir, {
    FERRY_SINKS: 'influxdb,file',
    FERRY_INFLUX_URL: influx.url,
    FERRY_INFLUX_DB: 'ferry',
    FERRY_INFLUX_USER: 'admin',
    FERRY_INFLUX_PASSWORD: 'wrong-password',
    FERRY_FILE_PATH: file,
  })
  let gw = spawnFerry(t, ['gateway'], env)
  await gw.waitFor(/connected to the broker/)
  const dev = await deviceClient(t, broker, 'dev1')
  await publishReadings(dev, 'dev1', 1, 500)
  const lines = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [])
  await waitUntil(() => lines().length === 500, 'the file sink to receive all 500')
  const alert = await gw.waitFor(/refused the credentials/)
  t.match(alert, /"level":50/, 'logged at ERROR')
  const status = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'status', '--json', '--db', env.FERRY_DB!], { encoding: 'utf8' })) as {
    sinks: Array<{ name: string; rows: number; lastErrorCode: string; sentTotal: number }>
  }
  const bySink = Object.fromEntries(status.sinks.map((s) => [s.name, s]))
  t.equal(bySink.influxdb!.rows, 500, 'the refused sink keeps its whole backlog')
  t.equal(bySink.influxdb!.lastErrorCode, 'auth')
  t.equal(bySink.file!.sentTotal, 500)
  const empty = await influx.query('SHOW MEASUREMENTS', 'ferry')
  t.notOk(empty.results[0]!.series, 'nothing reached InfluxDB')

  gw.child.kill('SIGTERM')
  await gw.exited
  gw = spawnFerry(t, ['gateway'], { ...env, FERRY_INFLUX_PASSWORD: 'right-password' })
  const influxCount = async () => {
    const r = await influx.query('SELECT count(pot) FROM telemetry', 'ferry')
    return (r.results[0]!.series?.[0]?.values[0]?.[1] as number | undefined) ?? 0
  }
  await waitUntil(async () => (await influxCount()) === 500, 'the backlog to drain into InfluxDB', 30_000, 100)
  t.equal(lines().length, 500, 'the file sink did not get anything twice')
})
