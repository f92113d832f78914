// Foundation acceptance: the repo's mosquitto config, run for real with a real PKI, talks mutual TLS
// only, refuses every identity it should, and enforces the per-device ACL.
import t from 'tap'
import { join } from 'node:path'
import { startTestBroker } from '../helpers/mosquitto.js'
import { makePki } from '../helpers/pki.js'
import { connectOnce, collect } from '../helpers/mqtt.js'
import { issueDevice, issueGatewayReplica, revokeDevice } from '../../common/src/pki/pki.js'
import { readFileSync } from 'node:fs'

t.test('a device publishes QoS 1 and the gateway certificate receives it', async (t) => {
  const broker = await startTestBroker(t)
  const gw = await connectOnce(t, broker.url, { ...broker.pki.tls('gateway'), clientId: 'ferry-gateway' })
  await gw.subscribeAsync('sensors/+/telemetry', { qos: 1 })
  const dev = await connectOnce(t, broker.url, { ...broker.pki.tls('dev1'), clientId: 'dev1' })
  const got = collect(gw, 1)
  await dev.publishAsync('sensors/dev1/telemetry', '{"seq":1,"boot":1,"pot":10,"switch":0}', { qos: 1 })
  t.same((await got).map((m) => [m.topic, m.payload]), [['sensors/dev1/telemetry', '{"seq":1,"boot":1,"pot":10,"switch":0}']])
})

t.test('refused at connect', async (t) => {
  const broker = await startTestBroker(t)
  const good = await connectOnce(t, broker.url, broker.pki.tls('dev2'))
  t.ok(good.connected, 'control: a valid device certificate connects')

  t.test('without a client certificate', async (t) => {
    await t.rejects(connectOnce(t, broker.url, { ca: broker.pki.ca }))
  })
  t.test('with a certificate from another CA', async (t) => {
    const other = await makePki(t, ['dev1'])
    await t.rejects(connectOnce(t, broker.url, { ...other.tls('dev1'), ca: broker.pki.ca }))
  })
  t.test('with an expired certificate', async (t) => {
    await issueDevice(broker.pki.dir, 'old', { notBefore: new Date(Date.now() - 3 * 86400e3), days: 1 })
    await t.rejects(connectOnce(t, broker.url, broker.pki.tls('old')))
  })
  t.test('with a revoked certificate after revoke and a reload', async (t) => {
    await issueDevice(broker.pki.dir, 'gone')
    const tls = broker.pki.tls('gone')
    const before = await connectOnce(t, broker.url, tls)
    t.ok(before.connected, 'control: connects before revocation')
    await revokeDevice(broker.pki.dir, 'gone')
    await broker.reload()
    await t.rejects(connectOnce(t, broker.url, tls))
    const still = await connectOnce(t, broker.url, broker.pki.tls('dev2'))
    t.ok(still.connected, 'other devices still connect after the reload')
  })
  t.test('a plain (non-TLS) MQTT client', async (t) => {
    await t.rejects(connectOnce(t, `mqtt://127.0.0.1:${broker.port}`, { connectTimeout: 2000 }))
  })
})

t.test('the ACL confines each device to its own topics', async (t) => {
  const broker = await startTestBroker(t)
  const gw = await connectOnce(t, broker.url, broker.pki.tls('gateway'))
  await gw.subscribeAsync('sensors/+/telemetry', { qos: 1 })
  const dev1 = await connectOnce(t, broker.url, broker.pki.tls('dev1'))

  t.test('dev1 cannot publish into sensors/dev2/...', async (t) => {
    const got = collect(gw, 1)
    // The forbidden publish is still PUBACKed (MQTT 3.1.1 cannot say no), then a permitted marker
    // follows on the same connection: the broker keeps per-publisher order, so had the forbidden
    // message been delivered, it would arrive first.
    await dev1.publishAsync('sensors/dev2/telemetry', 'forged', { qos: 1 })
    await dev1.publishAsync('sensors/dev1/telemetry', 'marker', { qos: 1 })
    t.same((await got).map((m) => m.topic + ' ' + m.payload), ['sensors/dev1/telemetry marker'])
  })

  t.test('dev1 cannot read sensors/dev2/led/set', async (t) => {
    await dev1.subscribeAsync(['sensors/dev2/led/set', 'sensors/dev1/led/set'], { qos: 1 })
    const got = collect(dev1, 1)
    await gw.publishAsync('sensors/dev2/led/set', '{"cmd":"a","brightness":1}', { qos: 1 })
    await gw.publishAsync('sensors/dev1/led/set', '{"cmd":"b","brightness":2}', { qos: 1 })
    t.same((await got).map((m) => m.topic), ['sensors/dev1/led/set'])
  })

  t.test('dev1 reads only its own commit confirmations and cannot forge any', async (t) => {
    const dev2 = await connectOnce(t, broker.url, broker.pki.tls('dev2'))
    await dev1.subscribeAsync(['sensors/dev2/ack', 'sensors/dev1/ack'], { qos: 0 })
    await dev2.subscribeAsync('sensors/dev2/ack', { qos: 0 })
    const got1 = collect(dev1, 1)
    const got2 = collect(dev2, 1)
    // A device publishing a confirmation (for itself or another) is discarded; the gateway's get through.
    await dev1.publishAsync('sensors/dev2/ack', '{"boot":1,"seqs":[[1,999]]}', { qos: 1 })
    await dev1.publishAsync('sensors/dev1/ack', '{"boot":1,"seqs":[[1,999]]}', { qos: 1 })
    await gw.publishAsync('sensors/dev2/ack', '{"boot":1,"seqs":[[2,2]]}', { qos: 1 })
    await gw.publishAsync('sensors/dev1/ack', '{"boot":1,"seqs":[[1,1]]}', { qos: 1 })
    t.same((await got1).map((m) => m.topic + ' ' + m.payload), ['sensors/dev1/ack {"boot":1,"seqs":[[1,1]]}'])
    t.same((await got2).map((m) => m.topic + ' ' + m.payload), ['sensors/dev2/ack {"boot":1,"seqs":[[2,2]]}'])
  })

  t.test('a device cannot read other devices\' telemetry', async (t) => {
    const dev2 = await connectOnce(t, broker.url, broker.pki.tls('dev2'))
    await dev2.subscribeAsync(['sensors/+/telemetry', 'sensors/dev2/led/set'], { qos: 1 })
    const got = collect(dev2, 1)
    await dev1.publishAsync('sensors/dev1/telemetry', 'private', { qos: 1 })
    await gw.publishAsync('sensors/dev2/led/set', 'marker', { qos: 1 })
    t.same((await got).map((m) => m.payload), ['marker'])
  })
})

t.test('the native config is the repo config with only paths, port and log destination changed', async (t) => {
  const broker = await startTestBroker(t)
  const native = readFileSync(broker.configFile, 'utf8')
  const repo = readFileSync(join(import.meta.dirname, '../../mosquitto/mosquitto.conf'), 'utf8')
  const strip = (s: string) => s.split('\n').filter((l) => l && !l.startsWith('#'))
  const a = strip(repo)
  const b = strip(native)
  t.equal(a.length, b.length)
  const changed = a.filter((l, i) => l !== b[i]).map((l) => l.split(' ')[0])
  t.same([...new Set(changed)].sort(), ['acl_file', 'cafile', 'certfile', 'crlfile', 'keyfile', 'listener', 'log_dest', 'persistence_location'])
  t.notMatch(native, /^listener 1883/m)
  t.match(native, /^require_certificate true$/m)
})

t.test('a gateway replica certificate (ferry-gateway-2) has the gateway\'s rights, through a shared subscription too (issue 17)', async (t) => {
  // Intent: the ACL's replica blocks work on the real broker, and Mosquitto 2.0 authorises a
  // $share/<group>/<filter> subscription by each delivered topic (the filter without the prefix), so a
  // replica in a share group receives device telemetry. Fails if the replica blocks are missing from
  // mosquitto/acl or if the broker refused or filtered shared subscriptions.
  const broker = await startTestBroker(t)
  const replica = await issueGatewayReplica(broker.pki.dir, 2)
  const gw2 = await connectOnce(t, broker.url, { ca: broker.pki.ca, cert: readFileSync(replica.cert), key: readFileSync(replica.key), clientId: 'ferry-gateway-2', protocolVersion: 5 })
  const granted = await gw2.subscribeAsync('$share/g/sensors/+/telemetry', { qos: 1 })
  t.same(granted.map((g) => g.qos), [1], 'SUBACK grants QoS 1')
  const dev1 = await connectOnce(t, broker.url, broker.pki.tls('dev1'))
  // A missing right shows up as a message that never arrives: each case fails after 15 s.

  t.test('receives a device\'s telemetry', { timeout: 15_000 }, async (t) => {
    const got = collect(gw2, 1)
    await dev1.publishAsync('sensors/dev1/telemetry', '{"seq":1,"boot":1,"pot":1,"switch":0}', { qos: 1 })
    t.same((await got).map((m) => m.topic + ' ' + m.payload), ['sensors/dev1/telemetry {"seq":1,"boot":1,"pot":1,"switch":0}'])
  })

  t.test('publishes LED commands and commit confirmations the device receives', { timeout: 15_000 }, async (t) => {
    await dev1.subscribeAsync(['sensors/dev1/led/set', 'sensors/dev1/ack'], { qos: 1 })
    const got = collect(dev1, 2)
    await gw2.publishAsync('sensors/dev1/led/set', '{"cmd":"r2","brightness":40}', { qos: 1 })
    await gw2.publishAsync('sensors/dev1/ack', '{"boot":1,"seqs":[[1,1]]}', { qos: 1 })
    t.same((await got).map((m) => m.topic + ' ' + m.payload), ['sensors/dev1/led/set {"cmd":"r2","brightness":40}', 'sensors/dev1/ack {"boot":1,"seqs":[[1,1]]}'])
  })

  t.test('a device certificate in a share group still reads only its own topics', { timeout: 15_000 }, async (t) => {
    const dev2 = await connectOnce(t, broker.url, { ...broker.pki.tls('dev2'), protocolVersion: 5 })
    await dev2.subscribeAsync(['$share/h/sensors/+/telemetry', 'sensors/dev2/led/set'], { qos: 1 })
    const got = collect(dev2, 1)
    // Per-publisher order is not enough across two publishers; but dev1's PUBACK comes after the broker
    // has queued its message for every subscriber, so a leak would be queued before the marker exists.
    await dev1.publishAsync('sensors/dev1/telemetry', 'private', { qos: 1 })
    await gw2.publishAsync('sensors/dev2/led/set', 'marker', { qos: 1 })
    t.same((await got).map((m) => m.topic + ' ' + m.payload), ['sensors/dev2/led/set marker'])
  })
})
