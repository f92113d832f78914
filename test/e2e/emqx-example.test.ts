// The EMQX scale-out example (deploy/emqx/) keeps the promises of the Mosquitto setup, checked
// statically because EMQX cannot run here (no image, no registry; deploy/emqx/README.md):
// docker-compose 1.29 accepts the Compose file; the cluster and replica wiring is consistent; emqx.conf
// asks for mutual TLS on 8883 only with the certificate CN as identity and denies by default; and
// acl.conf, evaluated with EMQX's documented first-match rules, grants exactly what mosquitto/acl
// grants (itself evaluated with Mosquitto's rules). Every check also runs against a broken copy to
// prove it can fail.
import t from 'tap'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers/tmp.js'
import { composeModel, runComposeConfig, type ComposeModel, type ComposeService } from '../helpers/compose.js'
import { readHocon, type HoconValue } from '../helpers/hocon.js'
import { emqxAuthorize, parseErlangTerms, type Term } from '../helpers/emqx-acl.js'
import { mosquittoAllows, parseMosquittoAcl, type MosquittoAcl } from '../helpers/mosquitto-acl.js'
import { gatewayReplicaCn, GATEWAY_CN, GATEWAY_REPLICA_MAX, parseGatewayCn } from '../../common/src/ids.js'
import { SUBSCRIPTIONS, SYS_DROPPED } from '../../gateway/src/ingest/topics.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const EXAMPLE = 'deploy/emqx'
const FILES = ['docker-compose.yml', 'emqx.conf', 'acl.conf'] as const
type ExampleFile = (typeof FILES)[number]
const repoFile = (name: string) => readFileSync(join(root, name), 'utf8')
const COOKIE = { FERRY_EMQX_COOKIE: 'a-test-cookie' }

/**
 * A copy of deploy/emqx at the same depth (`<tmp>/deploy/emqx`) with an empty `<tmp>/.env`, the
 * file the gateways' `env_file` names, so a developer's own .env cannot change what is checked.
 */
function stage(t: Tap, replace: Partial<Record<ExampleFile, string>> = {}): string {
  const top = tempDir(t, 'ferry-emqx-')
  const dir = join(top, EXAMPLE)
  mkdirSync(dir, { recursive: true })
  for (const f of FILES) {
    if (replace[f] !== undefined) writeFileSync(join(dir, f), replace[f]!)
    else copyFileSync(join(root, EXAMPLE, f), join(dir, f))
  }
  writeFileSync(join(top, '.env'), '')
  return dir
}
interface Tap {
  teardown(fn: () => unknown): void
}

/** `s` with the `n`th (1-based) occurrence of `find` replaced; unchanged when there is none. */
function replaceNth(s: string, find: string, replacement: string, n: number): string {
  let at = -1
  for (let i = 0; i < n; i++) {
    at = s.indexOf(find, at + 1)
    if (at < 0) return s
  }
  return s.slice(0, at) + replacement + s.slice(at + find.length)
}

// ---- Compose ------------------------------------------------------------------------------------

const NODES = ['emqx1', 'emqx2', 'emqx3']
const REPLICAS = ['gateway-1', 'gateway-2', 'gateway-3']

function binds(s: ComposeService) {
  return (s.volumes ?? []).map((v) => {
    if (typeof v === 'string') {
      const [source = '', target = source, mode = 'rw'] = v.split(':')
      return { source, target, readOnly: mode.split(',').includes('ro'), named: !source.startsWith('/') && !source.startsWith('.') }
    }
    return { source: v.source ?? '', target: v.target, readOnly: v.read_only === true, named: v.type === 'volume' }
  })
}

function portTargets(s: ComposeService): string[] {
  return [
    ...(s.ports ?? []).map((p) => (typeof p === 'string' ? p.replace(/\/(tcp|udp)$/, '').split(':').pop()! : String(p.target))),
    ...(s.expose ?? []).map(String),
  ]
}

/** Where emqx.conf expects each file EMQX reads: the Compose mounts must put them there. */
function confPaths(conf: Map<string, HoconValue>): string[] {
  const sources = conf.get('authorization.sources')
  const acl = Array.isArray(sources) && typeof sources[0] === 'object' && !Array.isArray(sources[0]) ? sources[0].path : undefined
  return [
    ...['cacertfile', 'certfile', 'keyfile'].map((k) => conf.get(`listeners.ssl.default.ssl_options.${k}`)),
    acl,
  ].map(String)
}

/** Each check returns the problems it finds; an empty list means the property holds. */
const composeChecks: Record<string, (c: ComposeModel, conf: Map<string, HoconValue>) => string[]> = {
  'three EMQX nodes and three gateway replicas': (c) => {
    const names = Object.keys(c.services).sort()
    return names.join() === [...NODES, ...REPLICAS].join() ? [] : [`services are [${names}]`]
  },
  'every EMQX node runs a pinned 5.8.x image': (c) =>
    NODES.filter((n) => !/^emqx\/emqx:5\.8\.\d+(@sha256:[0-9a-f]{64})?$/.test(c.services[n]?.image ?? '')).map((n) => `${n} image is ${c.services[n]?.image}`),
  'the nodes form one static cluster: each node name resolves, and the seeds name every node': (c) =>
    NODES.flatMap((n) => {
      const s = c.services[n] ?? {}
      const env = s.environment ?? {}
      const name = env.EMQX_NODE__NAME ?? ''
      const host = /^emqx@(.+\..+)$/.exec(name)?.[1]
      const aliases = Object.values(s.networks ?? {}).flatMap((net) => net?.aliases ?? [])
      const seeds = (env.EMQX_CLUSTER__STATIC__SEEDS ?? '').replace(/^\[|\]$/g, '').split(',').map((x) => x.trim())
      const all = NODES.map((m) => c.services[m]?.environment?.EMQX_NODE__NAME)
      return [
        ...(host ? [] : [`${n} node name ${JSON.stringify(name)} is not emqx@<host with a dot> (Erlang long names)`]),
        ...(host && !aliases.includes(host) ? [`${n}: no other node can resolve ${host}`] : []),
        ...(env.EMQX_CLUSTER__DISCOVERY_STRATEGY === 'static' ? [] : [`${n} discovery is ${env.EMQX_CLUSTER__DISCOVERY_STRATEGY}`]),
        ...(seeds.slice().sort().join() === all.slice().sort().join() ? [] : [`${n} seeds [${seeds}] are not the nodes [${all}]`]),
        ...(new Set(all).size === NODES.length ? [] : ['two nodes share a name']),
      ]
    }),
  'the Erlang cookie comes from FERRY_EMQX_COOKIE, the same on every node': (c) =>
    NODES.filter((n) => c.services[n]?.environment?.EMQX_NODE__COOKIE !== COOKIE.FERRY_EMQX_COOKIE).map((n) => `${n} cookie is ${c.services[n]?.environment?.EMQX_NODE__COOKIE}`),
  'no port but MQTT over TLS (8883) and the replicas\' API (8080) is published or exposed': (c) =>
    Object.entries(c.services).flatMap(([name, s]) =>
      portTargets(s)
        .filter((p) => p !== (name.startsWith('emqx') ? '8883' : '8080'))
        .map((p) => `${name} publishes or exposes ${p}`),
    ),
  'every node mounts emqx.conf, acl.conf and the certificates where emqx.conf reads them, read-only, and no other PKI file': (c, conf) =>
    NODES.flatMap((n) => {
      const m = binds(c.services[n] ?? {}).filter((b) => !b.named)
      const wanted = ['/opt/emqx/etc/emqx.conf', ...confPaths(conf)]
      return [
        ...wanted.filter((p) => !m.some((b) => b.target === p && b.readOnly)).map((p) => `${n} has no read-only mount at ${p}`),
        ...m.filter((b) => !wanted.includes(b.target)).map((b) => `${n} also mounts ${b.source} at ${b.target}`),
        ...m.filter((b) => /\.(crt|key)$/.test(b.target) && basename(b.source) !== basename(b.target)).map((b) => `${n} mounts ${basename(b.source)} as ${b.target}`),
      ]
    }),
  'every node and every replica keeps its state in a named volume of its own': (c) => {
    const targets: Record<string, string> = {}
    for (const n of NODES) targets[n] = '/opt/emqx/data'
    for (const r of REPLICAS) targets[r] = posix.dirname(c.services[r]?.environment?.FERRY_DB ?? '/nowhere/x')
    const seen = new Map<string, string>()
    return Object.entries(targets).flatMap(([svc, target]) => {
      const v = binds(c.services[svc] ?? {}).find((b) => b.target === target)
      if (!v?.named) return [`${svc} ${target} is not a named volume`]
      if (!(v.source in (c.volumes ?? {}))) return [`${svc} volume ${v.source} is not declared`]
      const other = seen.get(v.source)
      seen.set(v.source, svc)
      return other ? [`${svc} shares volume ${v.source} with ${other}`] : []
    })
  },
  'each replica: its own certificate, CN = client id, one share group, a URL every node answers to, HTTPS': (c) => {
    const nodeAliases = NODES.map((n) => Object.values(c.services[n]?.networks ?? {}).flatMap((net) => net?.aliases ?? []))
    const groups = new Set(REPLICAS.map((r) => c.services[r]?.environment?.FERRY_MQTT_SHARE_GROUP))
    const [group] = groups
    return [
      ...(groups.size === 1 && group ? [] : [`share groups: [${[...groups].join(', ')}]`]),
      ...REPLICAS.flatMap((r) => {
        const s = c.services[r] ?? {}
        const env = s.environment ?? {}
        const n = Number(r.slice('gateway-'.length))
        const cn = gatewayReplicaCn(n)
        const m = binds(s)
        const src = (target: string | null | undefined) => basename(m.find((b) => b.target === target && b.readOnly)?.source ?? '(not mounted read-only)')
        const host = /^mqtts:\/\/([^:/]+)(:\d+)?$/.exec(env.FERRY_MQTT_URL ?? '')?.[1] ?? `(${env.FERRY_MQTT_URL})`
        return [
          ...(src(env.FERRY_MQTT_CERT) === `gateway-${n}.crt` ? [] : [`${r} FERRY_MQTT_CERT is ${src(env.FERRY_MQTT_CERT)}`]),
          ...(src(env.FERRY_MQTT_KEY) === `gateway-${n}.key` ? [] : [`${r} FERRY_MQTT_KEY is ${src(env.FERRY_MQTT_KEY)}`]),
          ...(env.FERRY_MQTT_CLIENT_ID === cn ? [] : [`${r} client id ${env.FERRY_MQTT_CLIENT_ID} is not ${cn}`]),
          ...(src(env.FERRY_HTTP_TLS_CERT) === 'server.crt' && src(env.FERRY_HTTP_TLS_KEY) === 'server.key' ? [] : [`${r} does not serve its API over HTTPS`]),
          ...(nodeAliases.every((a) => a.includes(host)) ? [] : [`${r} connects to ${host}, which not every node answers to`]),
          ...(s.read_only && s.cap_drop?.includes('ALL') && s.security_opt?.includes('no-new-privileges:true') ? [] : [`${r} is not locked down like the single-host gateway`]),
        ]
      }),
    ]
  },
  'every service has a healthcheck and restarts unless stopped': (c) =>
    Object.entries(c.services).flatMap(([name, s]) => [
      ...(s.healthcheck?.test && !s.healthcheck.disable ? [] : [`${name} has no healthcheck`]),
      ...(s.restart === 'unless-stopped' ? [] : [`${name} restart is ${s.restart}`]),
    ]),
}

const exampleConf = () => readHocon(repoFile(`${EXAMPLE}/emqx.conf`))

t.test('docker-compose config -q accepts deploy/emqx/docker-compose.yml', async (t) => {
  const r = runComposeConfig(stage(t), 'docker-compose.yml', ['-q'], COOKIE)
  t.equal(r.status, 0, r.stderr)
})

t.test('without FERRY_EMQX_COOKIE Compose refuses, naming the variable', async (t) => {
  const r = runComposeConfig(stage(t), 'docker-compose.yml', ['-q'])
  t.not(r.status, 0)
  t.match(r.stderr, /FERRY_EMQX_COOKIE/)
})

t.test('the Compose model', async (t) => {
  const model = composeModel(stage(t), 'docker-compose.yml', COOKIE)
  const conf = exampleConf()
  for (const [name, check] of Object.entries(composeChecks)) t.same(check(model, conf), [], name)
  t.same(REPLICAS.map((r) => parseGatewayCn(model.services[r]?.environment?.FERRY_MQTT_CLIENT_ID ?? '')), [1, 2, 3], 'the replicas are ferry-gateway-1..3, identities the PKI issues')
})

t.test('each Compose check fails on a copy that breaks it', async (t) => {
  const good = repoFile(`${EXAMPLE}/docker-compose.yml`)
  const cases: [string, string, (s: string) => string][] = [
    ['every EMQX node runs a pinned 5.8.x image', 'a 5.9 image', (s) => s.replace(/emqx\/emqx:5\.8\.\d+/, 'emqx/emqx:5.9.0')],
    ['the nodes form one static cluster: each node name resolves, and the seeds name every node', 'a seed list without emqx3', (s) => s.replace(',emqx@emqx3.ferry.internal]', ']')],
    ['the nodes form one static cluster: each node name resolves, and the seeds name every node', 'a short node name', (s) => s.replace('EMQX_NODE__NAME: emqx@emqx2.ferry.internal', 'EMQX_NODE__NAME: emqx@emqx2')],
    ['no port but MQTT over TLS (8883) and the replicas\' API (8080) is published or exposed', 'plain MQTT published', (s) => s.replace('- "${FERRY_PUBLISH_MQTT_1:-8883}:8883"', '- "${FERRY_PUBLISH_MQTT_1:-8883}:8883"\n      - "1883:1883"')],
    ['every node mounts emqx.conf, acl.conf and the certificates where emqx.conf reads them, read-only, and no other PKI file', 'acl.conf not mounted on emqx3', (s) => replaceNth(s, '      - ./acl.conf:/opt/emqx/etc/ferry/acl.conf:ro\n', '', 3)],
    ['every node mounts emqx.conf, acl.conf and the certificates where emqx.conf reads them, read-only, and no other PKI file', 'a writable server key on emqx2', (s) => replaceNth(s, 'target: /opt/emqx/etc/certs/ferry/server.key\n        read_only: true', 'target: /opt/emqx/etc/certs/ferry/server.key\n        read_only: false', 2)],
    ['every node mounts emqx.conf, acl.conf and the certificates where emqx.conf reads them, read-only, and no other PKI file', "a replica's key on emqx1", (s) => s.replace('      - emqx1-data:/opt/emqx/data', '      - ../../pki/gateway-1.key:/opt/emqx/etc/certs/ferry/gateway-1.key:ro\n      - emqx1-data:/opt/emqx/data')],
    ['every node and every replica keeps its state in a named volume of its own', 'two replicas on one buffer', (s) => s.replace('- gateway-2-data:/var/lib/ferry', '- gateway-1-data:/var/lib/ferry')],
    ['each replica: its own certificate, CN = client id, one share group, a URL every node answers to, HTTPS', 'gateway-3 with gateway-1\'s certificate', (s) => s.replace('pki}/gateway-3.crt', 'pki}/gateway-1.crt')],
    ['each replica: its own certificate, CN = client id, one share group, a URL every node answers to, HTTPS', 'a URL naming one node', (s) => s.replace('FERRY_MQTT_URL: mqtts://emqx.ferry.internal:8883', 'FERRY_MQTT_URL: mqtts://emqx1.ferry.internal:8883')],
    ['each replica: its own certificate, CN = client id, one share group, a URL every node answers to, HTTPS', 'plain HTTP', (s) => s.replace('\n  FERRY_HTTP_TLS_CERT: /run/ferry/pki/server.crt\n', '\n')],
    ['each replica: its own certificate, CN = client id, one share group, a URL every node answers to, HTTPS', 'no share group', (s) => s.replace('\n  FERRY_MQTT_SHARE_GROUP: ferry\n', '\n')],
  ]
  const conf = exampleConf()
  for (const [check, what, mutate] of cases) {
    t.test(`${check}: catches ${what}`, async (t) => {
      const bad = mutate(good)
      t.not(bad, good, 'the mutation applies to the current file')
      t.ok(composeChecks[check]!(composeModel(stage(t, { 'docker-compose.yml': bad }), 'docker-compose.yml', COOKIE), conf).length > 0)
    })
  }
})

// ---- emqx.conf -----------------------------------------------------------------------------------

const confChecks: Record<string, (c: Map<string, HoconValue>) => string[]> = {
  'mutual TLS on 8883: verify_peer, no certificate no connection, TLS 1.2 and 1.3 only': (c) => {
    const want: Record<string, HoconValue> = {
      'listeners.ssl.default.bind': '0.0.0.0:8883',
      'listeners.ssl.default.ssl_options.verify': 'verify_peer',
      'listeners.ssl.default.ssl_options.fail_if_no_peer_cert': 'true',
    }
    const versions = c.get('listeners.ssl.default.ssl_options.versions')
    return [
      ...Object.entries(want).filter(([k, v]) => c.get(k) !== v).map(([k, v]) => `${k} is ${JSON.stringify(c.get(k))}, want ${JSON.stringify(v)}`),
      ...(Array.isArray(versions) && versions.length > 0 && versions.every((v) => v === 'tlsv1.2' || v === 'tlsv1.3') ? [] : [`TLS versions ${JSON.stringify(versions)}`]),
      ...(c.get('listeners.ssl.default.enable') === 'false' ? ['listeners.ssl.default is disabled'] : []),
    ]
  },
  'the other default listeners (1883, 8083, 8084) are off': (c) =>
    ['tcp', 'ws', 'wss'].filter((l) => c.get(`listeners.${l}.default.enable`) !== 'false').map((l) => `listeners.${l}.default is not disabled`),
  'the certificate CN is the username and the client id': (c) =>
    ['mqtt.peer_cert_as_username', 'mqtt.peer_cert_as_clientid'].filter((k) => c.get(k) !== 'cn').map((k) => `${k} is ${JSON.stringify(c.get(k))}`),
  'authorization: only the acl.conf file source, and deny when nothing matches': (c) => {
    const sources = c.get('authorization.sources')
    const only = Array.isArray(sources) && sources.length === 1 ? sources[0] : undefined
    const file = typeof only === 'object' && !Array.isArray(only) ? only : {}
    return [
      ...(c.get('authorization.no_match') === 'deny' ? [] : [`authorization.no_match is ${JSON.stringify(c.get('authorization.no_match'))}`]),
      ...(file.type === 'file' && file.enable === 'true' && String(file.path).endsWith('/acl.conf') ? [] : [`authorization.sources is ${JSON.stringify(sources)}`]),
    ]
  },
  'shared subscriptions are on': (c) => (c.get('mqtt.shared_subscription') === 'false' ? ['mqtt.shared_subscription is false'] : []),
  'the dashboard (default login admin/public) does not listen': (c) => (c.get('dashboard.listeners.http.bind') === '0' ? [] : [`dashboard.listeners.http.bind is ${JSON.stringify(c.get('dashboard.listeners.http.bind'))}`]),
}

t.test('emqx.conf', async (t) => {
  const conf = exampleConf()
  for (const [name, check] of Object.entries(confChecks)) t.same(check(conf), [], name)
})

t.test('each emqx.conf check fails on a copy that breaks it', async (t) => {
  const good = repoFile(`${EXAMPLE}/emqx.conf`)
  const cases: [string, string, (s: string) => string][] = [
    ['mutual TLS on 8883: verify_peer, no certificate no connection, TLS 1.2 and 1.3 only', 'verify_none', (s) => s.replace('verify = verify_peer', 'verify = verify_none')],
    ['mutual TLS on 8883: verify_peer, no certificate no connection, TLS 1.2 and 1.3 only', 'optional client certificates', (s) => s.replace('fail_if_no_peer_cert = true', 'fail_if_no_peer_cert = false')],
    ['mutual TLS on 8883: verify_peer, no certificate no connection, TLS 1.2 and 1.3 only', 'TLS 1.1', (s) => s.replace('versions = ["tlsv1.3", "tlsv1.2"]', 'versions = ["tlsv1.3", "tlsv1.2", "tlsv1.1"]')],
    ['the other default listeners (1883, 8083, 8084) are off', 'plain MQTT left on', (s) => s.replace(/listeners\.tcp\.default \{\n\s+enable = false\n\}/, '')],
    ['the certificate CN is the username and the client id', 'a client-chosen client id', (s) => s.replace('peer_cert_as_clientid = cn', 'peer_cert_as_clientid = disabled')],
    ['authorization: only the acl.conf file source, and deny when nothing matches', 'no_match = allow', (s) => s.replace('no_match = deny', 'no_match = allow')],
    ['the dashboard (default login admin/public) does not listen', 'the dashboard on 18083', (s) => s.replace('listeners.http.bind = 0', 'listeners.http.bind = 18083')],
  ]
  for (const [check, what, mutate] of cases) {
    t.test(`${check}: catches ${what}`, async (t) => {
      const bad = mutate(good)
      t.not(bad, good, 'the mutation applies to the current file')
      t.ok(confChecks[check]!(readHocon(bad)).length > 0)
    })
  }
})

// ---- acl.conf against mosquitto/acl ----------------------------------------------------------------

const GATEWAYS = [GATEWAY_CN, ...Array.from({ length: GATEWAY_REPLICA_MAX }, (_, i) => gatewayReplicaCn(i + 1))]
const USERS = [...GATEWAYS, 'ferry-gateway-10', 'dev1', 'dev2']
const KINDS = ['telemetry', 'status', 'led/state', 'ota/status', 'led/set', 'ack']
const TOPICS = [...['dev1', 'dev2', 'ferry-gateway', 'ferry-gateway-3'].flatMap((d) => KINDS.map((k) => `sensors/${d}/${k}`)), SYS_DROPPED, '$SYS/broker/uptime', 'other/topic']

/**
 * Where acl.conf and mosquitto/acl disagree, for every identity and concrete topic above: Mosquitto's
 * write is EMQX's publish, its read is EMQX's subscribe to that topic. Then the filters the gateway
 * really subscribes to, plain and shared, which only the gateway identities may subscribe.
 */
function aclDifferences(rules: Term[], noMatch: 'allow' | 'deny', mosquitto: MosquittoAcl): string[] {
  const out: string[] = []
  for (const user of USERS) {
    const client = { username: user, clientid: user }
    for (const topic of TOPICS) {
      for (const [want, action] of [['write', 'publish'], ['read', 'subscribe']] as const) {
        const m = mosquittoAllows(mosquitto, user, want, topic)
        const e = emqxAuthorize(rules, client, action, topic, noMatch) === 'allow'
        if (m !== e) out.push(`${user} ${action} ${topic}: mosquitto ${m ? 'allows' : 'denies'}, EMQX ${e ? 'allows' : 'denies'}`)
      }
    }
    for (const filter of [...SUBSCRIPTIONS, SYS_DROPPED, ...SUBSCRIPTIONS.map((f) => `$share/ferry/${f}`)]) {
      const e = emqxAuthorize(rules, client, 'subscribe', filter, noMatch) === 'allow'
      if (e !== GATEWAYS.includes(user)) out.push(`${user} subscribe ${filter}: EMQX ${e ? 'allows' : 'denies'}`)
    }
  }
  return out
}

const emqxNoMatch = () => (exampleConf().get('authorization.no_match') === 'deny' ? 'deny' : 'allow')

t.test('acl.conf grants exactly what mosquitto/acl grants, replicas included', async (t) => {
  const mosquitto = parseMosquittoAcl(repoFile('mosquitto/acl'))
  const rules = parseErlangTerms(repoFile(`${EXAMPLE}/acl.conf`))
  t.same(aclDifferences(rules, emqxNoMatch(), mosquitto), [])
  // Controls, so that agreement cannot come from both evaluators denying everything.
  t.ok(mosquittoAllows(mosquitto, 'ferry-gateway-7', 'write', 'sensors/dev1/led/set'), 'control: a replica writes LED commands')
  t.ok(mosquittoAllows(mosquitto, 'ferry-gateway-9', 'read', 'sensors/dev2/telemetry'), 'control: a replica reads telemetry')
  t.ok(mosquittoAllows(mosquitto, 'dev1', 'write', 'sensors/dev1/telemetry'), 'control: a device publishes its telemetry')
  t.notOk(mosquittoAllows(mosquitto, 'dev1', 'read', 'sensors/dev2/ack'), 'control: a device cannot read another\'s confirmations')
  t.equal(rules.length, 5)
})

t.test('the acl.conf comparison fails on a copy that breaks it', async (t) => {
  const good = repoFile(`${EXAMPLE}/acl.conf`)
  const mosquitto = parseMosquittoAcl(repoFile('mosquitto/acl'))
  const cases: [string, (s: string) => string][] = [
    ['replica 7 missing from the gateway rules', (s) => s.replaceAll(', {username, "ferry-gateway-7"}', '')],
    ['allow everything at the end', (s) => s.replace('{deny, all}.', '{allow, all}.')],
    ['devices publishing under any id', (s) => s.replace('"sensors/${username}/telemetry"', '"sensors/+/telemetry"')],
    ['devices reading every LED command', (s) => s.replace('"sensors/${username}/led/set"', '"sensors/+/led/set"')],
    ['replicas allowed to subscribe but not to publish', (s) => s.replace('publish, ["sensors/+/led/set", "sensors/+/ack"]', 'publish, ["sensors/+/led/set"]')],
  ]
  for (const [what, mutate] of cases) {
    const bad = mutate(good)
    t.not(bad, good, `${what}: the mutation applies to the current file`)
    t.ok(aclDifferences(parseErlangTerms(bad), emqxNoMatch(), mosquitto).length > 0, `catches ${what}`)
  }
  // The reader refuses what it does not understand instead of misreading it.
  t.throws(() => parseErlangTerms('{allow, all}'), /ends in the middle of a term/)
  t.throws(() => parseErlangTerms('{allow, all} {deny, all}.'), /must end with "\."/)
  t.throws(() => parseErlangTerms('{allow, X}.'), /unexpected/)
})
