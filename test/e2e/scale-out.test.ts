// Scale-out (docs/scale-out.md): several gateway replicas share one site's devices through an MQTT 5
// shared subscription, and losing one loses nothing. Every process is real: mosquitto with the repo's
// config and ACL, three `ferry gateway` replicas with their own certificates and buffers, influxd 1.x,
// four `ferry device-sim`. A replica is SIGKILLed mid-stream and never restarted; the devices resend
// whatever no living replica confirmed, and confirmations come only after delivery to InfluxDB, so the
// dead replica's buffer is not needed.
import t, { type Test } from 'tap'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { issueGatewayReplica, pkiFiles } from '../../common/src/pki/pki.js'
import { startTestBroker, type TestBroker } from '../helpers/mosquitto.js'
import { startInfluxd, type TestInfluxd } from '../helpers/influxd.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, spawnFerry, type FerryProcess } from '../helpers/gateway.js'
import { freePort } from '../helpers/ports.js'
import { waitUntil } from '../helpers/wait.js'

const DEVICES = ['dev1', 'dev2', 'dev3', 'dev4']
const COUNT = 1000
const GROUP = 'site'

interface Replica {
  n: number
  env: Record<string, string>
  proc: FerryProcess
}

/** Readings stored in a replica's own buffer (its share of the load). */
function storedBy(r: Replica): number {
  const db = new Database(r.env.FERRY_DB!, { readonly: true, fileMustExist: true })
  try {
    return (db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n
  } finally {
    db.close()
  }
}

async function replicaEnv(t: Test, broker: TestBroker, n: number, influxUrl: string): Promise<Record<string, string>> {
  await issueGatewayReplica(broker.pki.dir, n)
  const f = pkiFiles(broker.pki.dir)
  return gatewayEnv(broker, tempDir(t), {
    FERRY_MQTT_CERT: f.replicaCert(n),
    FERRY_MQTT_KEY: f.replicaKey(n),
    FERRY_MQTT_SHARE_GROUP: GROUP,
    FERRY_SINKS: 'influxdb',
    FERRY_INFLUX_URL: influxUrl,
    FERRY_INFLUX_VERSION: '1',
    FERRY_INFLUX_DB: 'ferry',
    FERRY_INFLUX_BATCH_SIZE: '200',
    FERRY_DRAIN_RETRY_MIN_MS: '50',
    FERRY_DRAIN_RETRY_MAX_MS: '500',
  })
}

async function startReplica(t: Test, env: Record<string, string>, n: number): Promise<Replica> {
  const proc = spawnFerry(t, ['gateway'], env)
  await proc.waitFor(/connected to the broker/)
  return { n, env, proc }
}

function startSims(t: Test, broker: TestBroker, dir: string, rate: number) {
  return DEVICES.map((id) =>
    spawnFerry(t, ['device-sim', '--id', id, '--pki', broker.pki.dir, '--url', broker.url, '--state', join(dir, id), '--rate', String(rate), '--count', String(COUNT), '--buffer', String(COUNT), '--ack-timeout', '1s', '--ack-fallback', '10m'], {}),
  )
}

/** Per device: points in InfluxDB, distinct seqs among them, and the seq range. */
async function influxCounts(influx: TestInfluxd): Promise<Record<string, { points: number; seqs: number; min: number; max: number }>> {
  const rows = await influx.select('ferry')
  const out: Record<string, { points: number; seqs: Set<number>; min: number; max: number }> = {}
  for (const r of rows) {
    const d = String(r.device)
    const seq = Number(r.seq)
    const e = (out[d] ??= { points: 0, seqs: new Set(), min: Infinity, max: -Infinity })
    e.points++
    e.seqs.add(seq)
    e.min = Math.min(e.min, seq)
    e.max = Math.max(e.max, seq)
  }
  return Object.fromEntries(Object.entries(out).map(([d, e]) => [d, { points: e.points, seqs: e.seqs.size, min: e.min, max: e.max }]))
}

const everyReadingOnce = Object.fromEntries(DEVICES.map((d) => [d, { points: COUNT, seqs: COUNT, min: 1, max: COUNT }]))

t.test(`three replicas, one SIGKILLed mid-stream and never restarted: InfluxDB holds all ${DEVICES.length} x ${COUNT} readings exactly once`, async (t) => {
  const broker = await startTestBroker(t, { devices: DEVICES })
  const influx = await startInfluxd(t)
  await influx.createDatabase('ferry')
  const replicas: Replica[] = []
  for (const n of [1, 2, 3]) replicas.push(await startReplica(t, await replicaEnv(t, broker, n, influx.url), n))

  const sims = startSims(t, broker, tempDir(t), 100)
  const [victim, ...survivors] = replicas as [Replica, Replica, Replica]
  await waitUntil(() => storedBy(victim) >= 150, 'the first replica to store 150 readings', 60_000, 50)
  victim.proc.child.kill('SIGKILL')
  await victim.proc.exited
  const victimStored = storedBy(victim)
  const aliveAtKill = survivors.map(storedBy)

  const exits = await Promise.all(sims.map((s) => s.exited))
  t.same(exits, sims.map(() => ({ code: 0, signal: null })), 'every device-sim exits 0: each of its readings was confirmed')
  for (const s of sims) t.match(s.lines.find((l) => l.includes('readings: ')) ?? '', new RegExp(`confirm=gateway confirmed=${COUNT} `))

  // Every confirmation followed delivery, so InfluxDB already holds everything.
  t.same(await influxCounts(influx), everyReadingOnce, 'per device: 1000 points, 1000 distinct seqs 1..1000 (a resend to another replica overwrote the same point)')
  for (const [i, r] of survivors.entries()) {
    const after = storedBy(r)
    t.ok(after > aliveAtKill[i]! && after >= 100, `replica ${r.n} carried load after the kill (${aliveAtKill[i]} → ${after} readings)`)
  }
  t.ok(victimStored >= 150 && victimStored < DEVICES.length * COUNT, `the killed replica had stored part of the stream (${victimStored}), left in its buffer for good`)
})

t.test('a replica that comes back after its session ended delivers its backlog: nothing lost, nothing twice', async (t) => {
  const broker = await startTestBroker(t, { devices: DEVICES })
  const influx = await startInfluxd(t)
  await influx.createDatabase('ferry')
  // Replica 2's InfluxDB address leads nowhere at first: it commits its share but cannot deliver it,
  // so its devices hear no confirmation for it and resend those readings (to either replica).
  const deadEnd = `http://127.0.0.1:${await freePort()}`
  const one = await startReplica(t, await replicaEnv(t, broker, 1, influx.url), 1)
  const twoEnv = await replicaEnv(t, broker, 2, deadEnd)
  let two = await startReplica(t, twoEnv, 2)

  const sims = startSims(t, broker, tempDir(t), 200)
  await waitUntil(() => storedBy(two) >= 200, 'replica 2 to hold 200 undelivered readings', 60_000, 50)
  two.proc.child.kill('SIGKILL')
  await two.proc.exited
  const backlog = storedBy(two)

  const exits = await Promise.all(sims.map((s) => s.exited))
  t.same(exits, sims.map(() => ({ code: 0, signal: null })), 'every device-sim exits 0: replica 1 confirmed everything, resends included')
  t.same(await influxCounts(influx), everyReadingOnce, 'all readings in InfluxDB once, through replica 1')
  t.ok(storedBy(one) >= DEVICES.length * COUNT - backlog, `replica 1 stored its share and the resends of replica 2's (${storedBy(one)})`)

  // Replica 2 returns with a new session (its old one ended with its connection) and a working sink:
  // it drains the backlog it kept; every point is one InfluxDB already holds, so nothing doubles.
  two = await startReplica(t, { ...twoEnv, FERRY_INFLUX_URL: influx.url }, 2)
  const cursor = () => {
    const db = new Database(twoEnv.FERRY_DB!, { readonly: true, fileMustExist: true })
    try {
      return db.prepare("SELECT (SELECT cursor FROM sink_state WHERE name = 'influxdb') AS c, (SELECT max(id) FROM readings) AS hi").get() as { c: number; hi: number }
    } finally {
      db.close()
    }
  }
  await waitUntil(() => cursor().c === cursor().hi, `replica 2 to deliver its backlog of ${backlog}`, 60_000, 100)
  t.ok(backlog >= 200, `replica 2 came back with ${backlog} readings it had never delivered`)
  t.same(await influxCounts(influx), everyReadingOnce, 'still every reading exactly once')
})

t.test('a replica that hangs without closing its connection stops receiving shares within 1.5 × keepalive + 7 s; nothing is lost', async (t) => {
  const KEEPALIVE_S = 5
  const broker = await startTestBroker(t, { devices: DEVICES })
  const influx = await startInfluxd(t)
  await influx.createDatabase('ferry')
  const withKeepalive = async (n: number) => ({ ...(await replicaEnv(t, broker, n, influx.url)), FERRY_MQTT_KEEPALIVE_S: String(KEEPALIVE_S) })
  const hung = await startReplica(t, await withKeepalive(1), 1)
  const alive = await startReplica(t, await withKeepalive(2), 2)
  t.teardown(() => void hung.proc.child.kill('SIGKILL'))

  const sims = startSims(t, broker, tempDir(t), 100)
  await waitUntil(() => storedBy(hung) >= 100, 'the first replica to store 100 readings', 60_000, 50)
  // SIGSTOP: the process stops answering but its socket stays open (a hung host, a pulled cable):
  // only the keepalive tells the broker.
  hung.proc.child.kill('SIGSTOP')
  const stoppedAt = Date.now()
  const dropped = /Client ferry-gateway-1 has exceeded timeout, disconnecting/
  await waitUntil(() => broker.logs.some((l) => dropped.test(l)), 'the broker to drop the hung replica', 30_000, 50)
  const afterS = (Date.now() - stoppedAt) / 1000
  // Mosquitto 2.0 checks keepalives every 6 s, in whole seconds (src/keepalive.c): docs/scale-out.md#sessions.
  t.ok(afterS >= KEEPALIVE_S * 1.5 - 1 && afterS <= KEEPALIVE_S * 1.5 + 7, `dropped after ${afterS.toFixed(1)} s: by keepalive, within 1.5 × ${KEEPALIVE_S} s + 7 s`)

  const exits = await Promise.all(sims.map((s) => s.exited))
  t.same(exits, sims.map(() => ({ code: 0, signal: null })), 'every device-sim exits 0: what the hung replica held or never got was resent to the other')
  t.same(await influxCounts(influx), everyReadingOnce, 'every reading in InfluxDB once')
  t.ok(storedBy(alive) > 0)
})
