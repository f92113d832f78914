/**
 * End-to-end latency while online: a device publishes (QoS 1) → broker → gateway (group commit,
 * PUBACK) → drainer → InfluxDB 1.6 answers 204. Measured per reading: the publisher and a thin HTTP
 * relay in front of influxd live in this process, so both ends use one clock; the relay notes the
 * moment influxd's 204 arrives for each reading in the request body, then passes the answer on.
 * The relay itself costs well under a millisecond on loopback.
 *
 * For context, the same publishers are first measured against a bare `mosquitto_sub` (publish →
 * delivered by the broker): that is the part of the latency Ferry does not own. No target; the
 * figures are p50 and p99 in milliseconds.
 */
import { createServer, type IncomingMessage } from 'node:http'
import { gunzipSync } from 'node:zlib'
import type { AddressInfo } from 'node:net'
import mqtt, { type MqttClient } from 'mqtt'
import { startTestBroker, type TestBroker } from '../test/helpers/mosquitto.js'
import { startInfluxd } from '../test/helpers/influxd.js'
import { gatewayEnv } from '../test/helpers/gateway.js'
import { tempDir } from '../test/helpers/tmp.js'
import { fmt, measure, percentile, result, withScope, type Result, type Scope } from './lib/harness.js'
import { start, startFerry } from './lib/procs.js'
import { reading } from './lib/load.js'
import type { Bench, BenchContext } from './lib/context.js'

/** Wall-clock milliseconds with sub-millisecond resolution (comparable with mosquitto_sub's %U). */
const nowMs = () => performance.timeOrigin + performance.now()

interface Schedule {
  devices: string[]
  perSecond: number
  seconds: number
}

/** Publishes `perSecond` readings per device for `seconds`; returns publish times by "device/seq". */
async function publishSchedule(s: Scope, broker: TestBroker, sch: Schedule, boot: number): Promise<Map<string, number>> {
  const sent = new Map<string, number>()
  const clients: MqttClient[] = await Promise.all(sch.devices.map(async (d) => {
    const c = await mqtt.connectAsync(broker.url, { ...broker.pki.tls(d), clientId: d, reconnectPeriod: 0 })
    s.teardown(() => c.endAsync(true))
    return c
  }))
  const total = sch.perSecond * sch.seconds
  const gap = 1000 / sch.perSecond
  await Promise.all(clients.map(async (c, i) => {
    const d = sch.devices[i]!
    // Devices are spread over the interval rather than publishing in lockstep.
    await new Promise((r) => setTimeout(r, (gap * i) / clients.length))
    const t0 = performance.now()
    const pending: Promise<unknown>[] = []
    for (let seq = 1; seq <= total; seq++) {
      const due = t0 + seq * gap
      const wait = due - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      sent.set(`${d}/${seq}`, nowMs())
      pending.push(c.publishAsync(`sensors/${d}/telemetry`, reading(seq, boot, Date.now()), { qos: 1 }))
    }
    await Promise.all(pending)
  }))
  return sent
}

function latencies(sent: Map<string, number>, got: Map<string, number>): number[] {
  const out: number[] = []
  for (const [k, t] of sent) {
    const r = got.get(k)
    if (r !== undefined) out.push(r - t)
  }
  return out
}

async function brokerOnly(sch: Schedule): Promise<number[]> {
  return withScope(async (s) => {
    const broker = await startTestBroker(s, { devices: sch.devices })
    const f = broker.pki.files
    const got = new Map<string, number>()
    let partial = ''
    const sub = start(s, 'mosquitto_sub', ['-h', 'localhost', '-p', String(broker.port), '--cafile', f.caCert, '--cert', f.gatewayCert, '--key', f.gatewayKey, '-q', '1', '-t', 'sensors/+/telemetry', '-F', '%U %t %p'], {
      onStdout: (b: Buffer) => {
        const lines = (partial + b.toString()).split('\n')
        partial = lines.pop() ?? ''
        for (const l of lines) {
          const m = /^(\d+\.\d+) sensors\/([^/]+)\/telemetry .*"seq":(\d+)/.exec(l)
          if (m) got.set(`${m[2]}/${m[3]}`, Number(m[1]) * 1000)
        }
      },
      cores: 'ferry', // --cpus: the receiver, standing in for the gateway
    })
    // mosquitto_sub has subscribed once a retained-free probe published after it gets through.
    const probe = await mqtt.connectAsync(broker.url, { ...broker.pki.tls(sch.devices[0]!), clientId: sch.devices[0]!, reconnectPeriod: 0 })
    for (let i = 0; !got.has(`${sch.devices[0]}/0`); i++) {
      if (i > 200) throw new Error(`mosquitto_sub did not subscribe: ${sub.lines.join('\n')}`)
      await probe.publishAsync(`sensors/${sch.devices[0]}/telemetry`, JSON.stringify({ seq: 0, boot: 9 }), { qos: 1 })
      await new Promise((r) => setTimeout(r, 25))
    }
    await probe.endAsync()
    const sent = await publishSchedule(s, broker, sch, 1)
    await new Promise((r) => setTimeout(r, 500))
    return latencies(sent, got)
  })
}

async function throughFerry(sch: Schedule): Promise<number[]> {
  return withScope(async (s) => {
    const broker = await startTestBroker(s, { devices: sch.devices })
    const influx = await startInfluxd(s)
    await influx.createDatabase('ferry')
    const got = new Map<string, number>()
    const relay = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        const headers: Record<string, string> = {}
        for (const h of ['content-type', 'content-encoding', 'authorization', 'accept']) if (req.headers[h]) headers[h] = String(req.headers[h])
        fetch(`${influx.url}${req.url}`, { method: req.method, headers, ...(req.method === 'POST' ? { body } : {}) }).then(async (r) => {
          const at = nowMs()
          const text = Buffer.from(await r.arrayBuffer())
          if (r.status === 204 && req.url?.startsWith('/write')) {
            const lp = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString()
            for (const m of lp.matchAll(/device=([^ ,]+)[^\n]*?seq=(\d+)i/g)) got.set(`${m[1]}/${m[2]}`, at)
          }
          res.writeHead(r.status, Object.fromEntries(r.headers)).end(text)
        }, (err: Error) => res.writeHead(502).end(err.message))
      })
    })
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r))
    s.teardown(() => new Promise((r) => relay.close(r)))
    const env = gatewayEnv(broker, tempDir(s, 'ferry-bench-'), {
      FERRY_SINKS: 'influxdb',
      FERRY_INFLUX_URL: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
      FERRY_INFLUX_DB: 'ferry',
    })
    const gw = startFerry(s, ['gateway'], env)
    await gw.waitFor(/connected to the broker/)
    // A first reading through the whole chain proves the subscription is in place.
    const probe = await mqtt.connectAsync(broker.url, { ...broker.pki.tls(sch.devices[0]!), clientId: sch.devices[0]!, reconnectPeriod: 0 })
    for (let i = 0; !got.has(`${sch.devices[0]}/1`); i++) {
      if (i > 400) throw new Error(`no reading reached InfluxDB through the gateway: ${gw.lines.slice(-5).join('\n')}`)
      if (i % 20 === 0) await probe.publishAsync(`sensors/${sch.devices[0]}/telemetry`, reading(1, 9, Date.now()), { qos: 1 })
      await new Promise((r) => setTimeout(r, 25))
    }
    await probe.endAsync()
    got.clear()
    const sent = await publishSchedule(s, broker, sch, 1)
    const deadline = Date.now() + 10_000
    while (got.size < sent.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    await gw.stop()
    return latencies(sent, got)
  })
}

async function run(ctx: BenchContext): Promise<Result[]> {
  const sch: Schedule = { devices: ['dev1', 'dev2', 'dev3', 'dev4'], perSecond: 20, seconds: ctx.quick ? 5 : 20 }
  const base = await brokerOnly(sch)
  const ferry = await throughFerry(sch)
  const expected = sch.devices.length * sch.perSecond * sch.seconds
  ctx.log(`latency: ${ferry.length}/${expected} readings timed through Ferry, ${base.length}/${expected} through the broker alone`)
  const note = `${sch.devices.length} devices × ${sch.perSecond} readings/s for ${sch.seconds} s, QoS 1; gateway defaults (synchronous=FULL, group commit ≤1024 / 20 ms, InfluxDB batches ≤5,000, gzip level 1, 2 in flight); ${ferry.length}/${expected} readings timed`
  return [50, 99].map((p) =>
    result({
      id: `latency.p${p}`,
      title: `publish → InfluxDB 204, p${p}`,
      unit: 'ms',
      ferry: measure([percentile(ferry, p)]),
      baseline: { name: 'publish → mosquitto_sub', ...measure([percentile(base, p)]) },
      notes: p === 50 ? [note, `Ferry's own share: ${fmt(percentile(ferry, p) - percentile(base, p))} ms at p50`] : [`max ${fmt(Math.max(...ferry))} ms`],
    }),
  )
}

export const bench: Bench = { name: 'latency', description: 'end-to-end latency online, publish → InfluxDB 204 (p50, p99)', needs: ['mosquitto', 'mosquitto_sub', 'influxd'], onFerryCores: 'the gateway and the baseline mosquitto_sub', run }
