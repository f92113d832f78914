/**
 * Backlog memory: peak RSS (VmHWM from /proc/<pid>/status) of `ferry gateway` while it replays a
 * large backlog into InfluxDB 1.6, against the same gateway replaying a 10,000-reading backlog. A
 * buffer that streams its backlog in fixed batches needs the same memory whatever the backlog's size;
 * anything that grows with the backlog shows up as a ratio above 1.
 *
 * Also the idle RSS: the same gateway on an empty buffer once it is connected to the broker, against
 * a bare `node` with the same options, so what Ferry's code adds is seen apart from what the heap
 * does during a replay.
 */
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTestBroker, type TestBroker } from '../test/helpers/mosquitto.js'
import { startInfluxd, type TestInfluxd } from '../test/helpers/influxd.js'
import { gatewayEnv } from '../test/helpers/gateway.js'
import { tempDir } from '../test/helpers/tmp.js'
import { fmt, measure, result, withScope, type Result } from './lib/harness.js'
import { cpuMsOf, memoryOf, shippedNodeOptions, start, startFerry } from './lib/procs.js'
import { fillBuffer, waitDrained } from './lib/backlog.js'
import type { Bench, BenchContext } from './lib/context.js'

const MB = 1_000_000

async function replay(broker: TestBroker, influx: TestInfluxd, db: string, source: string, lastId: number): Promise<{ hwm: number; rssAfter: number; seconds: number; cpuSeconds: number }> {
  return withScope(async (s) => {
    await influx.createDatabase(db)
    const dir = tempDir(s, 'ferry-bench-')
    const env = gatewayEnv(broker, dir, {
      FERRY_SINKS: 'influxdb',
      FERRY_INFLUX_URL: influx.url,
      FERRY_INFLUX_DB: db,
      FERRY_BUFFER_MAX_ROWS: String(Math.max(1_000_000, lastId * 2)),
      FERRY_BUFFER_MAX_BYTES: String(2 ** 40),
    })
    copyFileSync(source, env.FERRY_DB!)
    const started = performance.now()
    const gw = startFerry(s, ['gateway'], env)
    await waitDrained(env.FERRY_DB!, 'influxdb', lastId, 900_000, gw.alive)
    const m = memoryOf(gw.pid)
    // The gateway's own CPU time: what a memory setting costs, less blurred than wall time by whatever
    // else shares the machine (a smaller young generation means more, shorter collections).
    const cpuMs = cpuMsOf(gw.pid)
    if (!m || cpuMs === undefined) throw new Error('the gateway exited before its memory could be read')
    await gw.stop()
    return { hwm: m.hwm, rssAfter: m.rss, seconds: (performance.now() - started) / 1000, cpuSeconds: cpuMs / 1000 }
  })
}

/** VmRSS and VmHWM of `ferry gateway` on an empty buffer, read once it is connected to the broker. */
async function idle(broker: TestBroker, influx: TestInfluxd, db: string): Promise<{ rss: number; hwm: number }> {
  return withScope(async (s) => {
    await influx.createDatabase(db)
    const env = gatewayEnv(broker, tempDir(s, 'ferry-bench-'), { FERRY_SINKS: 'influxdb', FERRY_INFLUX_URL: influx.url, FERRY_INFLUX_DB: db })
    const gw = startFerry(s, ['gateway'], env)
    // Logged after start-up (the buffer opened, the sinks made), once the MQTT session is up.
    await gw.waitFor(/connected to the broker/, 60_000)
    const m = memoryOf(gw.pid)
    if (!m) throw new Error('the gateway exited before its memory could be read')
    await gw.stop()
    return m
  })
}

/** VmRSS of a bare `node` with the shipped options, doing nothing: what any Node process costs here. */
async function bareNode(): Promise<number> {
  return withScope(async (s) => {
    const p = start(s, process.execPath, [...shippedNodeOptions(), '-e', 'console.log("ready"); setInterval(() => {}, 60_000)'])
    await p.waitFor(/^ready$/, 20_000)
    const m = memoryOf(p.pid)
    if (!m) throw new Error('node exited before its memory could be read')
    await p.stop()
    return m.rss
  })
}

async function run(ctx: BenchContext): Promise<Result[]> {
  const big = ctx.quick ? 200_000 : 1_000_000
  const small = 10_000
  const samples = ctx.quick ? 1 : 2
  return withScope(async (s) => {
    const devices = ['dev1', 'dev2', 'dev3', 'dev4']
    const broker = await startTestBroker(s, { devices })
    const influx = await startInfluxd(s)
    const dir = tempDir(s, 'ferry-bench-backlog-')
    const t0 = performance.now()
    const bigFill = fillBuffer(join(dir, 'big.db'), big, devices)
    const smallFill = fillBuffer(join(dir, 'small.db'), small, devices)
    ctx.log(`backlog: filled ${big.toLocaleString('en-US')} readings in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    const bigRuns = []
    const smallRuns = []
    const idleRuns = []
    const bareRuns = []
    for (let i = 0; i < samples; i++) {
      idleRuns.push(await idle(broker, influx, `idle${i}`))
      bareRuns.push(await bareNode())
      ctx.log(`backlog: sample ${i + 1}/${samples} idle RSS ${fmt(idleRuns.at(-1)!.rss / MB)} MB (bare node ${fmt(bareRuns.at(-1)! / MB)} MB)`)
      smallRuns.push(await replay(broker, influx, `small${i}`, join(dir, 'small.db'), smallFill.lastId))
      bigRuns.push(await replay(broker, influx, `big${i}`, join(dir, 'big.db'), bigFill.lastId))
      ctx.log(`backlog: sample ${i + 1}/${samples} peak RSS ${fmt(smallRuns.at(-1)!.hwm / MB)} MB (10k) / ${fmt(bigRuns.at(-1)!.hwm / MB)} MB (${big.toLocaleString('en-US')}), replay took ${fmt(bigRuns.at(-1)!.seconds)} s, ${fmt(bigRuns.at(-1)!.cpuSeconds)} s of gateway CPU`)
    }
    return [
      result({
        id: 'backlog.peak-rss',
        title: `peak RSS of ferry gateway replaying ${big.toLocaleString('en-US')} readings vs ${small.toLocaleString('en-US')} into InfluxDB 1.6`,
        unit: 'MB',
        ferry: measure(bigRuns.map((r) => r.hwm / MB)),
        baseline: { name: `same, ${small.toLocaleString('en-US')}-reading backlog`, ...measure(smallRuns.map((r) => r.hwm / MB)) },
        targets: [{ of: 'ratio', op: '<=', value: 1.1 }, { of: 'ferry', op: '<=', value: 100 }],
        notes: [
          `replay of ${big.toLocaleString('en-US')} took ${fmt(measure(bigRuns.map((r) => r.seconds)).median)} s (${fmt(big / measure(bigRuns.map((r) => r.seconds)).median)} readings/s including start-up) and ${fmt(measure(bigRuns.map((r) => r.cpuSeconds)).median)} s of the gateway's CPU; RSS at the end ${fmt(measure(bigRuns.map((r) => r.rssAfter / MB)).median)} MB`,
          'MB = 10^6 bytes; VmHWM covers the whole life of the process, start-up included',
        ],
      }),
      result({
        id: 'backlog.idle-rss',
        title: 'RSS of ferry gateway with nothing to do (InfluxDB sink, empty buffer, connected to the broker)',
        unit: 'MB',
        ferry: measure(idleRuns.map((r) => r.rss / MB)),
        baseline: { name: 'bare node, same options', ...measure(bareRuns.map((r) => r / MB)) },
        notes: [`peak during start-up (VmHWM) ${fmt(measure(idleRuns.map((r) => r.hwm / MB)).median)} MB`],
      }),
    ]
  })
}

export const bench: Bench = { name: 'backlog', description: 'peak RSS replaying a large backlog vs a 10,000-row one', needs: ['mosquitto', 'influxd'], run }
