import t from 'tap'
import { parseTopic, SUBSCRIPTIONS } from './topics.js'

t.test('each subscribed topic parses to its device and kind', async (t) => {
  t.same(parseTopic('sensors/dev1/telemetry'), { ok: true, device: 'dev1', kind: 'telemetry' })
  t.same(parseTopic('sensors/dev1/status'), { ok: true, device: 'dev1', kind: 'status' })
  t.same(parseTopic('sensors/dev1/led/state'), { ok: true, device: 'dev1', kind: 'led_state' })
  t.same(parseTopic('sensors/dev1/ota/status'), { ok: true, device: 'dev1', kind: 'ota_status' })
  for (const filter of SUBSCRIPTIONS) t.ok(parseTopic(filter.replace('+', 'esp32-a_1')).ok, `${filter} is one the parser knows`)
})

t.test('a topic outside sensors/<id>/... is named in the reason, without a device', async (t) => {
  t.same(parseTopic('other/dev1/telemetry'), { ok: false, device: null, reason: 'unexpected topic "other/dev1/telemetry"' })
  t.match(parseTopic('sensors/dev1'), { ok: false, device: null, reason: /unexpected topic/ })
  const long = parseTopic(`x/${'a'.repeat(1000)}`)
  t.ok(!long.ok && long.reason.length < 250, 'a long topic is truncated in the reason')
})

t.test('a device id that is not allowed gives no device', async (t) => {
  // Ids beginning with ferry-gateway are reserved for the gateway and its replicas (issue 17).
  for (const id of ['Dev1', '-dev', '', 'a'.repeat(64), 'ferry-gateway', 'ferry-gateway-2', 'ferry-gateway-10', 'ferry-gateways', 'dev 1']) {
    t.match(parseTopic(`sensors/${id}/telemetry`), { ok: false, device: null, reason: /not allowed \(must match/ }, JSON.stringify(id))
  }
})

t.test('an unknown kind keeps the device, so the dead letter is attributed', async (t) => {
  t.same(parseTopic('sensors/dev1/led/set'), { ok: false, device: 'dev1', reason: 'unknown topic kind "led/set"' })
  t.same(parseTopic('sensors/dev1/telemetry/extra'), { ok: false, device: 'dev1', reason: 'unknown topic kind "telemetry/extra"' })
})
