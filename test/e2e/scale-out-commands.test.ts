// LED commands with several gateway replicas (docs/scale-out.md#led-commands): two replicas in one
// share group poll the same ThingSpeak TalkBack queue (the fake follows the documented API: execute
// hands out the next command and removes it). Real mosquitto with the repo's config and ACL, real
// replica certificates, real gateways; a device client records every led/set it receives.
// Fails if a command is relayed by both replicas, or by neither.
import t from 'tap'
import { startTestBroker } from '../helpers/mosquitto.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'
import { loadCoreConfig } from '../../gateway/src/core-config.js'
import { startGateway, type Gateway } from '../../gateway/src/gateway.js'
import { silentLogger } from '../../common/src/logger.js'
import { issueGatewayReplica, pkiFiles } from '../../common/src/pki/pki.js'
import { FakeTalkBack } from '../fakes/talkback.js'
import { TalkBackPoller } from '../../gateway/src/led/talkback.js'
import { buildApp } from '../../gateway/src/api/app.js'

const TB = { talkbackId: '4242', apiKey: 'TBKEY0123456789A' }
const COMMANDS = 40

t.test(`two replicas polling one TalkBack queue relay each of ${COMMANDS} commands exactly once`, async (t) => {
  const broker = await startTestBroker(t, { devices: ['dev1', 'dev2'] })
  const fake = new FakeTalkBack(TB)
  const baseUrl = await fake.start()
  t.teardown(() => fake.close())

  // Every led/set the devices receive, live.
  const received: string[] = []
  for (const id of ['dev1', 'dev2']) {
    const dev = await deviceClient(t, broker, id)
    dev.on('message', (_topic, payload, packet) => {
      if (!packet.retain && payload.length) received.push((JSON.parse(payload.toString()) as { cmd: string }).cmd)
    })
    await dev.subscribeAsync(`sensors/${id}/led/set`, { qos: 1 })
  }

  const replicas: Array<{ gw: Gateway; poller: TalkBackPoller }> = []
  for (const n of [1, 2]) {
    await issueGatewayReplica(broker.pki.dir, n)
    const f = pkiFiles(broker.pki.dir)
    const gw = startGateway(loadCoreConfig(gatewayEnv(broker, tempDir(t), { FERRY_MQTT_CERT: f.replicaCert(n), FERRY_MQTT_KEY: f.replicaKey(n), FERRY_MQTT_SHARE_GROUP: 'site' })), { log: silentLogger, sinks: [] })
    t.teardown(() => gw.stop())
    await waitUntil(() => gw.state.brokerConnected, `replica ${n} to connect`)
    const poller = new TalkBackPoller({ ...TB, baseUrl, intervalMs: 20, defaultDevice: 'dev1', ttlMs: 300_000, relay: gw.commands, log: silentLogger, ready: () => gw.state.brokerConnected })
    t.teardown(() => poller.stop())
    replicas.push({ gw, poller })
  }

  const queued = Array.from({ length: COMMANDS }, (_, i) => fake.add(JSON.stringify({ device: i % 2 ? 'dev2' : 'dev1', brightness: i })))
  for (const r of replicas) r.poller.start()

  const relayed = () => replicas.map((r) => r.gw.commands.list({ limit: 1000 }).filter((c) => c.source === 'talkback'))
  await waitUntil(() => fake.pending().length === 0 && relayed().flat().length >= COMMANDS && relayed().flat().every((c) => c.state !== 'pending'), 'every queued command taken and settled', 30_000, 20)
  const published = relayed().flat().filter((c) => c.publishedAt !== null)
  await waitUntil(() => received.length >= published.length, `the devices to receive the ${published.length} published commands`, 10_000)

  const [one = [], two = []] = relayed()
  t.ok(one.length > 0 && two.length > 0, `both replicas took commands (${one.length} and ${two.length})`)
  const refs = [...one, ...two].map((c) => c.sourceRef)
  t.same([...refs].sort((a, b) => Number(a) - Number(b)), queued.map((q) => String(q.id)), 'each TalkBack command recorded once, by one replica: none lost, none doubled')
  // A newer command for a device may supersede an older one before it is published (led/relay.ts).
  t.ok(published.length >= COMMANDS / 2, `${published.length} were published`)
  t.equal(new Set(received).size, received.length, 'no command reached a device twice')
  t.same(new Set(received), new Set(published.map((c) => c.cmd)), 'the devices received exactly the published commands')

  // Each replica's API says that it shows only its share.
  const api = await buildApp({ gateway: replicas[1]!.gw, readOnly: true })
  t.teardown(() => api.close())
  const devices = (await api.inject('/api/devices')).json()
  t.match(devices.scope, { gateway: 'replica', group: 'site', replica: 'ferry-gateway-2', note: /one of several gateways/ })
})
