// The device simulator against a real mosquitto and the real gateway (in-process), checked where it
// matters: in the gateway's buffer. The central case is issue 8's acceptance line: readings taken
// while the broker is down arrive after it returns, in order, none missing.
import t from 'tap'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { Packet } from 'mqtt'
import { startTestBroker, type TestBroker } from '../helpers/mosquitto.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, spawnFerry } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'
import { loadCoreConfig } from '../../gateway/src/core-config.js'
import { startGateway } from '../../gateway/src/gateway.js'
import { silentLogger } from '../../common/src/logger.js'
import { DeviceSim, type DeviceSimOptions } from '../../device-sim/src/sim.js'
import { buildApp } from '../../ota-server/src/app.js'
import { publishRelease } from '../../ota-server/src/store/publish.js'
import { generateReleaseKey } from '../../ota-server/src/manifest/index.js'

interface T {
  teardown(fn: () => unknown): void
}

interface Row {
  boot: number
  seq: number
  ts_us: number
  led: number | null
}

async function setup(t: T, devices = ['sim1']) {
  const broker = await startTestBroker(t, { devices })
  const dir = tempDir(t)
  const config = loadCoreConfig(gatewayEnv(broker, dir, { FERRY_INGEST_BATCH_DELAY_MS: '10' }))
  const gw = startGateway(config, { log: silentLogger, sinks: [] })
  t.teardown(() => gw.stop())
  // A fresh broker has no session for the gateway yet: anything a device publishes before the
  // gateway's SUBSCRIBE is acknowledged has no subscriber and is rightly discarded. In production the
  // gateway's persistent session already exists; here we wait for its first SUBACK.
  await new Promise<void>((resolve) => {
    const on = (p: Packet) => {
      if (p.cmd !== 'suback') return
      gw.subscriber.client.off('packetreceive', on)
      resolve()
    }
    gw.subscriber.client.on('packetreceive', on)
  })
  const db = new Database(config.FERRY_DB, { readonly: true })
  t.teardown(() => db.close())
  const rows = (device: string): Row[] => db.prepare('SELECT boot, seq, ts_us, led FROM readings WHERE device = ? ORDER BY ts_us').all(device) as Row[]
  /** seq in the order the gateway committed them (its AUTOINCREMENT id). */
  const arrival = (device: string): number[] => (db.prepare('SELECT seq FROM readings WHERE device = ? ORDER BY id').all(device) as Row[]).map((r) => r.seq)
  const events = (device: string, kind: string): string[] =>
    (db.prepare('SELECT payload FROM events WHERE device = ? AND kind = ? ORDER BY id').all(device, kind) as Array<{ payload: Buffer }>).map((r) => r.payload.toString())
  const rowsAtLeast = async (device: string, n: number): Promise<Row[]> => {
    await waitUntil(() => rows(device).length >= n, `${n} readings of ${device} in the gateway buffer`)
    return rows(device)
  }
  return { broker, dir, gw, rows, rowsAtLeast, arrival, events }
}

function sim(t: T, broker: TestBroker, stateDir: string, over: Partial<DeviceSimOptions> = {}): DeviceSim {
  const s = new DeviceSim({
    id: 'sim1',
    url: broker.url,
    tls: broker.pki.tls('sim1'),
    stateDir,
    rate: 0,
    backoff: { baseMs: 50, capMs: 400, stableMs: 1000 },
    log: silentLogger,
    ...over,
  })
  t.teardown(() => s.stop())
  return s
}

const connected = (s: DeviceSim) => (s.connected ? Promise.resolve() : once(s, 'connect').then(() => undefined))

for (const protocolVersion of [4, 5] as const) t.test(`readings taken while the broker is down arrive after it returns, in order, none missing (MQTT ${protocolVersion === 4 ? '3.1.1' : '5'})`, async (t) => {
  const { broker, dir, rowsAtLeast, arrival } = await setup(t)
  const N = 120
  const s = sim(t, broker, join(dir, 'state'), { rate: 40, count: N, protocolVersion })
  await s.start()
  await connected(s)
  await waitUntil(() => s.counters.acked >= 20, '20 readings acknowledged before the outage')

  await broker.stop()
  await waitUntil(() => !s.connected, 'the simulator to notice the broker is gone')
  const atOutage = s.counters.produced
  await waitUntil(() => s.counters.produced >= atOutage + 30, '30 readings taken while the broker is down')
  t.ok(s.counters.buffered >= 30, `readings were buffered during the outage (${s.counters.buffered})`)
  const ackedDuringOutage = s.counters.acked

  await broker.restart()
  const done = await s.finished
  t.ok(ackedDuringOutage < N, 'the run really spanned the outage')
  t.equal(done.acked, N, 'every reading was acknowledged by the broker')
  t.equal(done.dropped, 0, 'nothing was dropped')

  const got = await rowsAtLeast('sim1', N)
  t.equal(got.length, N, 'each reading stored once')
  t.same(
    got.map((r) => r.seq),
    Array.from({ length: N }, (_, i) => i + 1),
    'seq 1..N contiguous, and ordering by point timestamp gives seq order',
  )
  t.same(arrival('sim1'), got.map((r) => r.seq), 'and they reached the gateway in that order')
  t.ok(got.every((r) => r.boot === s.boot), 'all from this boot')
})

t.test('the boot counter persists across a reboot and seq restarts at 1', async (t) => {
  const { broker, dir, rowsAtLeast } = await setup(t)
  const stateDir = join(dir, 'state')
  const first = sim(t, broker, stateDir, { count: 5 })
  await first.start()
  t.equal(first.boot, 1, 'first boot')
  for (let i = 0; i < 5; i++) first.produce()
  await first.finished
  await first.stop()
  const saved = JSON.parse(readFileSync(join(stateDir, 'sim1.json'), 'utf8')) as { boot: number; lastSeq: number }
  t.equal(saved.boot, 1)
  t.equal(saved.lastSeq, 5, 'the last seq is recorded at a clean stop')

  const second = sim(t, broker, stateDir, { count: 3 })
  await second.start()
  t.equal(second.boot, 2, 'boot incremented on restart')
  t.equal(JSON.parse(readFileSync(join(stateDir, 'sim1.json'), 'utf8')).boot, 2, 'and written before the first reading')
  for (let i = 0; i < 3; i++) t.equal(second.produce().seq, i + 1)
  await second.finished

  const got = await rowsAtLeast('sim1', 8)
  t.same(
    got.map((r) => [r.boot, r.seq]),
    [[1, 1], [1, 2], [1, 3], [1, 4], [1, 5], [2, 1], [2, 2], [2, 3]],
    'both boots stored, (device, boot, seq) distinct',
  )
})

t.test('LED commands: retained command applied and echoed, expired ignored, bare integer accepted', async (t) => {
  const { broker, dir, gw, rowsAtLeast, events } = await setup(t)
  // The gateway's own session: the broker takes the client id from the certificate CN, so a second
  // client with the gateway certificate would take over (and break) the gateway's session.
  const gwClient = gw.subscriber.client
  // Published (retained) before the device is up: it must get it when it subscribes.
  await gwClient.publishAsync('sensors/sim1/led/set', JSON.stringify({ cmd: 'c1', brightness: 80 }), { qos: 1, retain: true })

  const s = sim(t, broker, join(dir, 'state'))
  const leds: Array<{ verdict: string; command?: { cmd: string } }> = []
  s.on('led', (e) => leds.push(e))
  await s.start()
  await waitUntil(() => s.ledState.cmd === 'c1', 'the retained command to be applied')
  t.same(s.ledState, { cmd: 'c1', brightness: 80 })
  await waitUntil(() => events('sim1', 'led_state').length >= 1, 'led/state to reach the gateway')
  t.same(JSON.parse(events('sim1', 'led_state')[0]!), { cmd: 'c1', brightness: 80 }, 'echo carries the same cmd')

  const ignored = once(s, 'led')
  await gwClient.publishAsync('sensors/sim1/led/set', JSON.stringify({ cmd: 'c2', brightness: 10, expires: Date.now() - 1000 }), { qos: 1, retain: true })
  const [e] = (await ignored) as [{ verdict: string; command: { cmd: string } }]
  t.equal(e.verdict, 'expired')
  t.equal(e.command.cmd, 'c2')
  t.same(s.ledState, { cmd: 'c1', brightness: 80 }, 'expired command not applied')

  await gwClient.publishAsync('sensors/sim1/led/set', '55', { qos: 1, retain: true })
  await waitUntil(() => s.ledState.brightness === 55, 'the bare integer to be applied')
  await waitUntil(() => events('sim1', 'led_state').length >= 2, 'second echo at the gateway')
  t.same(events('sim1', 'led_state').map((p) => JSON.parse(p)), [{ cmd: 'c1', brightness: 80 }, { cmd: '', brightness: 55 }], 'c2 was never echoed')
  t.equal(s.counters.ledApplied, 2)
  t.equal(s.counters.ledIgnored, 1)

  s.produce()
  t.equal((await rowsAtLeast('sim1', 1))[0]!.led, 55, 'telemetry reports the brightness shown')
  // Clean up the retained command so it cannot leak into another test on the same broker.
  await gwClient.publishAsync('sensors/sim1/led/set', '', { qos: 1, retain: true })
})

t.test('a full offline buffer drops the oldest readings and counts them', async (t) => {
  const { broker, dir, rowsAtLeast } = await setup(t)
  const s = sim(t, broker, join(dir, 'state'), { bufferCapacity: 5, count: 12 })
  const dropped: number[] = []
  s.on('dropped', (r: Array<{ seq: number }>) => dropped.push(...r.map((x) => x.seq)))
  await s.start()
  await connected(s)
  s.goOffline()
  await waitUntil(() => !s.connected, 'the link to go down')
  for (let i = 0; i < 12; i++) s.produce()
  t.equal(s.counters.dropped, 7)
  t.equal(s.counters.buffered, 5)
  t.same(dropped, [1, 2, 3, 4, 5, 6, 7], 'the oldest were dropped, in order')

  s.goOnline()
  const done = await s.finished
  t.equal(done.acked, 5)
  t.equal(done.dropped, 7)
  const got = await rowsAtLeast('sim1', 5)
  t.same(got.map((r) => r.seq), [8, 9, 10, 11, 12], 'the newest five arrived, in order')
})

t.test('the broker publishes the Will when the link is cut, and "offline" on a clean stop', async (t) => {
  const { broker, dir, events } = await setup(t)
  const statuses = (n: number) => waitUntil(() => {
    const e = events('sim1', 'status')
    return e.length >= n ? e : undefined
  }, `${n} status messages at the gateway`)
  const s = sim(t, broker, join(dir, 'state'))
  await s.start()
  t.same(await statuses(1), ['online'])
  s.goOffline()
  t.same(await statuses(2), ['online', 'offline'], 'LWT after an unclean loss')
  s.goOnline()
  t.same(await statuses(3), ['online', 'offline', 'online'])
  await s.stop()
  t.same(await statuses(4), ['online', 'offline', 'online', 'offline'], 'explicit offline before a clean disconnect')
})

t.test('OTA: the device verifies, installs and reports each step on ota/status', async (t) => {
  const { broker, dir, events } = await setup(t)
  const key = generateReleaseKey()
  const otaDir = join(dir, 'ota')
  const imageFile = join(dir, 'fw.bin')
  writeFileSync(imageFile, randomBytes(64_000))
  await publishRelease({ image: imageFile, version: '1.1.0', hw: 'esp32dev', secureVersion: 1, keys: [key.privateKeyPem], dir: otaDir, expiresInMs: 86_400_000 })
  const app = await buildApp({ dir: otaDir, https: { cert: readFileSync(broker.pki.files.serverCert), key: readFileSync(broker.pki.files.serverKey), ca: broker.pki.ca } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const port = (app.server.address() as AddressInfo).port
  const stateDir = join(dir, 'state')

  const s = sim(t, broker, stateDir, { ota: { url: `https://localhost:${port}`, releaseKeys: [key.publicKeyPem], intervalMs: 0 } })
  const result = once(s, 'ota')
  await s.start()
  const [r] = (await result) as [{ kind: string }]
  t.equal(r.kind, 'verified')
  t.same(s.firmware, { version: '1.1.0', secureVersion: 1 }, 'running the new version with the raised floor')
  const saved = JSON.parse(readFileSync(join(stateDir, 'sim1.json'), 'utf8')) as { firmware: unknown; ota: { state: string } }
  t.same(saved.firmware, { version: '1.1.0', secureVersion: 1 }, 'recorded in the state file')
  t.equal(saved.ota.state, 'installed')
  await waitUntil(() => events('sim1', 'ota_status').length >= 3, 'three OTA reports at the gateway')
  t.same(
    events('sim1', 'ota_status').map((p) => (JSON.parse(p) as { state: string; version: string }).state),
    ['downloading', 'verified', 'installed'],
  )
  t.same(await s.checkOta(), { kind: 'up-to-date' }, 'the next check finds nothing newer')
})

t.test('ferry device-sim: --count exits 0 once every reading is acknowledged; SIGTERM stops cleanly', async (t) => {
  const { broker, events, rowsAtLeast } = await setup(t)
  const args = ['device-sim', '--id', 'sim1', '--pki', broker.pki.dir, '--url', broker.url]
  const counted = spawnFerry(t, [...args, '--count', '5', '--rate', '50'], {})
  t.same(await counted.exited, { code: 0, signal: null })
  t.match(await counted.waitFor(/readings published/), /"acked":5/)
  t.same((await rowsAtLeast('sim1', 5)).map((r) => [r.boot, r.seq]), [[1, 1], [1, 2], [1, 3], [1, 4], [1, 5]])
  t.equal(JSON.parse(readFileSync(join(broker.pki.dir, '..', 'sim-state', 'sim1.json'), 'utf8')).boot, 1, 'state beside the PKI folder by default')

  const running = spawnFerry(t, [...args, '--rate', '20'], {})
  await running.waitFor(/connected to the broker/)
  running.child.kill('SIGTERM')
  t.same(await running.exited, { code: 0, signal: null })
  await waitUntil(() => events('sim1', 'status').length >= 4, 'both runs\' status messages')
  t.same(events('sim1', 'status'), ['online', 'offline', 'online', 'offline'], 'each run ends with an explicit offline')
  t.match(await running.waitFor(/readings published/), /"boot":2/)

  const bad = spawnFerry(t, [...args, '--ota-url', 'https://localhost:1'], {})
  t.equal((await bad.exited).code, 2, 'OTA without a release key is a usage error')
  t.match(await bad.waitFor(/release-pub/), /--release-pub/)
})
