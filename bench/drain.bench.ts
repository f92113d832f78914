/**
 * Drain: readings per second delivered from the buffer to a local InfluxDB 1.6.
 *
 * Ferry: `ferry gateway` started on a buffer that already holds the backlog (filled through the
 * gateway's own ingest code), InfluxDB sink with its defaults (batches of FERRY_INFLUX_BATCH_SIZE =
 * 5,000, gzip). Timed from the gateway's "gateway started" log line (the drainer starts right after
 * the buffer is open) until the sink cursor in SQLite reaches the last row (polled every 5 ms).
 * Baseline: one `curl` process posting the very same line-protocol bytes (encoded by Ferry's encoder
 * from the same rows), in the same batch sizes, one request after another on one keep-alive
 * connection, pre-gzipped when Ferry gzips: the same bytes on the wire with none of Ferry's work
 * (reading SQLite, encoding, compressing, settling the cursor). Every sample writes into a new
 * database of the same influxd, sides alternating.
 */
import Database from 'better-sqlite3'
import { copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { startTestBroker } from '../test/helpers/mosquitto.js'
import { startInfluxd, type TestInfluxd } from '../test/helpers/influxd.js'
import { gatewayEnv } from '../test/helpers/gateway.js'
import { tempDir } from '../test/helpers/tmp.js'
import { encodeBatch } from '../gateway/src/sinks/line-protocol.js'
import type { BufferedReading } from '../gateway/src/sinks/types.js'
import { measure, result, withScope, type Result, type Scope } from './lib/harness.js'
import { cpuMsOf, start, startFerry } from './lib/procs.js'
import { fillBuffer, waitDrained } from './lib/backlog.js'
import type { Bench, BenchContext } from './lib/context.js'
import type { TestBroker } from '../test/helpers/mosquitto.js'

const BATCH = 5000

/** The line-protocol bodies Ferry would send for this buffer, batch by batch, written as files. */
function writeBodies(dbPath: string, dir: string, gzip: boolean): string[] {
  const db = new Database(dbPath, { readonly: true })
  const read = db.prepare('SELECT id, device, boot, seq, ts_us AS tsUs, received_at AS receivedAt, pot, switch, led, payload FROM readings WHERE id > ? ORDER BY id LIMIT ?')
  const files: string[] = []
  let cursor = 0
  for (;;) {
    const rows = (read.all(cursor, BATCH) as Array<Omit<BufferedReading, 'payload'> & { payload: Buffer }>).map((r) => ({ ...r, switch: r.switch ? 1 : 0, payload: r.payload.toString('utf8') }) as BufferedReading)
    if (rows.length === 0) break
    cursor = rows[rows.length - 1]!.id
    const text = Buffer.from(encodeBatch(rows, 'telemetry').ok.map((x) => x.line).join('\n') + '\n')
    const f = join(dir, `batch-${files.length}.lp${gzip ? '.gz' : ''}`)
    writeFileSync(f, gzip ? gzipSync(text) : text)
    files.push(f)
  }
  db.close()
  return files
}

async function curlSample(s: Scope, influx: TestInfluxd, db: string, files: string[], gzip: boolean, rows: number): Promise<number> {
  await influx.createDatabase(db)
  const url = `${influx.url}/write?db=${db}&precision=n`
  const args: string[] = []
  files.forEach((f, i) => {
    if (i) args.push('--next')
    args.push('-sS', '-o', '/dev/null', '-w', '%{http_code}\\n', '-H', 'Content-Type: text/plain; charset=utf-8', ...(gzip ? ['-H', 'Content-Encoding: gzip'] : []), '--data-binary', `@${f}`, url)
  })
  const started = performance.now()
  // With --cpus, on Ferry's cores: it stands in for the gateway's sender; influxd is on the others.
  const curl = start(s, 'curl', args, { cores: 'ferry' })
  const r = await curl.exited
  const ms = performance.now() - started
  const codes = curl.lines.filter((l) => /^\d{3}$/.test(l))
  if (r.code !== 0 || codes.length !== files.length || codes.some((c) => c !== '204')) throw new Error(`curl baseline failed: exit ${r.code}, answers ${codes.join(',')}: ${curl.lines.slice(-3).join('\n')}`)
  return (rows / ms) * 1000
}

interface FerrySample {
  rate: number
  cpuUsPerRow: number
  /** CPU seconds per second over the drain, of the gateway and of influxd (1 = one core busy). */
  busy: number
  influxBusy: number
}

async function ferrySample(broker: TestBroker, influx: TestInfluxd, db: string, source: string, lastId: number, gzip: boolean): Promise<FerrySample> {
  return withScope(async (s) => {
    await influx.createDatabase(db)
    const dir = tempDir(s, 'ferry-bench-')
    const env = gatewayEnv(broker, dir, {
      FERRY_SINKS: 'influxdb',
      FERRY_INFLUX_URL: influx.url,
      FERRY_INFLUX_DB: db,
      FERRY_INFLUX_BATCH_SIZE: String(BATCH),
      FERRY_INFLUX_GZIP: String(gzip),
      FERRY_BUFFER_MAX_ROWS: String(lastId * 2),
      FERRY_BUFFER_MAX_BYTES: String(2 ** 40),
    })
    copyFileSync(source, env.FERRY_DB!)
    const gw = startFerry(s, ['gateway'], env)
    const drained = waitDrained(env.FERRY_DB!, 'influxdb', lastId, 600_000, gw.alive)
    // Awaited below; if the gateway fails to start first, this must not end the run as an unhandled rejection.
    drained.catch(() => {})
    const startedLine = await gw.waitFor(/"msg":"gateway started"/)
    // The log line's own timestamp: the drainer started in the same tick, before the line reached us.
    const startedAt = Date.parse((JSON.parse(startedLine) as { time: string }).time)
    const lag = Date.now() - startedAt
    const t0 = performance.now() - lag
    const cpu0 = cpuMsOf(gw.pid)!
    const influxCpu0 = cpuMsOf(influx.process.pid!)!
    const c0 = performance.now()
    const t1 = await drained
    const cpu = cpuMsOf(gw.pid)! - cpu0
    const influxCpu = cpuMsOf(influx.process.pid!)! - influxCpu0
    // Over the part both CPU readings cover (the gateway's start-up lag is before cpu0).
    const cpuMs = t1 - c0
    await gw.stop()
    return { rate: (lastId / (t1 - t0)) * 1000, cpuUsPerRow: (cpu * 1000) / lastId, busy: cpu / cpuMs, influxBusy: influxCpu / cpuMs }
  })
}

async function run(ctx: BenchContext): Promise<Result[]> {
  const rows = ctx.quick ? 50_000 : 200_000
  const samples = ctx.quick ? 2 : 5
  const variants = ctx.quick ? [true] : [true, false]
  return withScope(async (s) => {
    const devices = ['dev1', 'dev2', 'dev3', 'dev4']
    const broker = await startTestBroker(s, { devices })
    const influx = await startInfluxd(s)
    const dir = tempDir(s, 'ferry-bench-drain-')
    const source = join(dir, 'backlog.db')
    const { lastId } = fillBuffer(source, rows, devices)
    const out: Result[] = []
    let n = 0
    for (const gzip of variants) {
      const files = writeBodies(source, tempDir(s, 'ferry-bench-bodies-'), gzip)
      const base: number[] = []
      const ferry: FerrySample[] = []
      for (let i = 0; i < samples; i++) {
        base.push(await curlSample(s, influx, `curl${n++}`, files, gzip, lastId))
        ferry.push(await ferrySample(broker, influx, `ferry${n++}`, source, lastId, gzip))
        ctx.log(`drain${gzip ? '' : ' (no gzip)'}: sample ${i + 1}/${samples} curl ${Math.round(base.at(-1)!)} rows/s, ferry ${Math.round(ferry.at(-1)!.rate)} rows/s`)
      }
      const med = (f: (x: FerrySample) => number) => measure(ferry.map(f)).median
      out.push(result({
        id: gzip ? 'drain.influxdb' : 'drain.influxdb-nogzip',
        title: `${rows.toLocaleString('en-US')}-reading backlog to InfluxDB 1.6 /write, batches of ${BATCH}, ${gzip ? 'gzip (the default)' : 'FERRY_INFLUX_GZIP=false'}`,
        unit: 'rows/s',
        ferry: measure(ferry.map((x) => x.rate)),
        baseline: { name: gzip ? 'curl, same gzipped bodies' : 'curl, same bodies', ...measure(base) },
        targets: gzip ? [{ of: 'ratio', op: '>=', value: 0.9 }] : [],
        cpu: { us: med((x) => x.cpuUsPerRow), per: 'reading', cores: med((x) => x.busy) },
        notes: [
          `gateway CPU ${Math.round(med((x) => x.cpuUsPerRow))} µs per reading (read, encode, ${gzip ? 'gzip, ' : ''}post, settle)`,
          // Which side was the limit: the gateway's core(s) or influxd's.
          `while Ferry drained, the gateway used ${Math.round(med((x) => x.busy) * 100)}% of a core, influxd ${Math.round(med((x) => x.influxBusy) * 100)}%`,
        ],
      }))
    }
    return out
  })
}

export const bench: Bench = {
  name: 'drain',
  description: 'backlog drain to InfluxDB 1.6 vs curl posting the same line protocol',
  needs: ['mosquitto', 'influxd', 'curl'],
  onFerryCores: 'the gateway and the baseline curl (the sender either way)',
  run,
}
