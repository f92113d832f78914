import t from 'tap'
import { EventEmitter } from 'node:events'
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient, type Packet } from 'mqtt'
import { silentLogger } from '../../../common/src/logger.js'
import { assertAckHook, createSubscriber, type SubscriberOptions } from './subscriber.js'
import { SUBSCRIPTIONS, SYS_DROPPED } from './topics.js'

/**
 * The part of MQTT.js's client the subscriber touches, with MQTT.js 5's shapes: every outgoing packet
 * goes through `_sendPacket(packet, cb, cbStorePut, noStore)`, and `deliver` does what
 * handlers/publish.ts does for a QoS 1 message (call `handleMessage`, then send the PUBACK from its
 * callback through `_sendPacket`).
 */
class FakeClient extends EventEmitter {
  options: IClientOptions
  connected = false
  /** Packets that reached the wire. */
  wire: Packet[] = []
  subscriptions: Array<{ topic: string | string[]; qos: number }> = []
  suback: Error | null = null
  ended = 0
  /** How many messages MQTT.js would now hand over next (handleMessage called back). */
  handedOver = 0

  constructor(opts: IClientOptions) {
    super()
    this.options = { ...opts }
  }

  // Four parameters, like MQTT.js 5's `_sendPacket(packet, cb, cbStorePut, noStore)`.
  _sendPacket(packet: Packet, cb?: (err?: Error) => void, _cbStorePut?: unknown, _noStore?: boolean): void {
    this.wire.push(packet)
    cb?.()
  }

  handleMessage(_packet: IPublishPacket, callback: (err?: Error) => void): void {
    callback()
  }

  connect() {
    return this
  }

  subscribe(topic: string | string[], opts: { qos: number }, cb?: (err: Error | null) => void) {
    this.subscriptions.push({ topic, qos: opts.qos })
    if (cb) queueMicrotask(() => cb(this.suback))
    return this
  }

  end(_force?: boolean, cb?: () => void) {
    this.ended++
    this.connected = false
    cb?.()
    return this
  }

  async endAsync() {
    this.end()
  }

  reconnect() {
    return this
  }

  /** The broker's CONNACK. */
  connack(sessionPresent: boolean) {
    this.connected = true
    this.emit('connect', { cmd: 'connack', sessionPresent, returnCode: 0 })
  }

  /** The connection drops. */
  drop() {
    this.connected = false
    this.emit('close')
  }

  /** A PUBLISH from the broker, handled as MQTT.js 5 handles it. */
  deliver(topic: string, payload: string, qos: 0 | 1, messageId?: number) {
    const packet = { cmd: 'publish', topic, payload: Buffer.from(payload), qos, messageId, retain: false, dup: false } as IPublishPacket
    this.handleMessage(packet, (err) => {
      if (err) return
      this.handedOver++
      if (qos === 1) this._sendPacket({ cmd: 'puback', messageId, reasonCode: 0 } as Packet)
    })
  }

  pubacks(): number[] {
    return this.wire.filter((p) => p.cmd === 'puback').map((p) => (p as { messageId: number }).messageId)
  }
}

interface Received {
  topic: string
  payload: string
  release: () => void
}

function setup(t: { teardown(fn: () => unknown): void }, extra: Partial<SubscriberOptions> = {}) {
  let fake: FakeClient | undefined
  const received: Received[] = []
  const connection: boolean[] = []
  const sub = createSubscriber(
    {
      url: 'mqtts://broker.invalid:8883',
      tls: { rejectUnauthorized: true },
      clientId: 'ferry-gateway',
      keepaliveS: 30,
      sessionExpiryS: 3600,
      receiveMaximum: 64,
      log: silentLogger,
      onMessage: (topic, payload, release) => received.push({ topic, payload: payload.toString(), release }),
      onConnectionChange: (up) => connection.push(up),
      ...extra,
    },
    (_url, opts) => (fake = new FakeClient(opts)) as unknown as MqttClient,
  )
  t.teardown(() => sub.stop(() => undefined))
  return { sub, fake: fake!, received, connection }
}

t.test('start-up check: the installed MQTT.js has the ack hook in the expected shape', async (t) => {
  // manualConnect: nothing is opened (and there is nothing to end).
  const client = mqtt.connect('mqtts://127.0.0.1:1', { manualConnect: true })
  t.doesNotThrow(() => assertAckHook(client))
})

t.test('start-up check: a client without the hook is refused with FERRY_ERR_MQTT_INCOMPATIBLE', async (t) => {
  const changed = (alter: (c: Record<string, unknown>) => void) => (_url: string, opts: IClientOptions) => {
    const c = new FakeClient(opts)
    alter(c as unknown as Record<string, unknown>)
    return c as unknown as MqttClient
  }
  const opts = { url: 'mqtts://x', tls: { rejectUnauthorized: true }, clientId: 'g', keepaliveS: 30, sessionExpiryS: 60, receiveMaximum: 8, log: silentLogger, onMessage: () => undefined }
  const refused = { code: 'FERRY_ERR_MQTT_INCOMPATIBLE', message: /MQTT\.js changed.*acknowledgements could be sent before commit.*pinned in package\.json/s }
  t.throws(() => createSubscriber(opts, changed((c) => (c._sendPacket = undefined))), { ...refused, message: /has no _sendPacket method/ })
  t.throws(() => createSubscriber(opts, changed((c) => (c._sendPacket = (p: unknown) => p))), { ...refused, message: /_sendPacket with 1 parameters/ })
  t.throws(() => createSubscriber(opts, changed((c) => (c.handleMessage = undefined))), { ...refused, message: /has no handleMessage method/ })
  t.throws(() => createSubscriber(opts, changed((c) => (c.handleMessage = (a: unknown, b: unknown, d: unknown) => [a, b, d]))), { ...refused, message: /handleMessage with 3 parameters/ })
  t.throws(() => assertAckHook({}), refused)
})

t.test('the session is MQTT 5, persistent, not yet connected, with receiveMaximum from the options', async (t) => {
  const { fake } = setup(t)
  t.match(fake.options, { manualConnect: true, clean: false, protocolVersion: 5, clientId: 'ferry-gateway', properties: { sessionExpiryInterval: 3600, receiveMaximum: 64 } })
})

t.test('the PUBACK is withheld until release(), while MQTT.js may hand over the next message', async (t) => {
  const { fake, received } = setup(t)
  fake.connack(true)
  fake.deliver('sensors/dev1/telemetry', '{"seq":1}', 1, 11)
  fake.deliver('sensors/dev1/telemetry', '{"seq":2}', 1, 12)
  t.same(received.map((r) => [r.topic, r.payload]), [['sensors/dev1/telemetry', '{"seq":1}'], ['sensors/dev1/telemetry', '{"seq":2}']])
  t.equal(fake.handedOver, 2, 'handleMessage called back at once: the next message is not held up')
  t.same(fake.pubacks(), [], 'the PUBACK MQTT.js tried to send was swallowed')
  received[1]!.release()
  received[0]!.release()
  t.same(fake.pubacks(), [12, 11], 'each PUBACK leaves when its message is released')
})

t.test('other packets pass through untouched', async (t) => {
  const { sub, fake } = setup(t)
  fake.connack(true)
  ;(sub.client as unknown as FakeClient)._sendPacket({ cmd: 'pingreq' } as Packet)
  t.same(fake.wire.map((p) => p.cmd), ['pingreq'])
})

t.test('a release after the connection closed is dropped (the broker redelivers on the new one)', async (t) => {
  const { fake, received } = setup(t)
  fake.connack(true)
  fake.deliver('sensors/dev1/telemetry', '{}', 1, 1)
  fake.drop()
  fake.connack(true)
  received[0]!.release()
  t.same(fake.pubacks(), [], 'the old connection\'s packet id means nothing on the new one')
  fake.deliver('sensors/dev1/telemetry', '{}', 1, 1)
  received[1]!.release()
  t.same(fake.pubacks(), [1])
})

t.test('a release while disconnected sends nothing', async (t) => {
  const { fake, received } = setup(t)
  fake.connack(true)
  fake.deliver('sensors/dev1/telemetry', '{}', 1, 5)
  fake.connected = false
  received[0]!.release()
  t.same(fake.wire, [])
})

t.test('QoS 0 messages have nothing to acknowledge', async (t) => {
  const { fake, received } = setup(t)
  fake.connack(true)
  fake.deliver('sensors/dev1/status', 'online', 0)
  received[0]!.release()
  t.same(fake.wire, [])
})

t.test("the broker's dropped counter is reported, not ingested", async (t) => {
  const dropped: number[] = []
  const { fake, received } = setup(t, { onBrokerDropped: (n) => dropped.push(n) })
  fake.connack(true)
  fake.deliver(SYS_DROPPED, '42', 0)
  fake.deliver(SYS_DROPPED, 'n/a', 0)
  t.same(dropped, [42])
  t.same(received, [])
  t.equal(fake.handedOver, 2)
})

t.test('a new session subscribes first and is ready only after the SUBACK; a kept session is ready at once', async (t) => {
  const fresh = setup(t)
  fresh.fake.connack(false)
  t.same(fresh.connection, [], 'not ready before the SUBACK')
  t.same(fresh.fake.subscriptions, [
    { topic: SYS_DROPPED, qos: 0 },
    { topic: [...SUBSCRIPTIONS], qos: 1 },
  ])
  await new Promise((r) => setImmediate(r))
  t.same(fresh.connection, [true])

  const kept = setup(t)
  kept.fake.connack(true)
  t.same(kept.connection, [true])
  t.same(kept.fake.subscriptions, [{ topic: SYS_DROPPED, qos: 0 }], 'the broker kept the device subscriptions')
  kept.fake.drop()
  t.same(kept.connection, [true, false])
})

t.test('stop takes no more messages, flushes (commit + release), then disconnects', async (t) => {
  const { sub, fake, received } = setup(t)
  fake.connack(true)
  fake.deliver('sensors/dev1/telemetry', '{}', 1, 7)
  const order: string[] = []
  const endAsync = fake.endAsync.bind(fake)
  fake.endAsync = async () => {
    order.push('disconnect')
    await endAsync()
  }
  await sub.stop(() => {
    order.push('flush')
    received[0]!.release()
  })
  t.same(order, ['flush', 'disconnect'])
  t.same(fake.pubacks(), [7], 'what was pending was acknowledged before the DISCONNECT')
  fake.connected = true
  fake.deliver('sensors/dev1/telemetry', '{}', 1, 8)
  t.equal(received.length, 1, 'nothing is taken after stop')
  t.equal(fake.handedOver, 1, 'and MQTT.js is not called back, so the broker keeps the message')
})

t.test('FERRY_MQTT_SHARE_GROUP: subscribes through $share/<group>/ with a session that ends at disconnect', async (t) => {
  const { fake, connection } = setup(t, { shareGroup: 'site' })
  t.equal(fake.options.clean, true, 'clean start: no session survives the replica')
  t.equal((fake.options.properties as { sessionExpiryInterval?: number }).sessionExpiryInterval, 0, 'session expiry 0: it ends with the connection')
  fake.connack(false)
  await new Promise((r) => setImmediate(r))
  const device = fake.subscriptions.find((s) => Array.isArray(s.topic))
  t.same(device?.topic, SUBSCRIPTIONS.map((f) => `$share/site/${f}`))
  t.same(connection, [true])
})

t.test('without a share group: the persistent session and the plain topic filters', async (t) => {
  const { fake } = setup(t)
  t.equal(fake.options.clean, false)
  t.equal((fake.options.properties as { sessionExpiryInterval?: number }).sessionExpiryInterval, 3600)
  fake.connack(false)
  await new Promise((r) => setImmediate(r))
  t.same(fake.subscriptions.find((s) => Array.isArray(s.topic))?.topic, [...SUBSCRIPTIONS])
})

t.test('a broker without shared subscriptions (SUBACK 0x9e) is reported naming FERRY_MQTT_SHARE_GROUP', async (t) => {
  const refused: Array<{ code: string; message: string }> = []
  const { fake, connection } = setup(t, { shareGroup: 'site', onRefused: (e) => refused.push(e) })
  fake.suback = Object.assign(new Error('Subscribe error: Shared Subscriptions not supported'), { code: 0x9e })
  fake.connack(false)
  await new Promise((r) => setImmediate(r))
  t.equal(refused.length, 1)
  t.equal(refused[0]?.code, 'FERRY_ERR_MQTT_SHARE_REFUSED')
  t.match(refused[0]?.message, /FERRY_MQTT_SHARE_GROUP=site/)
  t.same(connection, [], 'not ready: nothing is received')
})

t.test('a subscription refused as not authorised (0x87) names the ACL', async (t) => {
  const refused: Array<{ code: string; message: string }> = []
  const { fake } = setup(t, { onRefused: (e) => refused.push(e) })
  fake.suback = Object.assign(new Error('Subscribe error: Not authorized'), { code: 0x87 })
  fake.connack(false)
  await new Promise((r) => setImmediate(r))
  t.equal(refused[0]?.code, 'FERRY_ERR_MQTT_SUBSCRIBE_DENIED')
  t.match(refused[0]?.message, /mosquitto\/acl/)
})
