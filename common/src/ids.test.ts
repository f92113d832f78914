import t from 'tap'
import { assertDeviceId, gatewayReplicaCn, GATEWAY_CN, GATEWAY_REPLICA_MAX, isDeviceId, isGatewayReplicaNumber, parseGatewayCn } from './ids.js'

t.test('device ids: the pattern decides, and every id beginning with ferry-gateway is reserved', async (t) => {
  for (const good of ['a', 'dev1', 'node-01', 'esp32_a-1', 'x'.repeat(63), 'ferry', 'ferry-gatewa', 'my-ferry-gateway', 'gateway-1']) {
    t.ok(isDeviceId(good), `${good} is a device id`)
    t.doesNotThrow(() => assertDeviceId(good), good)
  }
  for (const bad of ['', 'Dev1', '-dev', 'a/b', 'dev 1', 'dev+1', '../x', 'x'.repeat(64), 42, null]) {
    t.notOk(isDeviceId(bad), `${JSON.stringify(bad)} is not a device id`)
    t.throws(() => assertDeviceId(bad), { code: 'FERRY_ERR_DEVICE_ID', message: /\^\[a-z0-9\]/ }, JSON.stringify(bad))
  }
  for (const reserved of [GATEWAY_CN, 'ferry-gateway-1', 'ferry-gateway-9', 'ferry-gateway-10', 'ferry-gateway-0', 'ferry-gateways', 'ferry-gateway_x', 'ferry-gateway2']) {
    t.notOk(isDeviceId(reserved), `${reserved} is reserved`)
    t.throws(() => assertDeviceId(reserved), { code: 'FERRY_ERR_DEVICE_ID', message: /reserved for the gateway and its replicas; choose another device id/ }, reserved)
  }
})

t.test('gatewayReplicaCn names replicas 1…9 and refuses any other number', async (t) => {
  t.equal(GATEWAY_REPLICA_MAX, 9)
  t.same([1, 2, 9].map(gatewayReplicaCn), ['ferry-gateway-1', 'ferry-gateway-2', 'ferry-gateway-9'])
  for (const bad of [0, 10, -1, 1.5, NaN, Infinity]) {
    t.notOk(isGatewayReplicaNumber(bad), String(bad))
    t.throws(() => gatewayReplicaCn(bad), RangeError, String(bad))
  }
  t.notOk(isGatewayReplicaNumber('1'), 'a string is not a replica number')
})

t.test('parseGatewayCn: 0 for the gateway, n for replica n, null for everything else', async (t) => {
  t.equal(parseGatewayCn('ferry-gateway'), 0)
  for (let n = 1; n <= GATEWAY_REPLICA_MAX; n++) t.equal(parseGatewayCn(gatewayReplicaCn(n)), n)
  for (const other of ['ferry-gateway-0', 'ferry-gateway-10', 'ferry-gateway-01', 'ferry-gateway-', 'ferry-gateways', 'ferry-gateway-1 ', 'Ferry-gateway', 'dev1', '']) {
    t.equal(parseGatewayCn(other), null, JSON.stringify(other))
  }
})
