// From the sensor to the buffer, across the worst moment: the gateway is killed, the broker queues
// the device's readings for it in memory, and then the broker is killed too, before its autosave.
// Every process here is real: mosquitto with the repo's config, `ferry gateway` and `ferry device-sim`.
// With commit confirmations (the default) nothing is lost; the control run without them shows the
// loss this design closes, so the test cannot pass by accident.
import t, { type Test } from 'tap'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { startTestBroker } from '../helpers/mosquitto.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, spawnFerry } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'

const COUNT = 1500

async function crashRun(t: Test, confirm: boolean) {
  const broker = await startTestBroker(t, { devices: ['dev1'] })
  const dir = tempDir(t)
  const env = gatewayEnv(broker, dir, { FERRY_INGEST_CONFIRM: String(confirm) })
  const stored = () => {
    const db = new Database(env.FERRY_DB!, { readonly: true, fileMustExist: true })
    try {
      return db.prepare("SELECT count(*) AS n, count(DISTINCT seq) AS distinctSeqs, coalesce(max(seq), 0) AS maxSeq FROM readings WHERE device = 'dev1'").get() as { n: number; distinctSeqs: number; maxSeq: number }
    } finally {
      db.close()
    }
  }
  let gw = spawnFerry(t, ['gateway'], env)
  await gw.waitFor(/connected to the broker/)

  const sim = spawnFerry(t, ['device-sim', '--id', 'dev1', '--pki', broker.pki.dir, '--url', broker.url, '--state', join(dir, 'sim'), '--rate', '50', '--count', String(COUNT), '--buffer', String(COUNT), '--ack-timeout', '1s', '--ack-fallback', confirm ? '60s' : '1s'], { FERRY_LOG_LEVEL: 'debug' })
  await waitUntil(() => stored().n >= 200, 'the gateway to store the first 200 readings', 60_000, 50)

  gw.child.kill('SIGKILL')
  await gw.exited
  const atKill = stored().n
  // The device goes on publishing; the broker PUBACKs and queues for the absent gateway, in memory
  // (with confirmations the device keeps its copies; without them it released them on the PUBACK).
  const published = /"seq":(\d+).*"msg":"reading published"/
  const lastSeq = () => Math.max(0, ...sim.lines.map((l) => Number(published.exec(l)?.[1] ?? 0)))
  const queuedFrom = lastSeq()
  await waitUntil(() => lastSeq() >= queuedFrom + 150, '150 more readings published while the gateway is away', 30_000)

  await broker.stop('SIGKILL')
  await broker.restart()
  gw = spawnFerry(t, ['gateway'], env)
  const exit = await sim.exited
  // One session keeps the device's order: once the last reading is stored, whatever the broker still
  // had of the earlier ones has arrived too.
  await waitUntil(() => stored().maxSeq === COUNT, `reading ${COUNT} stored`, 30_000, 50)
  gw.child.kill('SIGTERM')
  await gw.exited
  return { exit, stored: stored(), atKill, summary: sim.lines.find((l) => l.includes('readings: ')) ?? '' }
}

t.test(`gateway SIGKILLed, then the broker SIGKILLed while it queues for the gateway: all ${COUNT} readings stored exactly once`, async (t) => {
  const r = await crashRun(t, true)
  t.ok(r.atKill < COUNT, `the gateway was killed mid-run (${r.atKill} stored)`)
  t.same(r.exit, { code: 0, signal: null }, 'device-sim --count exits 0: every reading confirmed')
  t.match(r.summary, new RegExp(`confirm=gateway confirmed=${COUNT} `), 'confirmed by the gateway, not by the broker')
  t.same(r.stored, { n: COUNT, distinctSeqs: COUNT, maxSeq: COUNT }, `${COUNT} rows, ${COUNT} distinct seqs: none lost, none twice`)
})

t.test('control: the same crash without confirmations loses what the broker held in memory', async (t) => {
  const r = await crashRun(t, false)
  t.match(r.summary, /confirm=broker/, 'the device fell back to the broker PUBACK')
  t.ok(r.stored.n < COUNT, `readings were lost (${COUNT - r.stored.n} of ${COUNT}): the crash really hit queued messages`)
  t.equal(r.stored.n, r.stored.distinctSeqs, 'still none stored twice')
})
