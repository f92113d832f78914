// The device simulator against a real mosquitto and the real gateway (in-process), checked where it
// matters: in the gateway's buffer. The central case is issue 8's acceptance line: readings taken
// while the broker is down arrive after it returns, in order, none missing. And docs/delivery.md: a
// reading leaves the device only when the gateway confirms it committed it, or, with a gateway that
// does not confirm, on the broker's PUBACK after the fallback time.
import t from 'tap'
import { once } from 'node:events'
import { Writable } from 'node:stream'
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
import { createLogger, type Logger } from '../../common/src/logger.js'
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

async function setup(t: T, devices = ['sim1'], env: Record<string, string> = {}) {
  const broker = await startTestBroker(t, { devices })
  const dir = tempDir(t)
  const config = loadCoreConfig(gatewayEnv(broker, dir, { FERRY_INGEST_BATCH_DELAY_MS: '10', ...env }))
  /** Starts a gateway on the buffer (again, after a stop). */
  const startGw = async () => {
    const gw = startGateway(config, { log: silentLogger, sinks: [] })
    t.teardown(() => gw.stop())
    let sessionPresent: boolean | undefined
    gw.subscriber.client.once('connect', (connack: { sessionPresent: boolean }) => (sessionPresent = connack.sessionPresent))
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
    return Object.assign(gw, { sessionPresent })
  }
  const gw = await startGw()
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
  return { broker, dir, gw, startGw, rows, rowsAtLeast, arrival, events }
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

t.test('ferry device-sim: --count exits 0 once the gateway has confirmed every reading (confirm=gateway); SIGTERM stops cleanly', async (t) => {
  const { broker, events, rows } = await setup(t)
  const args = ['device-sim', '--id', 'sim1', '--pki', broker.pki.dir, '--url', broker.url]
  const counted = spawnFerry(t, [...args, '--count', '5', '--rate', '50'], {})
  t.same(await counted.exited, { code: 0, signal: null })
  const summary = await counted.waitFor(/readings: /)
  t.match(summary, /confirm=gateway confirmed=5 /, 'the last line says who confirmed')
  t.match(summary, /"acked":5,"confirmed":5/)
  t.same(rows('sim1').map((r) => [r.boot, r.seq]), [[1, 1], [1, 2], [1, 3], [1, 4], [1, 5]], 'all stored, once each, before the simulator exited')
  t.equal(JSON.parse(readFileSync(join(broker.pki.dir, '..', 'sim-state', 'sim1.json'), 'utf8')).boot, 1, 'state beside the PKI folder by default')

  const running = spawnFerry(t, [...args, '--rate', '20'], {})
  await running.waitFor(/connected to the broker/)
  running.child.kill('SIGTERM')
  t.same(await running.exited, { code: 0, signal: null })
  await waitUntil(() => events('sim1', 'status').length >= 4, 'both runs\' status messages')
  t.same(events('sim1', 'status'), ['online', 'offline', 'online', 'offline'], 'each run ends with an explicit offline')
  t.match(await running.waitFor(/readings: /), /"boot":2/)

  const bad = spawnFerry(t, [...args, '--ota-url', 'https://localhost:1'], {})
  t.equal((await bad.exited).code, 2, 'OTA without a release key is a usage error')
  t.match(await bad.waitFor(/release-pub/), /--release-pub/)
})

t.test('a reading leaves the device only when the gateway confirms it: held and probed through a gateway outage, released by its confirmations', async (t) => {
  const { broker, dir, gw, startGw, rows } = await setup(t)
  const s = sim(t, broker, join(dir, 'state'), { count: 30, ackTimeoutMs: 200 })
  const modes: string[] = []
  s.on('confirm-mode', (m: string) => modes.push(m))
  await s.start()
  await connected(s)
  for (let i = 0; i < 10; i++) s.produce()
  await waitUntil(() => s.counters.confirmed === 10, 'the first 10 readings confirmed')
  t.same(rows('sim1').map((r) => r.seq), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'and committed')

  await gw.stop()
  for (let i = 0; i < 20; i++) s.produce()
  await waitUntil(() => s.counters.probes >= 2 && s.counters.inflight === 0, 'two probes while the gateway is away')
  t.equal(s.counters.published, 30, 'the broker took every reading')
  t.equal(s.counters.acked, 10, 'but its PUBACK released none of them')
  t.equal(s.counters.buffered, 20)
  t.equal(s.counters.confirm, 'gateway')

  await startGw()
  const done = await s.finished
  t.equal(done.confirmed, 30, 'all confirmed once the gateway is back')
  t.equal(done.dropped, 0)
  t.same(modes, [], 'the device never fell back to the broker\'s PUBACK')
  t.same(rows('sim1').map((r) => r.seq), Array.from({ length: 30 }, (_, i) => i + 1), 'each stored once, probes and all')
})

t.test('readings the broker acknowledged and then lost in a crash are sent again after the reconnect (rule 4)', async (t) => {
  const { broker, dir, gw, startGw, rows } = await setup(t)
  const s = sim(t, broker, join(dir, 'state'), { count: 20 })
  await s.start()
  await connected(s)
  for (let i = 0; i < 5; i++) s.produce()
  await waitUntil(() => s.counters.confirmed === 5, 'the first 5 readings confirmed')
  await gw.stop()
  for (let i = 0; i < 15; i++) s.produce()
  await waitUntil(() => s.counters.published === 20 && s.counters.inflight === 0, 'the broker to acknowledge the other 15')
  s.goOffline() // so that the device comes back only once the gateway has subscribed again

  // Killed long before its first autosave (30 s): the 15 it queued for the gateway are gone.
  await broker.stop('SIGKILL')
  await broker.restart()
  const restarted = await startGw()
  t.equal(restarted.sessionPresent, false, 'the broker really lost the gateway\'s session and the 15 it queued (else this test proves nothing)')
  t.equal(rows('sim1').length, 5)
  t.equal(s.counters.buffered, 15, 'the device still holds them')

  s.goOnline()
  const done = await s.finished
  t.equal(done.confirmed, 20)
  t.ok(done.resent >= 15, `sent again after the reconnect (${done.resent} resends)`)
  t.same(rows('sim1').map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i + 1), 'none missing, each stored once')
})

t.test('after a reconnect every unconfirmed reading goes again exactly once, in order: none first from MQTT.js\'s session (rule 4)', async (t) => {
  const { broker, dir, gw, rows } = await setup(t)
  const delivered: number[] = []
  gw.subscriber.client.on('message', (topic: string, payload: Buffer) => {
    if (topic === 'sensors/sim1/telemetry') delivered.push((JSON.parse(payload.toString()) as { seq: number }).seq)
  })
  const s = sim(t, broker, join(dir, 'state'), { count: 5 })
  await s.start()
  await connected(s)
  broker.process.kill('SIGSTOP') // no PUBACKs: the 5 stay in flight, in MQTT.js's session store
  t.teardown(() => broker.process.kill('SIGCONT'))
  for (let i = 0; i < 5; i++) s.produce()
  await waitUntil(() => s.counters.inflight === 5, '5 publishes in flight')
  s.goOffline()
  broker.process.kill('SIGCONT') // the broker may still pass on what it had read of the old connection

  s.goOnline()
  const done = await s.finished
  t.equal(done.confirmed, 5)
  // Per-publisher order: whatever the old connection delivered comes first, then the resends; once the
  // 5 resends are confirmed, everything sent before them has arrived. A copy from MQTT.js's own store
  // would show up as a sixth-to-tenth extra delivery.
  const originals = delivered.slice(0, -5)
  t.same(delivered.slice(-5), [1, 2, 3, 4, 5], 'resent once each, oldest first')
  t.same(originals, [1, 2, 3, 4, 5].slice(0, originals.length), `before them only the old connection's ${originals.length} originals, in order`)
  t.same(rows('sim1').map((r) => r.seq), [1, 2, 3, 4, 5])
})

t.test('unreadable messages on ack are ignored with a warning and release nothing; a well-formed one releases', async (t) => {
  // A gateway that does not confirm by itself: the test speaks for it, on the gateway's connection.
  const { broker, dir, gw } = await setup(t, ['sim1'], { FERRY_INGEST_CONFIRM: 'false' })
  const warnings: string[] = []
  const log: Logger = createLogger({ level: 'warn', destination: new Writable({ write: (chunk: Buffer, _enc, cb) => cb(void warnings.push(chunk.toString())) }) })
  const s = sim(t, broker, join(dir, 'state'), { count: 3, log })
  await s.start()
  await connected(s)
  for (let i = 0; i < 3; i++) s.produce()
  await waitUntil(() => s.counters.published === 3 && s.counters.inflight === 0, 'the broker to acknowledge 3 readings')
  const boot = s.boot
  const bad = ['', 'not json', `{"boot":${boot}}`, `{"boot":${boot},"seqs":[[3,1]]}`, `{"boot":${boot},"seqs":[[1,2],[2,3]]}`, `{"boot":"${boot}","seqs":[[1,3]]}`, `[${boot},[[1,3]]]`]
  for (const payload of bad) await gw.subscriber.client.publishAsync('sensors/sim1/ack', payload, { qos: 1 })
  await waitUntil(() => s.counters.ackInvalid === bad.length - 1, 'the device to read them all')
  t.equal(s.counters.buffered, 3, 'nothing released')
  t.equal(warnings.filter((l) => /ignored an unreadable commit confirmation/.test(l)).length, bad.length - 1, 'one warning each; the empty payload (a cleared retained message) is no confirmation at all')

  await gw.subscriber.client.publishAsync('sensors/sim1/ack', JSON.stringify({ boot, seqs: [[1, 3]] }), { qos: 1 })
  const done = await s.finished
  t.equal(done.confirmed, 3, 'the well-formed one released all three')
  t.equal(done.confirm, 'gateway')
})

t.test('ferry device-sim --count with a gateway that does not confirm (FERRY_INGEST_CONFIRM=false): falls back after --ack-fallback and exits 0 with confirm=broker', async (t) => {
  const { broker, rows } = await setup(t, ['sim1'], { FERRY_INGEST_CONFIRM: 'false' })
  const started = Date.now()
  const p = spawnFerry(t, ['device-sim', '--id', 'sim1', '--pki', broker.pki.dir, '--url', broker.url, '--count', '5', '--rate', '50', '--ack-timeout', '300ms', '--ack-fallback', '2s'], {})
  t.same(await p.exited, { code: 0, signal: null })
  t.ok(Date.now() - started >= 2000, 'not before the fallback time')
  t.equal(p.lines.filter((l) => /the gateway does not confirm commits/.test(l)).length, 1, 'the fallback is logged once')
  const summary = await p.waitFor(/readings: /)
  t.match(summary, /confirm=broker confirmed=0 /, 'the last line says the broker released them')
  t.match(summary, /"acked":5,"confirmed":0/)
  t.match(summary, /"probes":[1-9]/, 'probes went out before the fallback')
  t.same(rows('sim1').map((r) => r.seq), [1, 2, 3, 4, 5], 'every reading stored once, probes and all')
})
