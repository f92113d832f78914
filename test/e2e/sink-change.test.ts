// Changing FERRY_SINKS between starts, with a real mosquitto, a real influxd and the gateway as a
// process: a sink taken out stops holding the buffer (no false drops), and one added back resumes
// from its cursor when it can, else from the oldest buffered reading, and says which.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTestBroker } from '../helpers/mosquitto.js'
import { startInfluxd, type TestInfluxd } from '../helpers/influxd.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings, spawnFerry, type FerryProcess } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'

const ROOT = join(import.meta.dirname, '..', '..')

interface Status {
  buffered: { rows: number }
  sinks: Array<{ name: string; rows: number }>
  retiredSinks: Array<{ name: string; retiredAt: number; cursor: number }>
  dropped: { total: number }
}

const ferryStatus = (db: string, json = true) =>
  execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'status', ...(json ? ['--json'] : []), '--db', db], { encoding: 'utf8' })

const influxCount = async (influx: TestInfluxd) => {
  const r = await influx.query('SELECT count(pot) FROM telemetry', 'ferry')
  return (r.results[0]!.series?.[0]?.values[0]?.[1] as number | undefined) ?? 0
}

/** Everything a test needs: broker, influxd, one device, and gateway starts with a given FERRY_SINKS. */
async function stack(t: Test) {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const influx = await startInfluxd(t)
  await influx.createDatabase('ferry')
  const file = join(dir, 'out', 'telemetry.lp')
  const env = gatewayEnv(broker, dir, {
    FERRY_FILE_PATH: file,
    FERRY_INFLUX_URL: influx.url,
    FERRY_INFLUX_VERSION: '1',
    FERRY_INFLUX_DB: 'ferry',
    FERRY_BUFFER_MAX_ROWS: '1000',
  })
  let gw: FerryProcess | undefined
  const dev = await deviceClient(t, broker, 'dev1')
  return {
    env,
    influx,
    /** Stops the running gateway (if any) and starts one with these sinks; resolves once it is connected. */
    async start(sinks: string): Promise<FerryProcess> {
      if (gw) {
        gw.child.kill('SIGTERM')
        t.equal((await gw.exited).code, 0, 'the gateway stopped cleanly')
      }
      gw = spawnFerry(t, ['gateway'], { ...env, FERRY_SINKS: sinks })
      await gw.waitFor(/connected to the broker/)
      return gw
    },
    /** Publishes seq from..to in chunks of 500, each one in InfluxDB before the next is sent. */
    async send(from: number, to: number) {
      for (let a = from; a <= to; a += 500) {
        const b = Math.min(to, a + 499)
        await publishReadings(dev, 'dev1', a, b)
        await waitUntil(async () => (await influxCount(influx)) === b, `InfluxDB to hold readings up to ${b}`, 30_000, 50)
      }
    },
    /** Seqs in the file sink's output, in file order. */
    fileSeqs: () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => Number(/seq=(\d+)i/.exec(l)![1])) : []),
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

t.test('file sink, then FERRY_SINKS=influxdb with a 1,000-row buffer: 2,500 readings reach InfluxDB, 0 dropped', async (t) => {
  const s = await stack(t)
  // The first start, with the default sink.
  const first = await s.start('file')
  t.match(await first.waitFor(/new sink file/), /"backlog":0/)

  const gw = await s.start('influxdb')
  const retired = JSON.parse(await gw.waitFor(/sink file is no longer in FERRY_SINKS/)) as Record<string, unknown>
  t.match(retired, { level: 30, sink: 'file', change: 'retired', cursor: 0 }, 'logged at INFO')
  await s.send(1, 2500)

  const rows = await s.influx.select('ferry')
  t.same(rows.map((r) => r.seq), range(1, 2500), 'InfluxDB holds seq 1..2500, each once')
  const status = JSON.parse(ferryStatus(s.env.FERRY_DB!)) as Status
  t.equal(status.dropped.total, 0, 'nothing counted as dropped')
  t.same(gw.lines.filter((l) => /buffer full/.test(l)), [], 'no drop warning')
  t.match(status, { sinks: [{ name: 'influxdb', rows: 0 }], retiredSinks: [{ name: 'file', cursor: 0 }] })
  t.ok(status.buffered.rows <= 1000, `the ring bound holds (${status.buffered.rows} rows)`)
  t.match(ferryStatus(s.env.FERRY_DB!, false), /^sink file +retired since \d{4}-\d\d-\d\dT[\d:.]+Z \(\d+s ago; not in FERRY_SINKS\), cursor 0, sent 0/m)
})

t.test('added back: from its cursor while what it missed is buffered, else from the oldest buffered reading', async (t) => {
  const s = await stack(t)
  await s.start('influxdb,file')
  await s.send(1, 100)
  await waitUntil(() => s.fileSeqs().length === 100, 'the file sink to get 1..100')

  let gw = await s.start('influxdb')
  t.match(JSON.parse(await gw.waitFor(/sink file is no longer in FERRY_SINKS/)), { sink: 'file', cursor: 100, undelivered: 0 })
  await s.send(101, 300)
  gw = await s.start('influxdb,file')
  const resumed = await gw.waitFor(/sink file is configured again/)
  t.match(JSON.parse(resumed), { level: 30, sink: 'file', from: 'cursor', cursor: 100, missed: 0, backlog: 200, msg: /resumes from its cursor \(200 to send\)/ })
  await waitUntil(() => s.fileSeqs().length === 300, 'the file sink to catch up')
  t.same(s.fileSeqs(), range(1, 300), 'exactly what it missed, once, in order')

  gw = await s.start('influxdb')
  await s.send(301, 2000) // through a 1,000-row ring: 301..1000 leave the buffer (InfluxDB has them)
  gw = await s.start('influxdb,file')
  const fromOldest = await gw.waitFor(/sink file is configured again/)
  t.match(JSON.parse(fromOldest), {
    level: 30,
    sink: 'file',
    from: 'oldest',
    previousCursor: 300,
    cursor: 1000,
    missed: 700,
    backlog: 1000,
    msg: /700 readings after its cursor left the buffer while it was retired and will not reach it; it resumes from the oldest buffered reading \(1000 to send\)/,
  })
  await waitUntil(() => s.fileSeqs().length === 1300, 'the file sink to take what is buffered')
  t.same(s.fileSeqs(), [...range(1, 300), ...range(1001, 2000)])
  const status = JSON.parse(ferryStatus(s.env.FERRY_DB!)) as Status
  t.same([status.dropped.total, status.retiredSinks], [0, []])
  t.equal(await influxCount(s.influx), 2000)
})
