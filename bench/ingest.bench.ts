/**
 * Durable ingest, durability modes and write amplification.
 *
 * Ferry: `ferry gateway` (a real process, no sinks) stores every reading in SQLite and only then
 * sends the PUBACK. Baseline: a bare `mosquitto_sub -q 1` with the gateway's identity on the same
 * broker, its output counted and thrown away. Both get exactly the same load: one `mosquitto_pub -l`
 * per device, QoS 1, a window of in-flight messages, started after the receiver has proved it is
 * subscribed. Every sample starts from a fresh broker (and for Ferry a fresh buffer), and the sides
 * alternate, so drift in the machine's load hits both.
 *
 * Rate = readings / (first publisher started → last reading stored by Ferry, or received by
 * mosquitto_sub). Ferry's end is found by polling `max(seq)` per device on a read-only connection
 * every 5 ms (QoS 1 keeps each publisher's order, so the last seq stored means all of them are).
 *
 * Commit confirmations (docs/delivery.md) are on, as by default; the number the gateway published is
 * read from its /metrics (`ferry_confirmations_sent_total`). The load's publishers are
 * `mosquitto_pub`, which cannot read them, and a second client with a device's identity would take
 * over its session (the broker sets the client id from the certificate), so the devices' side of the
 * traffic is counted, not received. `ingest.full-no-confirm` turns them off, and `confirm.cost` is the
 * ratio between the two.
 */
import Database from 'better-sqlite3'
import { startTestBroker } from '../test/helpers/mosquitto.js'
import { makePki, type TestPki } from '../test/helpers/pki.js'
import { gatewayEnv } from '../test/helpers/gateway.js'
import { tempDir } from '../test/helpers/tmp.js'
import { freePort } from '../test/helpers/ports.js'
import { measure, result, withScope, type Result } from './lib/harness.js'
import { cpuMsOf, ioOf, start, startFerry, waitUntil } from './lib/procs.js'
import { prepareLoad, publishLoad, warmUp, type Load } from './lib/load.js'
import type { Bench, BenchContext } from './lib/context.js'
import { ingestConfigSchema } from '../gateway/src/ingest/config.js'

const WARM = 'warm'
/** The gateway's documented defaults, read from the schema so the benchmark follows them. */
const BATCH_MAX = (ingestConfigSchema.properties.FERRY_INGEST_BATCH_MAX as { default?: number }).default!
const DELAY_MS = (ingestConfigSchema.properties.FERRY_INGEST_BATCH_DELAY_MS as { default?: number }).default!

interface Sample {
  rate: number
  ms: number
  /** CPU time of the receiving process per message, µs. */
  cpuUsPerMsg: number
  /** CPU seconds per second the receiving process used over the timed window (1 = one core busy). */
  busy: number
  /** The same for the broker: near 1 (or near its cores under --cpus), the load side was the limit. */
  brokerBusy: number
  /** Bytes the receiver wrote to storage per message (Ferry only). */
  writePerMsg?: number
  /** Confirmation messages the gateway published, per reading (Ferry with confirmations only). */
  acksPerMsg?: number
}

export interface Mode {
  id: string
  title: string
  synchronous: 'NORMAL' | 'FULL'
  batchMax: number
  delayMs: number
  /** Fraction of the load to send (fsync-per-message is too slow for the full load). */
  share: number
  /** FERRY_INGEST_CONFIRM; true unless told. */
  confirm?: boolean
}

/** One baseline sample: mosquitto_sub, output counted by line. */
export async function baselineSample(pki: TestPki, load: Load): Promise<Sample> {
  return withScope(async (s) => {
    const broker = await startTestBroker(s, { pki })
    const f = pki.files
    let lines = 0
    let target = Infinity
    let reached: (() => void) | undefined
    const done = new Promise<void>((r) => (reached = r))
    // With --cpus, on Ferry's cores: it stands in for the gateway.
    const sub = start(s, 'mosquitto_sub', ['-h', 'localhost', '-p', String(broker.port), '--cafile', f.caCert, '--cert', f.gatewayCert, '--key', f.gatewayKey, '-q', '1', '-t', 'sensors/+/telemetry'], {
      onStdout: (b: Buffer) => {
        for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) lines++
        if (lines >= target) reached?.()
      },
      cores: 'ferry',
    })
    await warmUp(s, broker, WARM, () => lines > 0)
    target = lines + load.total
    const cpu0 = cpuMsOf(sub.pid)!
    const brokerCpu0 = cpuMsOf(broker.process.pid!)!
    const started = performance.now()
    const pub = publishLoad(s, broker, load, 100)
    await Promise.race([done, sub.exited.then(() => Promise.reject(new Error(`mosquitto_sub exited: ${sub.lines.join('\n')}`)))])
    const ms = performance.now() - started
    const cpu = cpuMsOf(sub.pid)! - cpu0
    const brokerCpu = cpuMsOf(broker.process.pid!)! - brokerCpu0
    await pub
    return { rate: (load.total / ms) * 1000, ms, cpuUsPerMsg: (cpu * 1000) / load.total, busy: cpu / ms, brokerBusy: brokerCpu / ms }
  })
}

/** One Ferry sample: `ferry gateway` with the given durability mode. */
export async function ferrySample(pki: TestPki, load: Load, mode: Mode): Promise<Sample> {
  return withScope(async (s) => {
    const broker = await startTestBroker(s, { pki })
    const dir = tempDir(s, 'ferry-bench-')
    const httpPort = await freePort()
    const env = gatewayEnv(broker, dir, {
      FERRY_LOG_LEVEL: 'info',
      FERRY_DB_SYNCHRONOUS: mode.synchronous,
      FERRY_INGEST_BATCH_MAX: String(mode.batchMax),
      FERRY_INGEST_BATCH_DELAY_MS: String(mode.delayMs),
      FERRY_INGEST_CONFIRM: String(mode.confirm ?? true),
      // Read-only API, only to read ferry_confirmations_sent_total at the end.
      FERRY_HTTP_PORT: String(httpPort),
      FERRY_HTTP_HOST: '127.0.0.1',
      FERRY_API_READ_ONLY: 'true',
    })
    const gw = startFerry(s, ['gateway'], env)
    await gw.waitFor(/connected to the broker/)
    const db = new Database(env.FERRY_DB!, { readonly: true })
    s.teardown(() => db.close())
    const warm = db.prepare('SELECT 1 FROM readings WHERE device = ? LIMIT 1')
    await warmUp(s, broker, WARM, () => warm.get(WARM) !== undefined)
    const last = db.prepare('SELECT max(seq) AS s FROM readings WHERE device = ? AND boot = 1')
    // Write amplification counts the WAL *and* its checkpoint into the database file. The gateway
    // checkpoints automatically every ~4 MB of WAL, so a short run would leave part of the data
    // un-checkpointed: start from an empty WAL and checkpoint what is left at the end from this
    // process, adding those bytes (our own /proc/self/io) to the gateway's.
    const ckpt = new Database(env.FERRY_DB!)
    s.teardown(() => ckpt.close())
    ckpt.pragma('wal_checkpoint(TRUNCATE)')
    const io0 = ioOf(gw.pid)!
    const cpu0 = cpuMsOf(gw.pid)!
    const brokerCpu0 = cpuMsOf(broker.process.pid!)!
    const started = performance.now()
    const pub = publishLoad(s, broker, load, 100)
    await waitUntil(() => load.devices.every((d) => (last.get(d) as { s: number | null }).s === load.perDevice), `${load.total} readings stored`, 300_000, 5)
    const ms = performance.now() - started
    const io1 = ioOf(gw.pid)!
    const cpu = cpuMsOf(gw.pid)! - cpu0
    const brokerCpu = cpuMsOf(broker.process.pid!)! - brokerCpu0
    const self0 = ioOf(process.pid)!
    ckpt.pragma('wal_checkpoint(TRUNCATE)')
    const finalCheckpoint = ioOf(process.pid)!.writeBytes - self0.writeBytes
    await pub
    const confirmations = Number(/^ferry_confirmations_sent_total (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text())?.[1] ?? NaN)
    await gw.stop()
    return {
      rate: (load.total / ms) * 1000,
      ms,
      cpuUsPerMsg: (cpu * 1000) / load.total,
      busy: cpu / ms,
      brokerBusy: brokerCpu / ms,
      writePerMsg: (io1.writeBytes - io0.writeBytes + finalCheckpoint) / load.total,
      ...((mode.confirm ?? true) ? { acksPerMsg: confirmations / (load.total + 1) } : {}), // + the warm-up reading
    }
  })
}

async function run(ctx: BenchContext): Promise<Result[]> {
  const devices = ['dev1', 'dev2', 'dev3', 'dev4']
  const perDevice = ctx.quick ? 5_000 : 15_000
  const samples = ctx.quick ? 2 : 5
  const modes: Mode[] = [
    { id: 'ingest.normal', title: `durable ingest, synchronous=NORMAL, group commit ≤${BATCH_MAX} / ${DELAY_MS} ms`, synchronous: 'NORMAL', batchMax: BATCH_MAX, delayMs: DELAY_MS, share: 1 },
    { id: 'ingest.full', title: `power-loss-safe ingest, synchronous=FULL, group commit ≤${BATCH_MAX} / ${DELAY_MS} ms (the defaults)`, synchronous: 'FULL', batchMax: BATCH_MAX, delayMs: DELAY_MS, share: 1 },
    { id: 'ingest.full-no-confirm', title: 'synchronous=FULL, defaults, without commit confirmations (FERRY_INGEST_CONFIRM=false)', synchronous: 'FULL', batchMax: BATCH_MAX, delayMs: DELAY_MS, share: 1, confirm: false },
    { id: 'ingest.full-per-message', title: 'synchronous=FULL with one commit (fsync) per message (batch 1): why group commit', synchronous: 'FULL', batchMax: 1, delayMs: 0, share: 0.1 },
  ]
  if (!ctx.quick) {
    modes.splice(2, 0, { id: 'ingest.full-b256', title: 'synchronous=FULL, smaller groups: ≤256 / 5 ms', synchronous: 'FULL', batchMax: 256, delayMs: 5, share: 1 })
  }

  return withScope(async (s) => {
    const pki = await makePki(s, [...devices, WARM])
    const dir = tempDir(s, 'ferry-bench-load-')
    const load = prepareLoad(dir, devices, perDevice)
    const loads = new Map(modes.map((m) => [m.id, m.share === 1 ? load : prepareLoad(tempDir(s, 'ferry-bench-load-'), devices, Math.max(100, Math.round(perDevice * m.share)))]))
    const base: Sample[] = []
    const ferry = new Map<string, Sample[]>(modes.map((m) => [m.id, []]))
    for (let i = 0; i < samples; i++) {
      const b = await baselineSample(pki, load)
      base.push(b)
      ctx.log(`ingest: sample ${i + 1}/${samples} mosquitto_sub ${Math.round(b.rate)} msg/s`)
      for (const m of modes) {
        const f = await ferrySample(pki, loads.get(m.id)!, m)
        ferry.get(m.id)!.push(f)
        ctx.log(`ingest: sample ${i + 1}/${samples} ${m.id} ${Math.round(f.rate)} msg/s, ${Math.round(f.writePerMsg ?? 0)} B written/msg`)
      }
    }
    const baseline = { name: 'mosquitto_sub -q 1', ...measure(base.map((x) => x.rate)) }
    const loadNote = `${devices.length} mosquitto_pub -l publishers × ${perDevice.toLocaleString('en-US')} readings (${Math.round(load.payloadBytes)} B JSON), QoS 1, 100 in flight each; one fresh broker per sample`
    const ackNote = (xs: Sample[]) =>
      `commit confirmations: ${(measure(xs.map((x) => x.acksPerMsg ?? NaN)).median * 1000).toFixed(1)} messages (about 30 B of payload each) per 1,000 readings, one per device and commit`
    const med = (xs: Sample[], f: (x: Sample) => number) => measure(xs.map(f)).median
    const cpuNote = (xs: Sample[], who: string) => `${who} CPU ${Math.round(med(xs, (x) => x.cpuUsPerMsg))} µs per message`
    const pct = (v: number) => `${Math.round(v * 100)}%`
    // Which side was the limit: the receiver's and the broker's CPU use over the timed window.
    const busyNote = (xs: Sample[]) =>
      `CPU over the timed window: gateway ${pct(med(xs, (x) => x.busy))} of a core, broker ${pct(med(xs, (x) => x.brokerBusy))}; in the baseline samples mosquitto_sub ${pct(med(base, (x) => x.busy))}, broker ${pct(med(base, (x) => x.brokerBusy))}`
    const out: Result[] = []
    for (const m of modes) {
      const xs = ferry.get(m.id)!
      const targets = m.id === 'ingest.normal' ? [{ of: 'ratio' as const, op: '>=' as const, value: 0.9 }] : m.id === 'ingest.full' ? [{ of: 'ratio' as const, op: '>=' as const, value: 0.9 }] : []
      out.push(result({
        id: m.id,
        title: m.title,
        unit: 'msg/s',
        ferry: measure(xs.map((x) => x.rate)),
        baseline,
        targets,
        cpu: { us: med(xs, (x) => x.cpuUsPerMsg), per: 'message', cores: med(xs, (x) => x.busy) },
        notes: [
          ...(m.share === 1 ? [loadNote] : [`${loads.get(m.id)!.total.toLocaleString('en-US')} readings (a tenth of the load: one fsync per message)`]),
          `${cpuNote(xs, 'gateway')}; ${cpuNote(base, 'mosquitto_sub')}`,
          busyNote(xs),
          ...((m.confirm ?? true) && m.share === 1 ? [ackNote(xs)] : []),
        ],
      }))
    }
    const full = ferry.get('ingest.full')!
    out.push(result({
      id: 'confirm.cost',
      title: 'commit confirmations on (default) vs off: ingest rate, synchronous=FULL',
      unit: 'msg/s',
      ferry: measure(full.map((x) => x.rate)),
      baseline: { name: 'FERRY_INGEST_CONFIRM=false', ...measure(ferry.get('ingest.full-no-confirm')!.map((x) => x.rate)) },
      targets: [{ of: 'ratio', op: '>=', value: 0.95 }],
      notes: [ackNote(full)],
    }))
    const payload = measure(Array.from({ length: samples }, () => load.payloadBytes))
    for (const id of ['ingest.normal', 'ingest.full']) {
      const xs = ferry.get(id)!
      out.push(result({
        id: `${id.replace('ingest.', 'write-amp.')}`,
        title: `bytes written to disk per stored reading (/proc/<pid>/io write_bytes: WAL + checkpoints, the last one included), ${id === 'ingest.normal' ? 'NORMAL' : 'FULL'}`,
        unit: 'B/msg',
        ferry: measure(xs.map((x) => x.writePerMsg ?? NaN)),
        baseline: { name: 'payload bytes', ...payload },
        targets: [{ of: 'ratio', op: '<=', value: 3 }],
      }))
    }
    return out
  })
}

export const bench: Bench = {
  name: 'ingest',
  description: 'durable QoS 1 ingest vs mosquitto_sub; NORMAL vs FULL; write amplification',
  needs: ['mosquitto', 'mosquitto_pub', 'mosquitto_sub'],
  onFerryCores: 'the gateway and the baseline mosquitto_sub (the receiver either way)',
  run,
}
