// The Raspberry Pi guide (docs/raspberry-pi.md), followed step by step against a real Docker engine:
// the project's own Dockerfile and docker-compose.yml, unchanged, built and started; PKI from the
// `ferry` CLI; files installed with the guide's owners and modes; .env from .env.example. Then what a
// user checks: all three services healthy, readings from a device certificate delivered exactly once
// across `restart gateway` and a SIGKILL of the gateway, OTA over mutual TLS, no plain MQTT, and the
// Ferry containers read-only and non-root.
//
// No registry is reachable here, so the public base images are local stand-ins built first
// (test/docker/standin/, test scaffolding). FERRY_STACK_IMAGE_TAG=<tag> runs the stack on an image
// built beforehand under that tag instead of building it (scripts/test-arm64.sh: the arm64 image).
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import mqtt from 'mqtt'
import { tempDir } from '../helpers/tmp.js'
import { freePort } from '../helpers/ports.js'
import { waitUntil } from '../helpers/wait.js'
import { verifyEnvelope } from '../../ota-server/src/manifest/index.js'

const ROOT = join(import.meta.dirname, '..', '..')
const DOCKER = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker'
const prebuiltTag = process.env.FERRY_STACK_IMAGE_TAG
const PROJECT_PREFIX = 'ferrystack'

// Building on a fresh machine (stand-ins, then the image with a native module) takes minutes: raise
// the suite's per-file limit for this file (tap forwards it to the runner) and for the test itself.
const TIMEOUT_MS = 50 * 60_000
t.setTimeout(TIMEOUT_MS)

interface Run {
  code: number
  out: string
}

/** Runs a command; resolves with its exit code and combined output (never rejects on a non-zero exit). */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    let out = ''
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
    child.on('error', reject)
    if (opts.input !== undefined) child.stdin!.end(opts.input)
    child.on('close', (code) => resolve({ code: code ?? 1, out }))
  })
}

async function must(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}):\n${r.out.slice(-4000)}`)
  return r.out
}

/** `ferry …` as a user runs it from the checkout. */
const ferry = (args: string[]) => must(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT })

/** A copy of the checkout's files (tracked, plus new ones not ignored): what `git clone` would give. */
async function copyCheckout(dest: string): Promise<void> {
  const list = await must('git', ['-C', ROOT, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'])
  for (const rel of list.split('\0').filter(Boolean)) {
    const src = join(ROOT, rel)
    if (!existsSync(src)) continue // deleted in the work tree
    mkdirSync(dirname(join(dest, rel)), { recursive: true })
    copyFileSync(src, join(dest, rel))
    chmodSync(join(dest, rel), statSync(src).mode & 0o777)
  }
}

/** Sets `NAME=value` in a dotenv text: replaces an existing (possibly commented) line, else appends. */
function setEnv(text: string, name: string, value: string): string {
  const re = new RegExp(`^#?${name}=.*$`, 'm')
  return re.test(text) ? text.replace(re, `${name}=${value}`) : `${text.trimEnd()}\n${name}=${value}\n`
}

interface LineReading {
  device: string
  seq: number
  boot: number
}

/** The readings in a line-protocol file written by the file sink. */
function parseLines(text: string): LineReading[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('telemetry,'))
    .map((l) => ({ device: /device=([^, ]+)/.exec(l)![1]!, seq: Number(/[ ,]seq=(\d+)i/.exec(l)![1]), boot: Number(/[ ,]boot=(\d+)i/.exec(l)![1]) }))
}

t.test('the Raspberry Pi guide on a real Docker engine', { timeout: TIMEOUT_MS }, async (t) => {
  await must('bash', [join(ROOT, 'test/docker/dockerd.sh')])
  if (!prebuiltTag) await must('bash', [join(ROOT, 'test/docker/standin/build.sh')])
  // Leftovers of an earlier run that was killed (their restart policy would bring them back), told
  // apart from a run still going on beside this one by the test process id in the project name.
  for (const p of new Set((await must(DOCKER, ['ps', '-a', '--format', '{{.Label "com.docker.compose.project"}}'])).split('\n'))) {
    const pid = Number(new RegExp(`^${PROJECT_PREFIX}(\\d+)x`).exec(p)?.[1])
    if (pid && !processAlive(pid)) {
      const ids = (await must(DOCKER, ['ps', '-aq', '--filter', `label=com.docker.compose.project=${p}`])).split('\n').filter(Boolean)
      if (ids.length) await run(DOCKER, ['rm', '-f', '-v', ...ids])
    }
  }

  const work = tempDir(t, 'ferry-stack-')
  const checkout = join(work, 'opt/ferry') // step 3: the checkout on the Pi
  await copyCheckout(checkout)
  const ws = join(work, 'workstation')
  const host = join(work, 'host') // stands for the Pi's / in steps 5–6
  const pkiDir = join(host, 'etc/ferry/pki')
  const otaDir = join(host, 'srv/ferry/ota')

  // ---- step 4: certificates and the release key on the workstation --------------------------------
  await ferry(['pki', 'init', '--dir', join(ws, 'pki')])
  await ferry(['pki', 'server', '--dir', join(ws, 'pki'), '--host', 'mosquitto', '--host', 'localhost', '--ip', '127.0.0.1'])
  await ferry(['pki', 'device', 'node-01', '--dir', join(ws, 'pki')])
  await ferry(['ota', 'keygen', '--out', join(ws, 'release')])
  writeFileSync(join(ws, 'firmware.bin'), randomBytes(200_000))
  await ferry(['ota', 'publish', join(ws, 'firmware.bin'), '--version', '1.2.0', '--hw', 'esp32-devkit', '--secure-version', '1', '--key', join(ws, 'release/release.key'), '--dir', join(ws, 'ota')])

  // ---- step 5: only the Pi's files, with the guide's owners and modes ------------------------------
  const install = (args: string[]) => must('install', args)
  await install(['-d', '-o', 'root', '-g', 'root', '-m', '0755', pkiDir])
  const p = (f: string) => join(ws, 'pki', f)
  await install(['-o', 'root', '-g', 'root', '-m', '0644', p('ca.crt'), p('crl.pem'), p('server.crt'), p('gateway.crt'), join(ws, 'release/release.pub'), pkiDir])
  await install(['-o', '1883', '-g', '1000', '-m', '0640', p('server.key'), pkiDir])
  await install(['-o', '1000', '-g', '1000', '-m', '0600', p('gateway.key'), pkiDir])
  await install(['-d', '-o', 'root', '-g', 'root', '-m', '0755', join(otaDir, 'releases'), join(otaDir, 'images')])
  // `<src>/.` copies the folder's contents (path.join would drop the trailing `/.`).
  await must('cp', ['-a', `${join(ws, 'ota/releases')}/.`, join(otaDir, 'releases')])
  await must('cp', ['-a', `${join(ws, 'ota/images')}/.`, join(otaDir, 'images')])
  t.same(readdirSync(pkiDir).sort(), ['ca.crt', 'crl.pem', 'gateway.crt', 'gateway.key', 'release.pub', 'server.crt', 'server.key'], 'no CA key, device key or release key on the Pi')

  // ---- step 6: .env from .env.example --------------------------------------------------------------
  const [mqttPort, httpPort, otaPort] = [await freePort(), await freePort(), await freePort()]
  const token = randomBytes(32).toString('hex')
  let env = readFileSync(join(checkout, '.env.example'), 'utf8')
  for (const [k, v] of Object.entries({
    FERRY_HOST_PKI_DIR: pkiDir,
    FERRY_HOST_OTA_DIR: otaDir,
    FERRY_API_TOKEN: token,
    FERRY_DB_SYNCHRONOUS: 'FULL',
    // This machine's other tests use the default ports; keep the stack on loopback and free ports.
    FERRY_PUBLISH_MQTT: `127.0.0.1:${mqttPort}`,
    FERRY_PUBLISH_HTTP: `127.0.0.1:${httpPort}`,
    FERRY_PUBLISH_OTA: `127.0.0.1:${otaPort}`,
    ...(prebuiltTag ? { FERRY_IMAGE_TAG: prebuiltTag } : {}),
  })) {
    env = setEnv(env, k, v)
  }
  writeFileSync(join(checkout, '.env'), env, { mode: 0o600 })

  // ---- step 7: build and start -----------------------------------------------------------------------
  const project = `${PROJECT_PREFIX}${process.pid}x${randomBytes(3).toString('hex')}`
  const composeEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_')))
  const compose = (args: string[]) => run('docker-compose', ['-p', project, ...args], { cwd: checkout, env: composeEnv })
  const composeMust = async (args: string[]) => {
    const r = await compose(args)
    if (r.code !== 0) throw new Error(`docker-compose ${args.join(' ')} failed (exit ${r.code}):\n${r.out.slice(-6000)}`)
    return r.out
  }
  t.teardown(async () => {
    const r = await compose(['down', '-v', '--remove-orphans', '-t', '20'])
    if (r.code !== 0) console.error(r.out)
  })
  const dumpLogsOnFailure = async () => {
    if (!t.passing()) console.error((await compose(['logs', '--no-color', '--tail', '80'])).out)
  }
  t.teardown(dumpLogsOnFailure)

  if (!prebuiltTag) {
    const started = Date.now()
    await composeMust(['build'])
    t.comment(`docker-compose build: ${Math.round((Date.now() - started) / 1000)} s`)
  }
  await composeMust(['up', '-d'])

  const containerId = async (svc: string) => (await composeMust(['ps', '-q', svc])).trim()
  const inspect = async (svc: string) => JSON.parse(await must(DOCKER, ['inspect', await containerId(svc)]))[0] as Inspect
  const healthy = async (svcs: string[], timeoutMs = 240_000) =>
    waitUntil(
      async () => {
        for (const s of svcs) if ((await inspect(s)).State.Health?.Status !== 'healthy') return false
        return true
      },
      `${svcs.join(', ')} healthy`,
      timeoutMs,
      1000,
    )
  await healthy(['mosquitto', 'gateway', 'ota-server'])
  t.pass('all three services are healthy')

  // ---- step 8: the checks a user makes -------------------------------------------------------------
  // The API is HTTPS with the server certificate (it names 127.0.0.1); curl verifies it with the CA.
  const health = await run('curl', ['-sS', '--max-time', '20', '--cacert', p('ca.crt'), `https://127.0.0.1:${httpPort}/healthz`])
  t.equal(health.code, 0, `/healthz answers over HTTPS (${health.out.trim()})`)
  t.match(JSON.parse(health.out), { ok: true, reasons: [] })
  t.not((await run('curl', ['-sS', '--max-time', '20', `http://127.0.0.1:${httpPort}/healthz`])).code, 0, 'no plain HTTP')

  // Security properties of the running containers.
  for (const svc of ['gateway', 'ota-server']) {
    const ins = await inspect(svc)
    t.equal(ins.HostConfig.ReadonlyRootfs, true, `${svc}: read-only root file system`)
    t.equal(ins.Config.User, '1000:1000', `${svc}: runs as uid 1000`)
    t.equal((await composeMust(['exec', '-T', svc, 'id', '-u'])).trim(), '1000', `${svc}: its process is not root`)
    const write = await compose(['exec', '-T', svc, 'node', '-e', "require('fs').writeFileSync('/app/x', '')"])
    t.not(write.code, 0, `${svc}: cannot write into its own code`)
    t.match(write.out, /EROFS|EACCES/)
  }
  const certsIn = async (svc: string, dir: string) => (await composeMust(['exec', '-T', svc, 'ls', dir])).split(/\s+/).filter(Boolean).sort()
  t.same(await certsIn('mosquitto', '/mosquitto/config/certs'), ['ca.crt', 'crl.pem', 'server.crt', 'server.key'], 'the broker sees only its own files')
  t.same(await certsIn('gateway', '/run/ferry/pki'), ['ca.crt', 'gateway.crt', 'gateway.key', 'server.crt', 'server.key'], 'the gateway sees only its own files (and the server certificate for HTTPS)')
  t.same(await certsIn('ota-server', '/run/ferry/pki'), ['ca.crt', 'crl.pem', 'release.pub', 'server.crt', 'server.key'], 'the OTA server sees only its own files')

  // No plain MQTT: the broker listens on 8883 only (read from its own /proc), publishes only 8883, and a
  // client without TLS is not let in.
  const tcp = await composeMust(['exec', '-T', 'mosquitto', 'cat', '/proc/net/tcp', '/proc/net/tcp6'])
  // 127.0.0.11 (0B00007F) is Docker's embedded DNS resolver, which lives in every container's network.
  const listening = [...tcp.matchAll(/^\s*\d+: ([0-9A-F]+):([0-9A-F]{4}) [0-9A-F]+:[0-9A-F]{4} 0A /gm)].filter((m) => m[1] !== '0B00007F').map((m) => parseInt(m[2]!, 16))
  t.same([...new Set(listening)], [8883], 'the broker listens on 8883 only')
  const published = Object.entries((await inspect('mosquitto')).NetworkSettings.Ports).filter(([, bindings]) => bindings !== null)
  t.same(published.map(([port]) => port), ['8883/tcp'], 'the broker publishes 8883 only')
  await t.rejects(connectDevice(`mqtt://127.0.0.1:${mqttPort}`, {}), 'plain MQTT is refused')
  await t.rejects(connectDevice(`mqtts://127.0.0.1:${mqttPort}`, { ca: readFileSync(p('ca.crt')) }), 'TLS without a client certificate is refused')

  // OTA over mutual TLS.
  const latest = `https://127.0.0.1:${otaPort}/ota/latest?hw=esp32-devkit&version=1.0.0&secure_version=0`
  const dev = ['--cacert', p('ca.crt'), '--cert', join(ws, 'pki/devices/node-01.crt'), '--key', join(ws, 'pki/devices/node-01.key')]
  const ok = await run('curl', ['-sS', '--max-time', '20', '-o', '-', '-w', '\n%{http_code}', ...dev, latest])
  const lines = ok.out.trim().split('\n')
  if (!t.equal(lines.pop(), '200', '/ota/latest answers 200 to a device certificate')) {
    console.error(ok.out, (await compose(['exec', '-T', 'ota-server', 'ls', '-laR', '/srv/ferry/ota'])).out, (await compose(['logs', '--no-color', 'ota-server'])).out)
  }
  const { manifest } = verifyEnvelope(lines.join('\n'), readFileSync(join(ws, 'release/release.pub'), 'utf8'), { hw: 'esp32-devkit', currentVersion: '1.0.0', secureVersion: 0 })
  t.equal(manifest.version, '1.2.0', 'a signed envelope that verifies against the release key')
  const refused = await run('curl', ['-sS', '--max-time', '20', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', p('ca.crt'), latest])
  t.ok(refused.code !== 0 || refused.out.trim() !== '200', `/ota/latest is refused without a client certificate (curl exit ${refused.code}, ${refused.out.trim()})`)

  // Readings from the device certificate, delivered exactly once across a restart and a SIGKILL.
  const device = await connectDevice(`mqtts://127.0.0.1:${mqttPort}`, { ca: readFileSync(p('ca.crt')), cert: readFileSync(join(ws, 'pki/devices/node-01.crt')), key: readFileSync(join(ws, 'pki/devices/node-01.key')) })
  t.teardown(() => device.endAsync(true))
  let seq = 0
  const publish = async (n: number) => {
    for (let i = 0; i < n; i++) {
      seq++
      await device.publishAsync('sensors/node-01/telemetry', JSON.stringify({ seq, boot: 1, pot: (seq * 37) % 4096, switch: seq % 2 }), { qos: 1 })
    }
  }
  const volume = (await must(DOCKER, ['volume', 'inspect', '-f', '{{.Mountpoint}}', `${project}_gateway-data`])).trim()
  const sinkFile = join(volume, 'out/telemetry.lp')
  const delivered = () => (existsSync(sinkFile) ? parseLines(readFileSync(sinkFile, 'utf8')) : [])
  const allDelivered = () => waitUntil(() => delivered().length >= seq, `${seq} readings in the sink file`, 180_000, 250)

  await publish(100)
  await allDelivered()
  t.pass('100 readings delivered')

  // docker compose restart gateway, while the device keeps publishing (the broker queues for the
  // gateway's persistent session).
  const restart = compose(['restart', 'gateway'])
  await publish(100)
  t.equal((await restart).code, 0, 'restart gateway')
  await healthy(['gateway'])
  await allDelivered()
  t.pass('200 readings delivered across a restart')

  // SIGKILL of the gateway's Node process (the container's init reaps it and the container exits;
  // the restart policy brings it back), in the middle of a stream of readings.
  const before = (await inspect('gateway')).RestartCount
  const initPid = (await inspect('gateway')).State.Pid
  const nodePid = Number(readFileSync(`/proc/${initPid}/task/${initPid}/children`, 'utf8').trim().split(/\s+/)[0])
  t.ok(nodePid > 0, 'found the gateway process')
  const streaming = publish(300)
  await waitUntil(() => seq >= 250, 'half the stream published', 60_000, 20)
  process.kill(nodePid, 'SIGKILL')
  await streaming
  await waitUntil(async () => (await inspect('gateway')).RestartCount > before, 'the gateway container restarted', 60_000, 500)
  await healthy(['gateway'])
  await allDelivered()

  const got = delivered()
  const seqs = got.map((r) => r.seq)
  t.equal(got.length, seq, `${seq} readings published, ${got.length} lines in the sink file`)
  t.same([...new Set(seqs)].sort((a, b) => a - b), Array.from({ length: seq }, (_, i) => i + 1), 'every reading, exactly once')
  t.ok(got.every((r) => r.device === 'node-01' && r.boot === 1), 'from the device certificate')
})

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function connectDevice(url: string, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer }): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(url, { ...tls, reconnectPeriod: 0, connectTimeout: 10_000, clean: true })
    c.once('connect', () => resolve(c))
    const fail = (err: Error) => {
      c.end(true)
      reject(err)
    }
    c.once('error', fail)
    c.once('close', () => fail(new Error('closed before CONNACK')))
  })
}

interface Inspect {
  RestartCount: number
  State: { Pid: number; Health?: { Status: string } }
  Config: { User: string }
  HostConfig: { ReadonlyRootfs: boolean }
  NetworkSettings: { Ports: Record<string, unknown> }
}
