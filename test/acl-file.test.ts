// The shipped mosquitto/acl gives every gateway replica (ferry-gateway-1 … ferry-gateway-9) exactly the
// gateway's rights. Mosquitto's ACL file has no wildcard users, so that means ten identical `user`
// blocks; this test keeps them identical, and is itself run against broken copies to prove it can fail.
// (test/e2e/broker-mtls.test.ts shows a replica using those rights on a real broker.)
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseMosquittoAcl } from './helpers/mosquitto-acl.js'
import { gatewayReplicaCn, GATEWAY_CN, GATEWAY_REPLICA_MAX } from '../common/src/ids.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const shipped = () => readFileSync(join(root, 'mosquitto/acl'), 'utf8')
const REPLICAS = Array.from({ length: GATEWAY_REPLICA_MAX }, (_, i) => gatewayReplicaCn(i + 1))

/** Every way `text` strays from "the gateway, and nine replicas with exactly its lines". */
function replicaProblems(text: string): string[] {
  const acl = parseMosquittoAcl(text)
  const gateway = acl.users.get(GATEWAY_CN)
  if (!gateway?.length) return [`no user ${GATEWAY_CN} block`]
  const expected = JSON.stringify(gateway)
  return [
    ...REPLICAS.filter((r) => !acl.users.has(r)).map((r) => `no user ${r} block`),
    ...REPLICAS.filter((r) => acl.users.has(r) && JSON.stringify(acl.users.get(r)) !== expected).map((r) => `user ${r} differs from user ${GATEWAY_CN}`),
    ...[...acl.users.keys()].filter((u) => u !== GATEWAY_CN && !REPLICAS.includes(u)).map((u) => `unexpected user ${u}`),
    ...(acl.anonymous.length ? ['anonymous clients are granted topics'] : []),
  ]
}

t.test('mosquitto/acl gives ferry-gateway-1 … ferry-gateway-9 exactly the gateway\'s rights, and no one else a block', async (t) => {
  t.same(replicaProblems(shipped()), [])
  const acl = parseMosquittoAcl(shipped())
  t.ok(acl.users.get(GATEWAY_CN)!.some((l) => l.access === 'write' && l.topic === 'sensors/+/ack'), 'control: the gateway block is the one with the gateway\'s rights')
  t.equal(acl.users.size, 1 + GATEWAY_REPLICA_MAX)
})

t.test('the replica check fails on a copy that breaks it', async (t) => {
  const good = shipped()
  const cases: [string, (s: string) => string][] = [
    ['a replica block missing a line', (s) => s.replace(/(user ferry-gateway-5\n(?:topic [^\n]*\n)*?)topic write sensors\/\+\/ack\n/, '$1')],
    ['a replica block with an extra right', (s) => s.replace('user ferry-gateway-2\n', 'user ferry-gateway-2\ntopic read sensors/#\n')],
    ['a replica block with read for write', (s) => s.replace(/(user ferry-gateway-9\n(?:topic [^\n]*\n)*?)topic write sensors\/\+\/led\/set/, '$1topic read sensors/+/led/set')],
    ['the last replica missing', (s) => s.replace(/user ferry-gateway-9\n(topic [^\n]*\n)+/, '')],
    ['a user block for a tenth replica', (s) => s.replace('user ferry-gateway-1\n', 'user ferry-gateway-10\ntopic read sensors/+/telemetry\n\nuser ferry-gateway-1\n')],
    ['a grant before the first user line', (s) => s.replace('user ferry-gateway\n', 'topic read #\nuser ferry-gateway\n')],
  ]
  for (const [what, mutate] of cases) {
    const bad = mutate(good)
    t.not(bad, good, `${what}: the mutation applies to the current file`)
    t.ok(replicaProblems(bad).length > 0, `catches ${what}`)
  }
})
