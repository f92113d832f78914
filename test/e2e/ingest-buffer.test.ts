// Ingest acceptance against a real mosquitto and real SQLite: ring bound, bad input, corrupt file,
// full disk. The gateway runs in-process here so its state can be observed; the kill and shutdown
// tests (ingest-kill.test.ts) run it as a separate process.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { startTestBroker } from '../helpers/mosquitto.js'
import { mountTmpfs, tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'
import { loadCoreConfig } from '../../gateway/src/core-config.js'
import { startGateway, type Gateway } from '../../gateway/src/gateway.js'
import { queryStatus } from '../../gateway/src/buffer/index.js'
import { silentLogger } from '../../common/src/logger.js'

interface TT {
  teardown(fn: () => unknown): void
}

async function gateway(t: TT, env: Record<string, string>): Promise<Gateway> {
  const gw = startGateway(loadCoreConfig(env), { log: silentLogger, sinks: [] })
  t.teardown(() => gw.stop())
  await waitUntil(() => gw.state.brokerConnected, 'the gateway to connect')
  return gw
}

const count = (gw: Gateway, sql = 'SELECT count(*) AS n FROM readings') => (gw.buffer.db.prepare(sql).get() as { n: number }).n

t.test('a full ring keeps the newest rows and counts exactly what it dropped', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const gw = await gateway(t, gatewayEnv(broker, dir, { FERRY_BUFFER_MAX_ROWS: '1000' }))
  const dev = await deviceClient(t, broker, 'dev1')
  await publishReadings(dev, 'dev1', 1, 1500, { window: 1 })
  await waitUntil(() => gw.metrics.messagesAcked.get().then((m) => (m.values[0]?.value ?? 0) >= 1500), '1,500 acknowledgements')
  t.equal(count(gw), 1000)
  const seqs = gw.buffer.db.prepare('SELECT min(seq) AS lo, max(seq) AS hi FROM readings').get() as { lo: number; hi: number }
  t.same(seqs, { lo: 501, hi: 1500 }, 'the newest 1,000 remain')
  const s = queryStatus(gw.buffer.db)
  t.same(s.dropped, { total: 500, byDevice: { dev1: 500 } })
  await gw.stop()
  // The counts survive a restart.
  const db = new Database(join(dir, 'buffer.db'), { readonly: true })
  t.same(queryStatus(db).dropped.total, 500)
  db.close()
})

t.test('1,000+ bad payloads all become dead letters with a reason; good messages between them are stored', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  // The whole dead-letter bound for this one device (by default it may hold 10% of it: dead-letter-flood.test.ts).
  const gw = await gateway(t, gatewayEnv(broker, dir, { FERRY_INGEST_MAX_PAYLOAD_BYTES: '512', FERRY_DEADLETTER_DEVICE_SHARE: '100' }))
  const dev = await deviceClient(t, broker, 'dev1')
  // Deterministic generator: every kind of wrong we can think of, rotated with random bytes.
  let seed = 42
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const junk = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rnd() * 256)))
  const badTelemetry: Array<string | Buffer> = [
    '', 'null', '[]', '"text"', '42', '{', '{"seq":1}', '{"seq":-1,"boot":1,"pot":1,"switch":0}',
    '{"seq":1.5,"boot":1,"pot":1,"switch":0}', '{"seq":1,"boot":1,"pot":4096,"switch":0}', '{"seq":1,"boot":1,"pot":1,"switch":2}',
    '{"seq":1,"boot":1,"pot":"1","switch":0}', '{"seq":1,"boot":1,"pot":1,"switch":0,"led":101}', '{"seq":1,"boot":1,"pot":1,"switch":0,"ts":"now"}',
    '{"seq":"1","boot":1,"pot":1,"switch":0}', '{"seq":1,"boot":null,"pot":1,"switch":0}', 'x'.repeat(600),
  ]
  const bad: Array<{ topic: string; payload: string | Buffer }> = []
  for (let i = 0; i < 1100; i++) {
    const r = i % 4
    if (r === 0) bad.push({ topic: 'sensors/dev1/telemetry', payload: badTelemetry[i % badTelemetry.length]! })
    else if (r === 1) bad.push({ topic: 'sensors/dev1/telemetry', payload: junk(1 + Math.floor(rnd() * 300)) })
    else if (r === 2) bad.push({ topic: i % 8 === 2 ? 'sensors/dev1/status' : 'sensors/dev1/led/state', payload: i % 3 ? 'maybe' : junk(20) })
    else bad.push({ topic: 'sensors/dev1/ota/status', payload: i % 2 ? '{"state":"exploded","version":"1","deployment":"d"}' : junk(40) })
  }
  let seq = 0
  for (const [i, b] of bad.entries()) {
    await dev.publishAsync(b.topic, b.payload as Buffer, { qos: 1 })
    if (i % 10 === 0) {
      seq++
      await dev.publishAsync('sensors/dev1/telemetry', JSON.stringify({ seq, boot: 1, pot: seq, switch: 1 }), { qos: 1 })
    }
  }
  await waitUntil(() => count(gw, 'SELECT count(*) AS n FROM dead_letters') >= bad.length && count(gw) >= seq, 'all messages stored')
  t.equal(count(gw, 'SELECT count(*) AS n FROM dead_letters'), bad.length, 'every bad message is a dead letter')
  t.equal(count(gw, "SELECT count(*) AS n FROM dead_letters WHERE reason = '' OR reason IS NULL"), 0, 'every dead letter has a reason')
  t.equal(count(gw), seq, 'every good reading between them was stored')
  const reasons = gw.buffer.db.prepare('SELECT DISTINCT reason FROM dead_letters').all() as Array<{ reason: string }>
  t.ok(reasons.some((r) => /pot/.test(r.reason)) && reasons.some((r) => /not JSON/.test(r.reason)) && reasons.some((r) => /bytes/.test(r.reason)), 'reasons name what is wrong')
  const raw = gw.buffer.db.prepare("SELECT payload, payload_bytes AS received FROM dead_letters WHERE reason LIKE 'payload is%' LIMIT 1").get() as { payload: Buffer; received: number }
  t.same({ kept: raw.payload.toString(), received: raw.received }, { kept: 'x'.repeat(512), received: 600 }, 'the raw bytes are kept, an oversized payload up to FERRY_INGEST_MAX_PAYLOAD_BYTES')
  t.equal(queryStatus(gw.buffer.db).deadLetters.discarded.total, 0, 'none discarded')
  t.ok(gw.state.brokerConnected, 'the gateway is still up')
})

t.test('duplicates redelivered by the broker are stored once', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const gw = await gateway(t, gatewayEnv(broker, dir))
  const dev = await deviceClient(t, broker, 'dev1')
  await publishReadings(dev, 'dev1', 1, 100)
  await publishReadings(dev, 'dev1', 50, 150) // 50..100 again, as a device resending after a reconnect would
  await publishReadings(dev, 'dev1', 1, 10, { boot: 2 }) // a new boot restarts seq: not duplicates
  await waitUntil(() => count(gw) >= 160 && gw.metrics.duplicates.get().then((m) => (m.values[0]?.value ?? 0) >= 51), 'all messages committed')
  t.equal(count(gw), 160)
  t.equal(count(gw, 'SELECT count(*) AS n FROM (SELECT DISTINCT device, boot, seq FROM readings)'), 160)
  const ts = gw.buffer.db.prepare("SELECT ts_us FROM readings WHERE device = 'dev1' ORDER BY id").all() as Array<{ ts_us: number }>
  t.ok(ts.every((r, i) => i === 0 || r.ts_us > ts[i - 1]!.ts_us), 'point timestamps are strictly increasing per device')
})

t.test('a corrupt database is moved aside, a fresh one started, and the error shown in status', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  writeFileSync(join(dir, 'buffer.db'), Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(4096, 0xab)]))
  const gw = await gateway(t, gatewayEnv(broker, dir))
  const moved = readdirSync(dir).filter((f) => f.startsWith('buffer.db.corrupt-'))
  t.equal(moved.length, 1, 'the damaged file is kept for inspection')
  t.equal(gw.state.lastError?.code, 'FERRY_ERR_BUFFER_CORRUPT')
  const dev = await deviceClient(t, broker, 'dev1')
  await publishReadings(dev, 'dev1', 1, 10)
  await waitUntil(() => count(gw) === 10, 'the fresh buffer to take readings')
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../cli/main.ts'), 'status', '--db', join(dir, 'buffer.db')], { encoding: 'utf8' })
  t.match(out, /corrupt database moved to .*buffer\.db\.corrupt-/)
  t.match(out, /buffered: +10 readings/)
})

t.test('a full disk stops acknowledgements and ingest resumes by itself when space returns', async (t) => {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a small tmpfs and needs root')
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const mnt = mountTmpfs(t, dir, 'small', 'size=4m')
  const gw = await gateway(t, { ...gatewayEnv(broker, dir), FERRY_DB: join(mnt, 'buffer.db') })
  const dev = await deviceClient(t, broker, 'dev1')
  await publishReadings(dev, 'dev1', 1, 100)
  await waitUntil(() => count(gw) === 100, 'the first 100 readings')
  // Fill the file system to the last byte.
  const filler = join(mnt, 'filler')
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' })
  } catch {
    // dd exits non-zero at ENOSPC, which is the point
  }
  // The broker still accepts from the device (it keeps the messages for the gateway).
  await publishReadings(dev, 'dev1', 101, 3000)
  await waitUntil(() => gw.state.ingestPaused?.reason === 'disk-full', 'the gateway to notice the full disk', 30_000)
  t.equal(gw.state.lastError?.code, 'FERRY_ERR_BUFFER_FULL_DISK')
  t.notOk(gw.state.brokerConnected, 'no more acknowledgements: the gateway has stepped back from the broker')
  rmSync(filler)
  await waitUntil(() => gw.state.ingestPaused === null && count(gw) === 3000, 'ingest to resume and catch up', 60_000)
  t.equal(count(gw, 'SELECT count(*) AS n FROM (SELECT DISTINCT seq FROM readings)'), 3000, 'every reading exactly once, none lost')
  t.ok(existsSync(join(mnt, 'buffer.db')))
})
