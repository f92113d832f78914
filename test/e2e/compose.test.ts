// The deployment files keep their security promises, statically: docker-compose.yml is valid for
// Debian's docker-compose 1.29, and the Compose model it produces, the Dockerfile and the .dockerignore
// are checked for the properties SECURITY.md claims (test/docker/compose-stack.test.ts then builds the
// images and runs the stack for real). Every check is also run against a
// deliberately broken copy to prove it can fail. The healthcheck commands themselves are executed
// against real listeners (a real mosquitto for the broker's).
import t from 'tap'
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createTcpServer, type Server } from 'node:net'
import { once } from 'node:events'
import { join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers/tmp.js'
import { startTestBroker } from '../helpers/mosquitto.js'
import type { ComposeModel, ComposeService } from '../helpers/compose.js'
import { makePki } from '../helpers/pki.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const repoFile = (p: string) => readFileSync(join(root, p), 'utf8')

// ---- Compose model -----------------------------------------------------------------------------

type Service = ComposeService
type Compose = ComposeModel

/**
 * `docker-compose config` on `text`, run in a fresh folder with an empty .env (the file declares
 * `env_file: .env`, which Compose requires to exist) and a minimal environment, so neither a
 * developer's own .env nor their shell variables change what is checked. The YAML it prints is turned
 * into JSON by python3-yaml, which Debian's docker-compose package depends on.
 */
function composeConfig(t: Tap, text: string): Compose {
  const dir = tempDir(t, 'ferry-compose-')
  writeFileSync(join(dir, 'docker-compose.yml'), text)
  writeFileSync(join(dir, '.env'), '')
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir }
  const run = (args: string[], input?: string) => {
    const r = spawnSync(args[0]!, args.slice(1), { cwd: dir, env, input, encoding: 'utf8' })
    if (r.error) throw new Error(`${args[0]} could not be run (${r.error.message}); run scripts/bootstrap.sh to install docker-compose`)
    if (r.status !== 0) throw new Error(`${args.join(' ')} failed (exit ${r.status}): ${r.stderr.trim()}`)
    return r.stdout
  }
  const yaml = run(['docker-compose', '-f', 'docker-compose.yml', 'config'])
  return JSON.parse(run(['python3', '-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], yaml)) as Compose
}
/** The part of a tap test the helpers need. */
interface Tap {
  teardown(fn: () => unknown): void
}

interface Mount {
  source: string
  target: string
  readOnly: boolean
  named: boolean
}

function mounts(s: Service): Mount[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v === 'string') {
      const [source = '', target = source, mode = 'rw'] = v.split(':')
      return { source, target, readOnly: mode.split(',').includes('ro'), named: !source.startsWith('/') && !source.startsWith('.') }
    }
    return { source: v.source ?? '', target: v.target, readOnly: v.read_only === true, named: v.type === 'volume' }
  })
}

interface Port {
  published: string
  target: string
}

function ports(s: Service): Port[] {
  return (s.ports ?? []).map((p) => {
    if (typeof p !== 'string') return { published: String(p.published ?? ''), target: String(p.target) }
    const parts = p.replace(/\/(tcp|udp)$/, '').split(':')
    const target = parts.pop() ?? ''
    return { published: parts.pop() ?? '', target }
  })
}

/** Services built from this repo's Dockerfile (gateway, ota-server). */
const ferryServices = (c: Compose) => Object.entries(c.services).filter(([, s]) => s.build !== undefined)

/** Each check returns the problems it finds; an empty list means the property holds. */
const composeChecks: Record<string, (c: Compose) => string[]> = {
  'no MQTT port 1883 is published or exposed': (c) =>
    Object.entries(c.services).flatMap(([name, s]) => [
      ...ports(s).filter((p) => [p.published, p.target].some((x) => x.split('-').includes('1883'))).map((p) => `${name} publishes ${p.published}:${p.target}`),
      ...(s.expose ?? []).filter((e) => String(e).startsWith('1883')).map((e) => `${name} exposes ${e}`),
    ]),
  'mosquitto publishes 8883 and nothing else': (c) => {
    const p = ports(c.services.mosquitto ?? {}).map((x) => `${x.published}:${x.target}`)
    return p.length === 1 && p[0] === '8883:8883' ? [] : [`mosquitto publishes [${p.join(', ')}]`]
  },
  'mosquitto is pinned to a 2.0.x release': (c) => {
    const image = c.services.mosquitto?.image ?? '(none)'
    return /^eclipse-mosquitto:2\.0\.\d+(-openssl)?(@sha256:[0-9a-f]{64})?$/.test(image) ? [] : [`mosquitto image is ${image}`]
  },
  'every image is pinned to a version': (c) =>
    Object.entries(c.services)
      .filter(([, s]) => s.build === undefined)
      .filter(([, s]) => !/:(?!latest$)[\w.-]*\d[\w.-]*(@sha256:[0-9a-f]{64})?$/.test(s.image ?? ''))
      .map(([name, s]) => `${name} image ${s.image ?? '(none)'} has no version tag`),
  'every service has a healthcheck': (c) =>
    Object.entries(c.services)
      .filter(([, s]) => !s.healthcheck || s.healthcheck.disable || !s.healthcheck.test || [s.healthcheck.test].flat()[0] === 'NONE')
      .map(([name]) => `${name} has no healthcheck`),
  'every service restarts unless stopped': (c) =>
    Object.entries(c.services)
      .filter(([, s]) => s.restart !== 'unless-stopped')
      .map(([name, s]) => `${name} restart is ${s.restart ?? '(unset)'}`),
  'every bind mount (config, certificates, keys, OTA files) is read-only': (c) =>
    Object.entries(c.services).flatMap(([name, s]) =>
      mounts(s)
        .filter((m) => !m.named && !m.readOnly)
        .map((m) => `${name} mounts ${m.source} at ${m.target} writable`),
    ),
  'the broker persistence and the buffer database live in named volumes': (c) => {
    const problems: string[] = []
    const named = (svc: string, target: string) => {
      const m = mounts(c.services[svc] ?? {}).find((x) => x.target.replace(/\/$/, '') === target)
      if (!m?.named) problems.push(`${svc} ${target} is ${m ? `a bind mount of ${m.source}` : 'not mounted'}`)
      else if (!(m.source in (c.volumes ?? {}))) problems.push(`${svc} volume ${m.source} is not declared`)
    }
    named('mosquitto', '/mosquitto/data')
    const db = c.services.gateway?.environment?.FERRY_DB
    if (!db) problems.push('gateway has no FERRY_DB')
    else named('gateway', posix.dirname(db))
    return problems
  },
  'the Ferry services run as non-root users without privileges': (c) => {
    const services = ferryServices(c)
    if (services.length < 2) return [`expected gateway and ota-server to be built from the Dockerfile, found [${services.map(([n]) => n)}]`]
    return services.flatMap(([name, s]) => [
      ...(s.user !== undefined && /^(root|0)(:|$)/.test(String(s.user)) ? [`${name} runs as user ${s.user}`] : []),
      ...(s.read_only ? [] : [`${name} root filesystem is writable`]),
      ...(s.cap_drop?.includes('ALL') ? [] : [`${name} keeps its capabilities`]),
      ...(s.security_opt?.some((o) => /^no-new-privileges(:true)?$/.test(o)) ? [] : [`${name} may gain privileges`]),
    ])
  },
  'certificate, key, CRL and release-key paths point into read-only mounts': (c) =>
    Object.entries(c.services).flatMap(([name, s]) =>
      Object.entries(s.environment ?? {})
        .filter(([k]) => /^FERRY_\w+_(CA|CERT|KEY|CRL|PUB)$/.test(k))
        .filter(([, v]) => !mounts(s).some((m) => m.readOnly && (v === m.target || v?.startsWith(m.target.replace(/\/?$/, '/')))))
        .map(([k, v]) => `${name} ${k}=${v} is not inside a read-only mount`),
    ),
  'each service mounts only the PKI files it reads': (c) => {
    // The gateway's key must not be readable in the broker's container; the gateway holds the server
    // key only to serve its API over HTTPS; the CA key and the release key never reach the host at all.
    const base = c.services.gateway?.build?.context ?? ''
    const allowed: Record<string, string[]> = {
      mosquitto: ['ca.crt', 'crl.pem', 'server.crt', 'server.key'],
      gateway: ['ca.crt', 'gateway.crt', 'gateway.key', 'server.crt', 'server.key'],
      'ota-server': ['ca.crt', 'crl.pem', 'server.crt', 'server.key', 'release.pub'],
    }
    return Object.entries(c.services).flatMap(([name, s]) =>
      mounts(s)
        .filter((m) => m.source === `${base}/pki` || m.source.startsWith(`${base}/pki/`))
        .filter((m) => !(allowed[name] ?? []).includes(m.source.slice(`${base}/pki/`.length)))
        .map((m) => `${name} mounts ${m.source.slice(base.length + 1)}`),
    )
  },
  'the gateway API and dashboard are served over HTTPS, never plain HTTP beyond loopback': (c) => {
    const env = c.services.gateway?.environment ?? {}
    return [
      ...(['FERRY_HTTP_TLS_CERT', 'FERRY_HTTP_TLS_KEY'] as const).filter((k) => !env[k]).map((k) => `gateway has no ${k}`),
      ...(/^(true|1|yes)$/i.test(String(env.FERRY_HTTP_INSECURE ?? '')) ? ['gateway sets FERRY_HTTP_INSECURE'] : []),
    ]
  },
}

t.test('docker-compose config -q accepts docker-compose.yml', async (t) => {
  const dir = tempDir(t, 'ferry-compose-')
  copyFileSync(join(root, 'docker-compose.yml'), join(dir, 'docker-compose.yml'))
  writeFileSync(join(dir, '.env'), '')
  const r = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { cwd: dir, env: { PATH: process.env.PATH, HOME: dir }, encoding: 'utf8' })
  t.equal(r.error, undefined, 'docker-compose is installed (scripts/bootstrap.sh)')
  t.equal(r.status, 0, r.stderr)
})

t.test('docker-compose.yml', async (t) => {
  const text = repoFile('docker-compose.yml')
  const config = composeConfig(t, text)

  t.same(Object.keys(config.services).sort(), ['gateway', 'grafana', 'influxdb', 'mosquitto', 'ota-server'])
  t.same(config.services.influxdb?.profiles, ['local-influx'], 'InfluxDB only in the local-influx profile')
  t.same(config.services.grafana?.profiles, ['local-influx'], 'Grafana only in the local-influx profile')
  for (const name of ['mosquitto', 'gateway', 'ota-server']) t.equal(config.services[name]?.profiles, undefined, `${name} runs without a profile`)
  for (const [name, check] of Object.entries(composeChecks)) t.same(check(config), [], name)

  t.test('every bind-mounted repo file exists', async (t) => {
    // Compose resolved relative paths against the temp folder it ran in (the build context).
    const base = config.services.gateway!.build!.context + '/'
    const rel = Object.values(config.services)
      .flatMap(mounts)
      .filter((m) => !m.named && m.source.startsWith(base))
      .map((m) => m.source.slice(base.length))
      // pki/ and ota/ are defaults for host-side folders that belong to the installation, not the repo.
      .filter((p) => !/^(pki|ota)(\/|$)/.test(p))
    t.same(rel.sort(), ['deploy/grafana/dashboards', 'deploy/grafana/provisioning/dashboards', 'deploy/grafana/provisioning/datasources', 'mosquitto/acl', 'mosquitto/mosquitto.conf'])
    for (const p of rel) t.ok(existsSync(join(root, p)), `${p} exists in the repo`)
  })

  t.test('the gateway reaches the broker over TLS by service name', async (t) => {
    t.match(config.services.gateway?.environment?.FERRY_MQTT_URL, /^mqtts:\/\/mosquitto:8883$/)
  })
})

t.test('each compose check fails on a copy that breaks it', async (t) => {
  const good = repoFile('docker-compose.yml')
  // [check, description, mutation]; each mutation must still be a valid Compose file.
  const cases: [string, string, (s: string) => string][] = [
    ['no MQTT port 1883 is published or exposed', 'a 1883 mapping on the broker', (s) => s.replace('- "${FERRY_PUBLISH_MQTT:-8883}:8883"', '- "${FERRY_PUBLISH_MQTT:-8883}:8883"\n      - "1883:1883"')],
    ['no MQTT port 1883 is published or exposed', 'a 1883 mapping on another host port', (s) => s.replace('- "${FERRY_PUBLISH_MQTT:-8883}:8883"', '- "${FERRY_PUBLISH_MQTT:-8883}:8883"\n      - "18830:1883"')],
    ['mosquitto publishes 8883 and nothing else', 'an extra WebSocket port', (s) => s.replace('- "${FERRY_PUBLISH_MQTT:-8883}:8883"', '- "${FERRY_PUBLISH_MQTT:-8883}:8883"\n      - "9001:9001"')],
    ['mosquitto is pinned to a 2.0.x release', 'the :2 tag', (s) => s.replace(/eclipse-mosquitto:2\.0\.\d+/, 'eclipse-mosquitto:2')],
    ['every image is pinned to a version', 'an untagged image', (s) => s.replace(/influxdb:1\.8\.\d+/, 'influxdb')],
    ['every image is pinned to a version', 'a :latest image', (s) => s.replace(/grafana\/grafana:[\d.]+/, 'grafana/grafana:latest')],
    ['every service has a healthcheck', 'a disabled one', (s) => s.replace(/\n {4}healthcheck:\n {6}# Every route needs[\s\S]*?start_period: \d+s\n/, '\n    healthcheck:\n      disable: true\n')],
    ['every service has a healthcheck', 'a service without one', (s) => s.replace(/\n {4}healthcheck:\n {6}# Every route needs[\s\S]*?start_period: \d+s\n/, '\n')],
    ['every service restarts unless stopped', 'restart: always on the Ferry services', (s) => s.replace(/(x-ferry-app:[\s\S]*?)restart: unless-stopped/, '$1restart: always')],
    ['every bind mount (config, certificates, keys, OTA files) is read-only', 'a writable PKI mount', (s) => s.replace(/(target: \/mosquitto\/config\/certs\/server\.key\n\s+)read_only: true/, '$1read_only: false')],
    ['each service mounts only the PKI files it reads', 'the whole PKI folder on the broker', (s) => s.replace('- mosquitto-data:/mosquitto/data', '- ${FERRY_HOST_PKI_DIR:-./pki}:/mosquitto/config/pki:ro\n      - mosquitto-data:/mosquitto/data')],
    ['each service mounts only the PKI files it reads', "the gateway's key on the OTA server", (s) => s.replace('source: ${FERRY_HOST_PKI_DIR:-./pki}/release.pub', 'source: ${FERRY_HOST_PKI_DIR:-./pki}/gateway.key')],
    ['the broker persistence and the buffer database live in named volumes', 'a bind mount for the buffer', (s) => s.replace('- gateway-data:/var/lib/ferry', '- /srv/ferry-data:/var/lib/ferry:ro')],
    ['the broker persistence and the buffer database live in named volumes', 'no broker persistence volume', (s) => s.replace(/\n\s*- mosquitto-data:\/mosquitto\/data/, '')],
    ['the Ferry services run as non-root users without privileges', 'user: root on the gateway', (s) => s.replace('command: ["gateway"]', 'command: ["gateway"]\n    user: root')],
    ['the Ferry services run as non-root users without privileges', 'user: "0:0" on the OTA server', (s) => s.replace('command: ["ota-server"]', 'command: ["ota-server"]\n    user: "0:0"')],
    ['the Ferry services run as non-root users without privileges', 'a writable root filesystem', (s) => s.replace('read_only: true', 'read_only: false')],
    ['certificate, key, CRL and release-key paths point into read-only mounts', 'a key outside the PKI mount', (s) => s.replace('FERRY_MQTT_KEY: /run/ferry/pki/gateway.key', 'FERRY_MQTT_KEY: /app/gateway.key')],
    ['certificate, key, CRL and release-key paths point into read-only mounts', 'an HTTPS key outside the PKI mount', (s) => s.replace('FERRY_HTTP_TLS_KEY: /run/ferry/pki/server.key', 'FERRY_HTTP_TLS_KEY: /app/server.key')],
    ['the gateway API and dashboard are served over HTTPS, never plain HTTP beyond loopback', 'no certificate', (s) => s.replace(/\n\s*FERRY_HTTP_TLS_CERT: \S+/, '')],
    ['the gateway API and dashboard are served over HTTPS, never plain HTTP beyond loopback', 'FERRY_HTTP_INSECURE', (s) => s.replace('FERRY_HTTP_HOST: 0.0.0.0', 'FERRY_HTTP_HOST: 0.0.0.0\n      FERRY_HTTP_INSECURE: "true"')],
  ]
  for (const [check, what, mutate] of cases) {
    t.test(`${check}: catches ${what}`, async (t) => {
      const bad = mutate(good)
      t.not(bad, good, 'the mutation applies to the current file')
      const problems = composeChecks[check]!(composeConfig(t, bad))
      t.ok(problems.length > 0, problems.join('; ') || 'no problem reported')
    })
  }
})

// ---- Dockerfile ------------------------------------------------------------------------------

interface Instruction {
  op: string
  args: string
  stage: number
}

/** Dockerfile instructions in order, with continuation lines joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = []
  let stage = -1
  let pending = ''
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw) && !pending) continue
    if (/^\s*#/.test(raw)) continue // comments inside a continued instruction
    const line = raw.replace(/\s+$/, '')
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' '
      continue
    }
    const full = (pending + line).trim()
    pending = ''
    if (!full) continue
    const m = /^(\w+)\s*(.*)$/.exec(full)
    if (!m) continue
    const op = m[1]!.toUpperCase()
    if (op === 'FROM') stage++
    out.push({ op, args: m[2]!, stage })
  }
  return out
}

/** The image a FROM names, with `${ARG}` replaced by the ARG's default from before the first FROM. */
function fromImages(ins: Instruction[]): string[] {
  const args = new Map<string, string>()
  for (const i of ins.filter((x) => x.op === 'ARG' && x.stage === -1)) {
    const [k, v = ''] = i.args.split('=', 2)
    args.set(k!.trim(), v.trim())
  }
  const stages = new Set(ins.filter((i) => i.op === 'FROM').map((i) => /\bAS\s+(\S+)/i.exec(i.args)?.[1]?.toLowerCase()).filter(Boolean))
  return ins
    .filter((i) => i.op === 'FROM')
    .map((i) => i.args.replace(/^--platform=\S+\s+/, '').split(/\s+/)[0]!.replace(/\$\{?(\w+)\}?/g, (_, k: string) => args.get(k) ?? ''))
    .filter((img) => !stages.has(img.toLowerCase()))
}

/** The context paths a COPY or ADD reads (every argument but the destination, flags excluded). */
function copySources(i: Instruction): string[] {
  const args = i.args.split(/\s+/).filter((a) => a && !a.startsWith('--'))
  return args.slice(0, -1)
}

const dockerfileChecks: Record<string, (ins: Instruction[]) => string[]> = {
  'multi-stage build': (ins) => {
    const n = ins.filter((i) => i.op === 'FROM').length
    return n >= 2 ? [] : [`${n} stage(s)`]
  },
  'every stage is based on Node 22 slim': (ins) =>
    fromImages(ins)
      .filter((img) => !/^node:22(\.\d+){0,2}-(\w+-)?slim(@sha256:[0-9a-f]{64})?$/.test(img))
      .map((img) => `base image ${img}`),
  'the runtime stage sets NODE_ENV=production': (ins) => {
    const last = Math.max(...ins.map((i) => i.stage))
    return ins.some((i) => i.stage === last && i.op === 'ENV' && /(^|\s)NODE_ENV=("?)production\2(\s|$)/.test(i.args)) ? [] : ['no ENV NODE_ENV=production in the final stage']
  },
  'the runtime stage runs as a non-root user': (ins) => {
    const last = Math.max(...ins.map((i) => i.stage))
    const user = ins.filter((i) => i.stage === last && i.op === 'USER').pop()?.args.trim()
    if (!user) return ['no USER in the final stage (defaults to root)']
    return /^(root|0)(:|$)/.test(user) ? [`USER ${user}`] : []
  },
  'no key, PKI folder or .env is copied into the image': (ins) =>
    ins
      .filter((i) => i.op === 'COPY' || i.op === 'ADD')
      .filter((i) => !/--from=/.test(i.args))
      // Sources are every argument but the last (the destination), flags excluded.
      .filter((i) => copySources(i).some((src) => /\.(key|pem|p12|pfx)$|(^|\/)pki(\/|$)|(^|\/)\.env|^\.\/?$/.test(src)))
      .map((i) => `${i.op} ${i.args}`),
}

t.test('Dockerfile', async (t) => {
  const ins = parseDockerfile(repoFile('Dockerfile'))
  for (const [name, check] of Object.entries(dockerfileChecks)) t.same(check(ins), [], name)
  t.ok(
    ins.some((i) => i.op === 'RUN' && /npm prune --omit=dev/.test(i.args)),
    'dev dependencies are pruned before node_modules is copied to the runtime stage',
  )
  const last = Math.max(...ins.map((i) => i.stage))
  t.same(
    ins.filter((i) => i.stage === last && (i.op === 'COPY' || i.op === 'ADD') && !/--from=build\b/.test(i.args)).map((i) => i.args),
    [],
    'the runtime stage takes files only from the build stage',
  )
  t.notOk(ins.some((i) => i.stage === last && i.op === 'RUN' && /\b(apt-get|npm (ci|install))\b/.test(i.args)), 'no compiler or install step in the runtime stage')
})

t.test('each Dockerfile check fails on a copy that breaks it', async (t) => {
  const good = repoFile('Dockerfile')
  const cases: [string, string, (s: string) => string][] = [
    ['multi-stage build', 'a single stage', (s) => s.replace(/FROM \$\{NODE_IMAGE\} AS runtime[\s\S]*$/, 'USER 1000\nENV NODE_ENV=production\n')],
    ['every stage is based on Node 22 slim', 'the full node:22 image', (s) => s.replace('ARG NODE_IMAGE=node:22-bookworm-slim', 'ARG NODE_IMAGE=node:22-bookworm')],
    ['every stage is based on Node 22 slim', 'Node 20', (s) => s.replace('ARG NODE_IMAGE=node:22-bookworm-slim', 'ARG NODE_IMAGE=node:20-bookworm-slim')],
    ['the runtime stage sets NODE_ENV=production', 'no NODE_ENV', (s) => s.replace(/\nENV NODE_ENV=production\n/, '\n')],
    ['the runtime stage runs as a non-root user', 'USER root', (s) => s.replace(/\nUSER [^\n]+/, '\nUSER root')],
    ['the runtime stage runs as a non-root user', 'USER 0:0', (s) => s.replace(/\nUSER [^\n]+/, '\nUSER 0:0')],
    ['the runtime stage runs as a non-root user', 'no USER', (s) => s.replace(/\nUSER [^\n]+/, '\n')],
    ['no key, PKI folder or .env is copied into the image', 'a copied key', (s) => s.replace(/\nUSER /, '\nCOPY pki/server.key /run/ferry/pki/server.key\nUSER ')],
    ['no key, PKI folder or .env is copied into the image', 'the whole context', (s) => s.replace(/\nUSER /, '\nCOPY . /app\nUSER ')],
  ]
  for (const [check, what, mutate] of cases) {
    t.test(`${check}: catches ${what}`, async (t) => {
      const bad = mutate(good)
      t.not(bad, good, 'the mutation applies to the current file')
      t.ok(dockerfileChecks[check]!(parseDockerfile(bad)).length > 0)
    })
  }
})

t.test('.dockerignore admits only build inputs and never secrets', async (t) => {
  const lines = repoFile('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  t.equal(lines[0], '*', 'everything is excluded first (allow-list)')
  const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''))
  t.same(allowed.filter((p) => /pki|\.env|\.key|\.pem|\.db|firmware|\.git/.test(p)), [], 'no secret or state path is allowed back in')
  // Keys, .env and databases inside the allowed source folders are excluded again, after the allow lines.
  const lastAllow = Math.max(...lines.map((l, i) => (l.startsWith('!') ? i : -1)))
  for (const p of ['**/*.key', '**/*.pem', '**/.env', '**/*.db']) {
    t.ok(lines.indexOf(p) > lastAllow, `${p} is excluded after the allow-list`)
  }
  // An exclusion by folder name would also hit source folders of the same name (common/src/pki/ once
  // broke the image build that way): exclusions name file patterns only.
  t.same(lines.filter((l) => !l.startsWith('!') && l !== '*' && l !== '**/node_modules/' && /\/$|\/\*\*$/.test(l)), [], 'no folder-name exclusions but node_modules')
  // Everything the Dockerfile copies from the context is allowed in.
  const copied = parseDockerfile(repoFile('Dockerfile'))
    .filter((i) => i.op === 'COPY' && !/--from=/.test(i.args))
    .flatMap(copySources)
  t.same(copied.filter((c) => !allowed.includes(c.replace(/^\.\//, '').replace(/\/$/, ''))), [], 'every COPY source is in the allow-list')
  // Everything `npm run build` compiles reaches the build stage (the image build ran tsc on sources
  // that were never copied in, and failed).
  const compiled = (JSON.parse(repoFile('tsconfig.build.json')) as { include: string[] }).include
  const inContext = (p: string) => copied.some((c) => { const src = c.replace(/^\.\//, '').replace(/\/$/, ''); return p === src || p.startsWith(`${src}/`) })
  t.same(compiled.filter((p) => !inContext(p)), [], 'every path tsconfig.build.json compiles is copied into the build stage')
})

t.test('mosquitto.conf mounted into the container listens on 8883 only', async (t) => {
  const conf = repoFile('mosquitto/mosquitto.conf')
  const listeners = [...conf.matchAll(/^\s*(listener|port)\s+(\S+)/gm)].map((m) => `${m[1]} ${m[2]}`)
  t.same(listeners, ['listener 8883'])
  t.match(conf, /^\s*require_certificate\s+true/m)
  t.match(conf, /^\s*allow_anonymous\s+false/m)
})

// ---- the healthcheck commands, run for real -----------------------------------------------------

function healthcheck(t: Tap, service: string): string[] {
  return [composeConfig(t, repoFile('docker-compose.yml')).services[service]?.healthcheck?.test ?? []].flat()
}

/** Runs a healthcheck command without blocking this process, which may be serving the probe itself. */
async function exitCode(cmd: string[], env: NodeJS.ProcessEnv = {}): Promise<number> {
  const child = spawn(cmd[0]!, cmd.slice(1), { env: { ...process.env, ...env }, stdio: 'ignore', timeout: 15_000 })
  const [code] = (await once(child, 'exit')) as [number | null]
  return code ?? -1
}

async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const a = server.address()
  return typeof a === 'object' && a ? a.port : 0
}

t.test('broker healthcheck: healthy while mosquitto listens, unhealthy once it stops', async (t) => {
  const [kind, script] = healthcheck(t, 'mosquitto')
  t.equal(kind, 'CMD-SHELL')
  t.match(script, /:22B3 /, 'checks port 8883 (hex 22B3)')
  const broker = await startTestBroker(t)
  const port = Number(new URL(broker.url).port)
  // The same command, aimed at the test broker's port; /proc/net/tcp is the host's here.
  const probe = ['sh', '-c', script!.replace('22B3', port.toString(16).toUpperCase().padStart(4, '0'))]
  t.equal(await exitCode(probe), 0, 'healthy while the broker listens')
  await broker.stop()
  t.not(await exitCode(probe), 0, 'unhealthy after the broker stopped')
})

t.test('gateway healthcheck: follows GET /healthz over plain HTTP when no certificate is set', async (t) => {
  const cmd = healthcheck(t, 'gateway')
  t.equal(cmd[0], 'CMD')
  let status = 200
  const seen: string[] = []
  const server = createHttpServer((req, res) => {
    seen.push(req.url ?? '')
    res.writeHead(status).end()
  })
  const port = await listen(server)
  t.teardown(() => server.close())
  const env = { FERRY_HTTP_PORT: String(port) }
  t.equal(await exitCode(cmd.slice(1), env), 0, 'healthy on 200')
  status = 503
  t.equal(await exitCode(cmd.slice(1), env), 1, 'unhealthy on 503')
  t.same(seen, ['/healthz', '/healthz'])
  server.close()
  await once(server, 'close')
  t.equal(await exitCode(cmd.slice(1), env), 1, 'unhealthy when nothing listens')
})

t.test('gateway healthcheck: talks HTTPS when FERRY_HTTP_TLS_CERT is set, and trusts only that certificate', async (t) => {
  // As in the container: the check connects to 127.0.0.1 with the compose file's environment.
  const cmd = healthcheck(t, 'gateway').slice(1)
  const pki = await makePki(t, [])
  const other = await makePki(t, [])
  let status = 200
  const seen: string[] = []
  const serve = (p: typeof pki) =>
    createHttpsServer({ cert: readFileSync(p.files.serverCert), key: readFileSync(p.files.serverKey) }, (req, res) => {
      seen.push(req.url ?? '')
      res.writeHead(status).end()
    })
  const server = serve(pki)
  const port = await listen(server)
  t.teardown(() => server.close())
  const env = { FERRY_HTTP_PORT: String(port), FERRY_HTTP_TLS_CERT: pki.files.serverCert }
  t.equal(await exitCode(cmd, env), 0, 'healthy on 200 over HTTPS')
  status = 503
  t.equal(await exitCode(cmd, env), 1, 'unhealthy on 503')
  t.same(seen, ['/healthz', '/healthz'])
  status = 200
  // Another server on the port (here: another PKI's certificate) does not make the gateway healthy.
  const impostor = serve(other)
  const impostorPort = await listen(impostor)
  t.teardown(() => impostor.close())
  t.equal(await exitCode(cmd, { ...env, FERRY_HTTP_PORT: String(impostorPort) }), 1, 'unhealthy when the certificate is not the configured one')
  t.equal(seen.length, 3, 'the impostor was asked, and its 200 did not count')
  server.close()
  await once(server, 'close')
  t.equal(await exitCode(cmd, env), 1, 'unhealthy when nothing listens')
})

t.test('OTA server healthcheck: follows the TLS port', async (t) => {
  const cmd = healthcheck(t, 'ota-server')
  t.equal(cmd[0], 'CMD')
  const server = createTcpServer((s) => s.destroy())
  const port = await listen(server)
  t.teardown(() => server.close())
  const env = { FERRY_OTA_PORT: String(port) }
  t.equal(await exitCode(cmd.slice(1), env), 0, 'healthy while the port accepts connections')
  server.close()
  await once(server, 'close')
  t.equal(await exitCode(cmd.slice(1), env), 1, 'unhealthy when nothing listens')
})

t.test('Grafana provisioning: the dashboard uses the provisioned InfluxDB datasource', async (t) => {
  const ds = JSON.parse(
    execFileSync('python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)', join(root, 'deploy/grafana/provisioning/datasources/ferry.yml')], { encoding: 'utf8' }),
  ) as { datasources: { uid: string; type: string; url: string; jsonData: { dbName: string } }[] }
  const [source] = ds.datasources
  t.match(source, { type: 'influxdb', url: 'http://influxdb:8086', jsonData: { dbName: 'ferry' } })
  const dash = JSON.parse(repoFile('deploy/grafana/dashboards/ferry-telemetry.json')) as { panels: { title: string; datasource: { uid: string }; targets: { query: string; datasource: { uid: string } }[] }[] }
  t.ok(dash.panels.length >= 3)
  for (const p of dash.panels) {
    t.equal(p.datasource.uid, source!.uid, `${p.title}: provisioned datasource`)
    for (const q of p.targets) {
      t.equal(q.datasource.uid, source!.uid)
      t.match(q.query, /FROM "telemetry"/, `${p.title}: reads the measurement the InfluxDB sink writes`)
    }
  }
})
