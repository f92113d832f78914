// Commit confirmations (docs/delivery.md): after each group commit the gateway tells each device which
// of its readings are stored, on sensors/<id>/ack. A device may release a reading only if *that*
// reading is named, so every confirmation here is checked against the database at the moment it
// arrives, through a second connection that sees only committed transactions.
import t, { type Test } from 'tap'
import Database from 'better-sqlite3'
import type { MqttClient } from 'mqtt'
import { startTestBroker, type TestBroker } from '../helpers/mosquitto.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings } from '../helpers/gateway.js'
import { loadCoreConfig } from '../../gateway/src/core-config.js'
import { startGateway, type Gateway } from '../../gateway/src/gateway.js'
import { silentLogger } from '../../common/src/logger.js'

interface Ack {
  boot: number
  seqs: Array<[number, number]>
}

async function gatewayWithBroker(t: Test, extra: Record<string, string> = {}): Promise<{ broker: TestBroker; gw: Gateway; db: string }> {
  const broker = await startTestBroker(t)
  const config = loadCoreConfig(gatewayEnv(broker, tempDir(t), extra))
  const gw = startGateway(config, { log: silentLogger, sinks: [] })
  t.teardown(() => gw.stop())
  await new Promise<void>((resolve) => (gw.state.brokerConnected ? resolve() : gw.subscriber.client.once('connect', () => resolve())))
  return { broker, gw, db: config.FERRY_DB }
}

/** Every seq named by confirmations for `boot`, each checked against the committed rows when it arrives. */
function watchAcks(t: Test, client: MqttClient, db: string, device: string) {
  const reader = new Database(db, { readonly: true })
  t.teardown(() => reader.close())
  const stored = reader.prepare('SELECT (SELECT count(*) FROM readings WHERE device = ? AND boot = ? AND seq = ?) + (SELECT count(*) FROM dead_letters WHERE topic = ? AND CAST(payload AS TEXT) LIKE ?) AS n')
  const confirmed = new Set<string>()
  const early: string[] = []
  const messages: Array<{ payload: string; retain: boolean }> = []
  let onChange = () => {}
  client.on('message', (topic, payload, packet) => {
    if (topic !== `sensors/${device}/ack`) return
    messages.push({ payload: payload.toString(), retain: packet.retain })
    const ack = JSON.parse(payload.toString()) as Ack
    for (const [from, to] of ack.seqs) {
      for (let seq = from; seq <= to; seq++) {
        const { n } = stored.get(device, ack.boot, seq, `sensors/${device}/telemetry`, `%"seq":${seq},"boot":${ack.boot},%`) as { n: number }
        if (n === 0) early.push(`${ack.boot}/${seq}`)
        confirmed.add(`${ack.boot}/${seq}`)
      }
    }
    onChange()
  })
  return {
    confirmed,
    early,
    messages,
    until: (done: () => boolean) =>
      new Promise<void>((resolve) => {
        onChange = () => done() && resolve()
        onChange()
      }),
  }
}

t.test('each device hears exactly which of its readings are committed, gaps and resends included', async (t) => {
  const { broker, gw, db } = await gatewayWithBroker(t, { FERRY_INGEST_BATCH_DELAY_MS: '5' })
  const dev1 = await deviceClient(t, broker, 'dev1')
  const dev2 = await deviceClient(t, broker, 'dev2')
  await dev1.subscribeAsync('sensors/dev1/ack', { qos: 0 })
  await dev2.subscribeAsync('sensors/+/ack', { qos: 0 }) // the ACL narrows this to its own
  const acks1 = watchAcks(t, dev1, db, 'dev1')
  const acks2 = watchAcks(t, dev2, db, 'dev2')

  // seq 6 is "lost on the way": never published. A confirmation must not cover it.
  await publishReadings(dev1, 'dev1', 1, 5)
  await publishReadings(dev1, 'dev1', 7, 9)
  await publishReadings(dev2, 'dev2', 1, 3, { boot: 4 })
  // A bad reading that still names its boot and seq is committed as a dead letter, and confirmed.
  await dev1.publishAsync('sensors/dev1/telemetry', JSON.stringify({ seq: 10, boot: 1, pot: 99999, switch: 0 }), { qos: 1 })
  const want1 = ['1/1', '1/2', '1/3', '1/4', '1/5', '1/7', '1/8', '1/9', '1/10']
  await acks1.until(() => want1.every((k) => acks1.confirmed.has(k)))
  await acks2.until(() => acks2.confirmed.size >= 3)

  // A resend of a stored reading (the device missed its confirmation) is confirmed again.
  const before = acks1.messages.length
  await publishReadings(dev1, 'dev1', 3, 3)
  await acks1.until(() => acks1.messages.length > before)
  t.match(acks1.messages.at(-1)!.payload, '{"boot":1,"seqs":[[3,3]]}', 'the duplicate is confirmed again')

  t.same([...acks1.confirmed].sort(), [...want1].sort(), 'dev1: exactly the committed readings; never seq 6')
  t.same([...acks2.confirmed].sort(), ['4/1', '4/2', '4/3'], 'dev2: only its own, with its boot')
  t.same(acks1.early, [], 'no confirmation named a reading before its commit')
  t.same(acks2.early, [])
  t.ok(acks1.messages.every((m) => /^\{"boot":\d+,"seqs":\[(\[\d+,\d+\],?)+\]\}$/.test(m.payload)), 'every payload is the documented JSON')
  t.equal((await gw.metrics.confirmations.get()).values[0]?.value, acks1.messages.length + acks2.messages.length, 'ferry_confirmations_sent_total counts them')
})

t.test('the last confirmation is retained: a reconnecting device learns at once that its gateway confirms', async (t) => {
  const { broker, db } = await gatewayWithBroker(t)
  const first = await deviceClient(t, broker, 'dev1')
  await first.subscribeAsync('sensors/dev1/ack', { qos: 0 })
  const acks = watchAcks(t, first, db, 'dev1')
  await publishReadings(first, 'dev1', 1, 2)
  await acks.until(() => acks.confirmed.has('1/2'))
  await first.endAsync()

  const again = await deviceClient(t, broker, 'dev1')
  const retained = new Promise<{ payload: string; retain: boolean }>((resolve) => again.once('message', (_topic, payload, packet) => resolve({ payload: payload.toString(), retain: packet.retain })))
  await again.subscribeAsync('sensors/dev1/ack', { qos: 0 })
  const got = await retained
  t.ok(got.retain, 'delivered as a retained message on subscribe')
  t.equal(got.payload, acks.messages.at(-1)!.payload, 'the last confirmation sent')
})

t.test('FERRY_INGEST_CONFIRM=false: no confirmations (devices fall back to the broker PUBACK)', async (t) => {
  const { broker, gw, db } = await gatewayWithBroker(t, { FERRY_INGEST_CONFIRM: 'false' })
  const dev1 = await deviceClient(t, broker, 'dev1')
  await dev1.subscribeAsync(['sensors/dev1/ack', 'sensors/dev1/led/set'], { qos: 1 })
  const topics: string[] = []
  const ledSet = new Promise<void>((resolve) =>
    dev1.on('message', (topic) => {
      topics.push(topic)
      if (topic.endsWith('/led/set')) resolve()
    }),
  )
  await publishReadings(dev1, 'dev1', 1, 5)
  const reader = new Database(db, { readonly: true })
  t.teardown(() => reader.close())
  await new Promise<void>((resolve) => {
    const poll = () => ((reader.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n === 5 ? resolve() : setTimeout(poll, 10))
    poll()
  })
  // The gateway's session keeps its order: had it published a confirmation for those commits, it
  // would arrive before this LED command.
  await gw.commands.send({ device: 'dev1', brightness: 40, expiresAt: Date.now() + 60_000, source: 'api' })
  await ledSet
  t.same(topics, ['sensors/dev1/led/set'], 'the LED command arrived and no confirmation before it')
})
