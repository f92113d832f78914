/**
 * Scale-out (docs/scale-out.md): aggregate ingest of two gateway replicas sharing one broker through
 * `FERRY_MQTT_SHARE_GROUP`, against one replica in the same share group, same broker, same load.
 *
 * Each sample starts a fresh broker and fresh buffers; the sides alternate. Load: one `mosquitto_pub
 * -l` per device, QoS 1, 100 in flight (bench/lib/load.ts). Rate = readings / (first publisher
 * started → every reading stored by some replica), found by polling the replicas' buffers read-only.
 * synchronous=FULL and confirmations at commit (FERRY_INGEST_CONFIRM_AFTER=commit: there is no sink
 * here, and after delivery nothing would ever be confirmed), so each replica does the work of a
 * single gateway on its share.
 *
 * On a 2-core machine the broker, the publishers and the replicas share the same two cores, so the
 * ratio says how much the broker and the machine leave to a second replica, not what two Pis would do.
 */
import Database from 'better-sqlite3'
import { startTestBroker, type TestBroker } from '../test/helpers/mosquitto.js'
import { makePki, type TestPki } from '../test/helpers/pki.js'
import { gatewayEnv } from '../test/helpers/gateway.js'
import { tempDir } from '../test/helpers/tmp.js'
import { issueGatewayReplica, pkiFiles } from '../common/src/pki/pki.js'
import { measure, result, withScope, type Result, type Scope } from './lib/harness.js'
import { cpuMsOf, startFerry, waitUntil } from './lib/procs.js'
import { prepareLoad, publishLoad, warmUp, type Load } from './lib/load.js'
import type { Bench, BenchContext } from './lib/context.js'

const WARM = 'warm'

interface Sample {
  rate: number
  /** Readings stored by each replica: the share each carried. */
  shares: number[]
  /** Gateway CPU per reading, all replicas together, µs. */
  cpuUsPerMsg: number
}

async function startReplicas(s: Scope, broker: TestBroker, n: number) {
  const f = pkiFiles(broker.pki.dir)
  const replicas = []
  for (let i = 1; i <= n; i++) {
    const env = gatewayEnv(broker, tempDir(s, 'ferry-bench-'), {
      FERRY_MQTT_CERT: f.replicaCert(i),
      FERRY_MQTT_KEY: f.replicaKey(i),
      FERRY_MQTT_SHARE_GROUP: 'bench',
      FERRY_INGEST_CONFIRM_AFTER: 'commit',
      FERRY_DB_SYNCHRONOUS: 'FULL',
      FERRY_LOG_LEVEL: 'warn',
    })
    const proc = startFerry(s, ['gateway'], { ...env, FERRY_LOG_LEVEL: 'info' })
    await proc.waitFor(/connected to the broker/)
    const db = new Database(env.FERRY_DB!, { readonly: true })
    s.teardown(() => db.close())
    replicas.push({ proc, count: db.prepare("SELECT count(*) AS n FROM readings WHERE device <> 'warm'").pluck(), warm: db.prepare("SELECT 1 FROM readings WHERE device = 'warm' LIMIT 1") })
  }
  return replicas
}

async function sample(pki: TestPki, load: Load, n: number): Promise<Sample> {
  return withScope(async (s) => {
    const broker = await startTestBroker(s, { pki })
    const replicas = await startReplicas(s, broker, n)
    // Every replica proves it is subscribed: shares go round-robin, so each takes one warm-up reading.
    for (const r of replicas) await warmUp(s, broker, WARM, () => r.warm.get() !== undefined, 30_000)
    const counts = () => replicas.map((r) => r.count.get() as number)
    const cpu0 = replicas.map((r) => cpuMsOf(r.proc.pid)!)
    const started = performance.now()
    const pub = publishLoad(s, broker, load, 100)
    await waitUntil(() => counts().reduce((a, b) => a + b, 0) >= load.total, `${load.total} readings stored by ${n} replica(s)`, 300_000, 5)
    const ms = performance.now() - started
    const cpu = replicas.reduce((sum, r, i) => sum + cpuMsOf(r.proc.pid)! - cpu0[i]!, 0)
    await pub
    return { rate: (load.total / ms) * 1000, shares: counts(), cpuUsPerMsg: (cpu * 1000) / load.total }
  })
}

async function run(ctx: BenchContext): Promise<Result[]> {
  const devices = ['dev1', 'dev2', 'dev3', 'dev4']
  const perDevice = ctx.quick ? 5_000 : 15_000
  const samples = ctx.quick ? 2 : 5
  return withScope(async (s) => {
    const pki = await makePki(s, [...devices, WARM])
    for (const n of [1, 2]) await issueGatewayReplica(pki.dir, n)
    const load = prepareLoad(tempDir(s, 'ferry-bench-load-'), devices, perDevice)
    const one: Sample[] = []
    const two: Sample[] = []
    for (let i = 0; i < samples; i++) {
      one.push(await sample(pki, load, 1))
      two.push(await sample(pki, load, 2))
      ctx.log(`scale-out: sample ${i + 1}/${samples} one replica ${Math.round(one[i]!.rate)} msg/s, two ${Math.round(two[i]!.rate)} msg/s (shares ${two[i]!.shares.join(' / ')})`)
    }
    const cpu = (xs: Sample[]) => Math.round(measure(xs.map((x) => x.cpuUsPerMsg)).median)
    const share = measure(two.map((x) => Math.min(...x.shares) / load.total))
    return [
      result({
        id: 'scale-out.two-replicas',
        title: 'aggregate ingest, two replicas in one share group vs one (synchronous=FULL, confirmations at commit)',
        unit: 'msg/s',
        ferry: measure(two.map((x) => x.rate)),
        baseline: { name: 'one replica, same share group', ...measure(one.map((x) => x.rate)) },
        notes: [
          `${devices.length} mosquitto_pub -l publishers × ${perDevice.toLocaleString('en-US')} readings, QoS 1, 100 in flight each; one fresh broker per sample`,
          `the smaller replica's share of the load: ${(share.median * 100).toFixed(0)}% (Mosquitto assigns shares round-robin)`,
          `gateway CPU per reading, all replicas: one ${cpu(one)} µs, two ${cpu(two)} µs`,
          'broker, publishers and replicas share this machine\'s cores: the ratio is what one host leaves to a second replica, not what a second Pi adds',
        ],
      }),
    ]
  })
}

export const bench: Bench = { name: 'scale-out', description: 'two gateway replicas in one share group vs one: aggregate ingest', needs: ['mosquitto', 'mosquitto_pub'], run }
