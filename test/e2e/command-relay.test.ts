// Cloud → LED, end to end: a fake ThingSpeak TalkBack (documented API), the TalkBack poller, the LED
// relay inside a real gateway, a real mosquitto with mutual TLS and the repo ACL, and a device client.
// Fails if a queued command does not reach the device as a retained QoS 1 led/set with the right
// brightness, if an expired one is delivered, if the echo does not confirm it, or if a stale
// retained command survives its expiry.
import t from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { startTestBroker, type TestBroker } from '../helpers/mosquitto.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'
import { loadCoreConfig } from '../../gateway/src/core-config.js'
import { startGateway, type Gateway } from '../../gateway/src/gateway.js'
import { silentLogger } from '../../common/src/logger.js'
import { FakeTalkBack } from '../fakes/talkback.js'
import { TalkBackPoller } from '../../gateway/src/led/talkback.js'

interface TT {
  teardown(fn: () => unknown): void
}

const TB = { talkbackId: '4242', apiKey: 'TBKEY0123456789A' }
const TTL = 5 * 60_000

interface Led {
  topic: string
  payload: string
  retain: boolean
  qos: number
}

async function setup(t: TT, opts: { intervalMs?: number } = {}) {
  const broker = await startTestBroker(t)
  const gw = startGateway(loadCoreConfig(gatewayEnv(broker, tempDir(t))), { log: silentLogger, sinks: [] })
  t.teardown(() => gw.stop())
  await waitUntil(() => gw.state.brokerConnected, 'the gateway to connect')
  const fake = new FakeTalkBack(TB)
  const baseUrl = await fake.start()
  t.teardown(() => fake.close())
  const poller = new TalkBackPoller({ ...TB, baseUrl, intervalMs: opts.intervalMs ?? 100, defaultDevice: 'dev1', ttlMs: TTL, relay: gw.commands, log: silentLogger, ready: () => gw.state.brokerConnected })
  t.teardown(() => poller.stop())
  return { broker, gw, fake, poller }
}

/** A device subscribed to its led/set that records every message. */
async function ledDevice(t: TT, broker: TestBroker, id = 'dev1'): Promise<{ client: MqttClient; got: Led[]; next(): Promise<Led> }> {
  const client = await deviceClient(t, broker, id)
  const got: Led[] = []
  const waiters: Array<(m: Led) => void> = []
  client.on('message', (topic, payload, packet) => {
    const m = { topic, payload: payload.toString(), retain: packet.retain, qos: packet.qos }
    got.push(m)
    waiters.shift()?.(m)
  })
  await client.subscribeAsync(`sensors/${id}/led/set`, { qos: 1 })
  return { client, got, next: () => new Promise((r) => waiters.push(r)) }
}

const commandsOf = (gw: Gateway) => gw.commands.list({ limit: 100 })

t.test('a queued TalkBack command reaches the device as a retained QoS 1 led/set and the echo confirms it', async (t) => {
  const { broker, gw, fake, poller } = await setup(t)
  const dev = await ledDevice(t, broker)
  const queued = fake.add('LED=80')
  const arrived = dev.next()
  poller.start()
  const m = await arrived
  t.equal(m.topic, 'sensors/dev1/led/set')
  t.equal(m.qos, 1)
  const body = JSON.parse(m.payload) as { cmd: string; brightness: number; expires: number }
  t.equal(body.brightness, 80)
  t.match(body.cmd, /^c[0-9a-z]+$/)
  t.ok(Math.abs(body.expires - (Date.parse(queued.created_at) + TTL)) < 1000, 'expires = queued time + TTL')
  t.same(fake.pending(), [], 'the command left the TalkBack queue')
  await waitUntil(() => commandsOf(gw)[0]?.state === 'published', 'the broker to acknowledge the publish')
  t.match(commandsOf(gw)[0], { source: 'talkback', sourceRef: String(queued.id), raw: 'LED=80', device: 'dev1', brightness: 80 })

  // It is retained: a device that connects later (a reboot) gets it with the retain flag.
  await dev.client.endAsync()
  const again = await ledDevice(t, broker)
  await waitUntil(() => again.got.length > 0, 'the retained led/set')
  t.equal(again.got[0]!.retain, true)
  t.equal(JSON.parse(again.got[0]!.payload).cmd, body.cmd)

  await again.client.publishAsync('sensors/dev1/led/state', JSON.stringify({ cmd: body.cmd, brightness: 80 }), { qos: 1, retain: true })
  await waitUntil(() => commandsOf(gw)[0]?.state === 'confirmed', 'the echo to confirm the command')
  const rec = gw.commands.store.get(body.cmd)!
  t.equal(rec.confirmedBrightness, 80)
  t.ok(rec.confirmedAt! >= rec.publishedAt!)
})

t.test('an expired TalkBack command is not delivered; the next valid one is', async (t) => {
  const { broker, gw, fake, poller } = await setup(t)
  const dev = await ledDevice(t, broker)
  fake.add('{"device":"dev1","brightness":10}', { createdAt: Date.now() - TTL - 60_000 }) // waited too long in the cloud
  fake.add(`{"device":"dev1","brightness":20,"expires":${Date.now() - 1}}`) // carries its own, past expiry
  fake.add('{"device":"dev1","brightness":30}')
  const arrived = dev.next()
  poller.start()
  const m = await arrived
  t.equal(JSON.parse(m.payload).brightness, 30, 'the first message the device sees is the valid command')
  await waitUntil(() => commandsOf(gw).length === 3 && fake.pending().length === 0, 'all three commands handled')
  const [valid, past, old] = commandsOf(gw)
  t.match(old, { brightness: 10, state: 'expired', reason: /expired before delivery/, publishedAt: null })
  t.match(past, { brightness: 20, state: 'expired', publishedAt: null })
  t.match(valid, { brightness: 30 })
  t.same(dev.got.map((g) => JSON.parse(g.payload).brightness), [30], 'the expired ones never reached the broker')
})

t.test('a newer command replaces the older retained one; when it expires the retained command is removed', async (t) => {
  const { broker, gw, fake, poller } = await setup(t)
  fake.add('{"device":"dev1","brightness":50}')
  fake.add(`{"device":"dev1","brightness":70,"expires":${Date.now() + 2500}}`)
  poller.start()
  await waitUntil(() => commandsOf(gw).filter((c) => c.publishedAt !== null).length === 2, 'both commands published')
  const [newer, older] = commandsOf(gw)
  t.match(older, { brightness: 50, state: 'superseded', reason: `replaced by ${newer!.cmd}` })

  const dev = await ledDevice(t, broker)
  await waitUntil(() => dev.got.length > 0, 'the retained led/set')
  t.same(dev.got.map((g) => [JSON.parse(g.payload).brightness, g.retain]), [[70, true]], 'only the newer command is retained')

  // At expiry the gateway publishes an empty retained payload: the subscribed device sees it, ...
  await waitUntil(() => dev.got.length === 2, 'the retained command to be cleared', 10_000)
  t.equal(dev.got[1]!.payload, '')
  await waitUntil(() => gw.commands.store.get(newer!.cmd)?.clearedAt, 'the clear to be recorded')
  t.equal(gw.commands.store.get(newer!.cmd)!.state, 'expired', 'never confirmed, so expired')

  // ... and a device connecting later gets no stale command: the first led/set it sees is a new one.
  await dev.client.endAsync()
  const later = await ledDevice(t, broker)
  fake.add('LED=5')
  await waitUntil(() => later.got.length > 0, 'the next command')
  t.same(later.got.map((g) => JSON.parse(g.payload).brightness), [5])
})

t.test('the broker drops an expired retained command by itself while the gateway is down (MQTT 5 message expiry)', async (t) => {
  const { broker, gw, fake, poller } = await setup(t)
  fake.add(`{"device":"dev1","brightness":44,"expires":${Date.now() + 1500}}`)
  poller.start()
  await waitUntil(() => commandsOf(gw)[0]?.state === 'published', 'the command published')
  const expiresAt = commandsOf(gw)[0]!.expiresAt!
  await poller.stop()
  await gw.stop() // no gateway left to clear it
  await waitUntil(() => Date.now() > expiresAt + 1100, 'the expiry to pass', 10_000, 100)
  // Proof of absence by ordering: mosquitto sends retained messages right after the SUBACK, so a
  // message published after subscribing arrives after any retained one.
  const dev = await ledDevice(t, broker)
  const gwClient = await mqtt.connectAsync(broker.url, { ...broker.pki.tls('gateway'), clientId: 'probe-gw', reconnectPeriod: 0, protocolVersion: 5 })
  t.teardown(() => gwClient.endAsync(true))
  await gwClient.publishAsync('sensors/dev1/led/set', '{"cmd":"probe","brightness":1}', { qos: 1 })
  await waitUntil(() => dev.got.length > 0, 'the probe')
  t.same(dev.got.map((g) => JSON.parse(g.payload).cmd), ['probe'], 'no stale retained command before the probe')
})

t.test('the TalkBack queue is left alone while the broker is down, so commands wait in the cloud', async (t) => {
  const { broker, gw, fake, poller } = await setup(t)
  await broker.stop()
  await waitUntil(() => !gw.state.brokerConnected, 'the gateway to notice')
  fake.add('LED=60')
  poller.start()
  await waitUntil(() => poller.status().state === 'waiting-for-broker', 'the poller to wait')
  t.equal(fake.executeCalls().length, 0, 'no command was taken off the queue')
  t.equal(fake.pending().length, 1)
  const restarted = await broker.restart()
  await waitUntil(() => gw.state.brokerConnected, 'the gateway to reconnect', 30_000)
  const dev = await ledDevice(t, restarted)
  await waitUntil(() => dev.got.length > 0, 'the command after the broker came back', 30_000)
  t.equal(JSON.parse(dev.got[0]!.payload).brightness, 60)
})
