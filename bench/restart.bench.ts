/**
 * Restart with a big buffer: time from spawning `ferry gateway` to the first reading it stored and
 * confirmed, with a 1,000,000-reading backlog against the same with an empty buffer. See
 * bench/README.md (Restart) and docs/integrity.md for what start-up checks and what runs later.
 *
 * A device client (dev1) is connected and subscribed to its `sensors/dev1/ack` before the gateway
 * is spawned, and publishes a new QoS 1 reading every 10 ms until one is confirmed. The confirmation
 * is sent after the group commit, at the same moment as the gateway's PUBACK to the broker (which a
 * device cannot see: its own PUBACK comes from the broker), so "confirmed" = "acknowledged after its
 * commit". Each sample checks afterwards that the confirmed reading is in the buffer.
 *
 * The sink is an InfluxDB URL on a port nobody listens on: a big backlog exists because the uplink
 * was down, and a drainer that fails and backs off costs the start-up nothing it would not in the
 * field. Before each sample the buffer file is written back and dropped from the page cache (dd
 * oflag=nocache), as after a power cut: the gateway reads it from the disk, not from memory.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { loadavg } from 'node:os'
import Database from 'better-sqlite3'
import mqtt from 'mqtt'
import { startTestBroker, type TestBroker } from '../test/helpers/mosquitto.js'
import { gatewayEnv } from '../test/helpers/gateway.js'
import { freePort } from '../test/helpers/ports.js'
import { tempDir } from '../test/helpers/tmp.js'
import { fmt, measure, result, withScope, type Result } from './lib/harness.js'
import { cpuMsOf, startFerry } from './lib/procs.js'
import { fillBuffer } from './lib/backlog.js'
import { reading } from './lib/load.js'
import type { Bench, BenchContext } from './lib/context.js'

const DEVICES = ['dev1', 'dev2', 'dev3', 'dev4']
/** How often the waiting device publishes a new reading until one is confirmed. */
const PUBLISH_EVERY_MS = 10

interface Sample {
  /** Spawn → first confirmation of a reading published by the waiting device. */
  firstAckMs: number
  /** Spawn → the gateway's "gateway started" line (modules loaded, buffer opened and counted). */
  startedMs: number | null
  /** Spawn → "connected to the broker". */
  connectedMs: number | null
  /** CPU time (user + system) the gateway had used when the confirmation arrived: less sensitive to other load than the wall clock. */
  cpuMs: number | null
}

/** Writes `path` back and drops it from the page cache (GNU dd; fadvise DONTNEED), so the next read comes from the disk. */
function evict(path: string): boolean {
  try {
    execFileSync('dd', [`of=${path}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0', 'status=none'])
    return true
  } catch {
    return false
  }
}

/** The time of the first JSON log line whose msg matches, relative to `spawnedAt` (epoch ms). */
function logTime(lines: string[], msg: RegExp, spawnedAt: number): number | null {
  for (const l of lines) {
    if (!msg.test(l)) continue
    try {
      // pino writes the time as epoch ms or as an ISO string, depending on the logger's options.
      const time = (JSON.parse(l) as { time?: number | string }).time
      const ms = typeof time === 'string' ? Date.parse(time) : time
      if (typeof ms === 'number' && Number.isFinite(ms)) return ms - spawnedAt
    } catch {
      // not a JSON line
    }
  }
  return null
}

async function restartOnce(broker: TestBroker, db: string, boot: number, coldCache: boolean): Promise<Sample> {
  return withScope(async (s) => {
    const dir = tempDir(s, 'ferry-bench-restart-')
    const env = gatewayEnv(broker, dir, {
      FERRY_DB: db,
      FERRY_SINKS: 'influxdb',
      FERRY_INFLUX_URL: `http://127.0.0.1:${await freePort()}`,
      FERRY_INFLUX_DB: 'ferry',
      FERRY_BUFFER_MAX_ROWS: '2000000',
      FERRY_BUFFER_MAX_BYTES: String(2 ** 40),
    })
    const dev = await mqtt.connectAsync(broker.url, { ...broker.pki.tls('dev1'), clientId: 'dev1', reconnectPeriod: 0 })
    s.teardown(() => dev.endAsync(true))
    await dev.subscribeAsync('sensors/dev1/ack', { qos: 1 })
    let confirmed: number | null = null
    let confirmedAt = 0
    const acked = new Promise<void>((resolve) => {
      dev.on('message', (_topic, payload) => {
        const c = JSON.parse(payload.toString()) as { boot: number; seqs: Array<[number, number]> }
        if (c.boot !== boot || confirmed !== null) return
        confirmedAt = performance.now()
        confirmed = c.seqs[0]![0]
        resolve()
      })
    })
    if (coldCache) evict(db)
    const spawnedAt = Date.now()
    const t0 = performance.now()
    const gw = startFerry(s, ['gateway'], env)
    let seq = 0
    const publishing = (async () => {
      while (confirmed === null && gw.alive()) {
        // Not awaited: a publish waits for the broker's PUBACK; the next one goes out on schedule.
        dev.publishAsync('sensors/dev1/telemetry', reading(++seq, boot, Date.now()), { qos: 1 }).catch(() => {})
        await new Promise((r) => setTimeout(r, PUBLISH_EVERY_MS))
      }
    })()
    const exited = gw.exited.then((r) => {
      throw new Error(`the gateway exited (${r.signal ?? `code ${r.code}`}) before confirming a reading; last lines:\n${gw.lines.slice(-10).join('\n')}`)
    })
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no reading confirmed within 120 s')), 120_000).unref())
    await Promise.race([acked, exited, timeout])
    await publishing
    const firstAckMs = confirmedAt - t0
    const cpuMs = cpuMsOf(gw.pid) ?? null
    await gw.stop()
    // The confirmed reading must be one the gateway stored.
    const check = new Database(db, { readonly: true, fileMustExist: true })
    try {
      const row = check.prepare('SELECT id FROM readings WHERE device = ? AND boot = ? AND seq = ?').get('dev1', boot, confirmed)
      if (!row) throw new Error(`reading dev1/${boot}/${String(confirmed)} was confirmed but is not in the buffer`)
    } finally {
      check.close()
    }
    return { firstAckMs, startedMs: logTime(gw.lines, /"gateway started"/, spawnedAt), connectedMs: logTime(gw.lines, /"connected to the broker"/, spawnedAt), cpuMs }
  })
}

async function run(ctx: BenchContext): Promise<Result[]> {
  const rows = 1_000_000
  const samples = ctx.quick ? 3 : 7
  return withScope(async (s) => {
    const broker = await startTestBroker(s, { devices: DEVICES })
    const dir = tempDir(s, 'ferry-bench-restart-')
    const big = join(dir, 'big.db')
    const empty = join(dir, 'empty.db')
    const t0 = performance.now()
    fillBuffer(big, rows, DEVICES)
    fillBuffer(empty, 0, DEVICES)
    ctx.log(`restart: filled ${rows.toLocaleString('en-US')} readings in ${fmt((performance.now() - t0) / 1000)} s`)
    const cold = evict(empty)
    if (!cold) ctx.log('restart: dd could not drop the buffer from the page cache; measuring with a warm cache')
    const bigRuns: Sample[] = []
    const emptyRuns: Sample[] = []
    // Interleaved, so that load from other processes falls on both alike.
    for (let i = 0; i < samples; i++) {
      emptyRuns.push(await restartOnce(broker, empty, 1000 + 2 * i, cold))
      bigRuns.push(await restartOnce(broker, big, 1001 + 2 * i, cold))
      ctx.log(`restart: sample ${i + 1}/${samples}: first ack after ${fmt(emptyRuns.at(-1)!.firstAckMs)} ms (empty) / ${fmt(bigRuns.at(-1)!.firstAckMs)} ms (${rows.toLocaleString('en-US')} readings)`)
    }
    const phase = (runs: Sample[], k: 'startedMs' | 'connectedMs' | 'cpuMs') => fmt(measure(runs.map((r) => r[k]).filter((x): x is number => x !== null)).median)
    return [
      result({
        id: 'restart.first-ack',
        title: `spawn → first confirmed reading, ${rows.toLocaleString('en-US')}-reading buffer vs empty`,
        unit: 'ms',
        ferry: measure(bigRuns.map((r) => r.firstAckMs)),
        baseline: { name: 'same, empty buffer', ...measure(emptyRuns.map((r) => r.firstAckMs)) },
        targets: [{ of: 'ferry', op: '<=', value: 2000 }],
        notes: [
          `${cold ? 'buffer dropped from the page cache before each start (as after a power cut)' : 'warm page cache (dd could not drop the file)'}; the device publishes every ${PUBLISH_EVERY_MS} ms, so a sample is late by up to that`,
          `median spawn → "gateway started" ${phase(bigRuns, 'startedMs')} ms (empty ${phase(emptyRuns, 'startedMs')} ms), → "connected to the broker" ${phase(bigRuns, 'connectedMs')} ms (empty ${phase(emptyRuns, 'connectedMs')} ms)`,
          `median CPU time of the gateway at the first confirmation ${phase(bigRuns, 'cpuMs')} ms (empty ${phase(emptyRuns, 'cpuMs')} ms): less sensitive to other load on the machine than the wall clock; load average at the end ${loadavg().map((x) => x.toFixed(1)).join(' ')}`,
        ],
      }),
    ]
  })
}

export const bench: Bench = { name: 'restart', description: 'spawn → first confirmed reading with a 1,000,000-reading buffer vs an empty one', needs: ['mosquitto'], run }
