/**
 * `ferry demo` (`npm run demo`): the whole native stack in `.ferry-demo/`, for trying Ferry without
 * Docker or hardware. A fresh PKI and release key, `ferry broker`, `ferry gateway`, `ferry ota-server`
 * (each a real child process, as in production), a local sink (a private InfluxDB 1.x when `influxd`
 * is installed, else the file sink), and three simulated devices in this process. A firmware 1.1.0 is
 * published so the devices update themselves over the air.
 *
 * Ctrl-C (or `--duration`) stops the devices (every reading they took is then acknowledged by the
 * broker), waits until the sink has received everything, prints readings published, stored and
 * delivered per device, and stops the services. Exit 0 only when every published reading was
 * delivered to the local sink.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { chmodSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseCli, parseDuration } from '../common/src/cli-args.js'
import { UsageError } from '../common/src/errors.js'
import { createLogger } from '../common/src/logger.js'
import { startLocalInfluxd, type LocalInfluxd } from '../common/src/influxd.js'
import { freeTcpPort } from '../common/src/ports.js'
import { initPki, issueDevice, issueServer, pkiFiles } from '../common/src/pki/pki.js'
import { assertBrokerCanReach, brokerReachProblem, waitForPort } from '../common/src/broker/broker.js'
import { generateReleaseKey } from '../ota-server/src/manifest/index.js'
import { publishRelease } from '../ota-server/src/store/publish.js'
import { DeviceSim, deviceTlsFromPki } from '../device-sim/src/sim.js'
import { openBuffer, readingCounts } from '../gateway/src/buffer/index.js'

const HELP = `usage: ferry demo [--duration <s>] [--dir <d>] [--rate <r>] [--sink influxdb|file] [--keep]

Runs Ferry's whole native stack with three simulated devices, in .ferry-demo/ (replaced on each run):
fresh PKI, "ferry broker", "ferry gateway", "ferry ota-server", a local sink (a private InfluxDB 1.x
when influxd is installed, else the file sink) and devices demo-1..demo-3 publishing telemetry.

  --duration <s>   stop by itself after this long (e.g. 20 or 2m); default: until Ctrl-C
  --dir <d>        working folder (default .ferry-demo)
  --rate <r>       readings per second per device (default 2)
  --sink <name>    influxdb or file (default: influxdb when installed)
  --keep           keep the working folder's previous contents (default: start fresh)

Run as root, mosquitto drops to its own user; when that user cannot enter the working folder (say
/root, mode 0700), the broker's data goes to a private temp folder instead, removed at the end.

Exit 0 when every reading the devices published was delivered to the local sink.`

const DEVICES = ['demo-1', 'demo-2', 'demo-3']
// How long a service may take to accept connections. A service that exits is noticed at once (the
// liveness check beside each wait); this only bounds a hung one. A busy Pi, or a machine building
// images at the same time, can take tens of seconds to start three Node processes.
const START_TIMEOUT_MS = 90_000

interface Service {
  name: string
  child: ChildProcess
  exited: Promise<number | null>
}

export async function run(argv: string[]): Promise<number> {
  const { values, help } = parseCli(argv, {
    duration: { type: 'string' },
    dir: { type: 'string', default: '.ferry-demo' },
    rate: { type: 'string', default: '2' },
    sink: { type: 'string' },
    keep: { type: 'boolean' },
  }, HELP, false)
  if (help) {
    process.stdout.write(HELP + '\n')
    return 0
  }
  const durationMs = values.duration === undefined ? undefined : parseDuration(values.duration)
  const rate = Number(values.rate)
  if (!(rate > 0 && rate <= 100)) throw new UsageError(`--rate must be between 0 and 100 readings per second, got ${values.rate}`)
  const haveInflux = commandExists('influxd')
  const sinkKind = values.sink ?? (haveInflux ? 'influxdb' : 'file')
  if (sinkKind !== 'influxdb' && sinkKind !== 'file') throw new UsageError('--sink must be influxdb or file')
  if (sinkKind === 'influxdb' && !haveInflux) throw new UsageError('--sink influxdb needs influxd (Debian: apt-get install influxdb)')

  const dir = resolve(values.dir!)
  if (!values.keep) rmSync(dir, { recursive: true, force: true })
  mkdirSync(join(dir, 'logs'), { recursive: true })
  const log = createLogger({ name: 'ferry-demo', destination: createWriteStream(join(dir, 'logs', 'demo.log')) })
  const say = (line = '') => process.stdout.write(line + '\n')
  const services: Service[] = []
  let influx: LocalInfluxd | undefined
  const sims: DeviceSim[] = []
  let brokerTemp: string | undefined

  const stopAll = async () => {
    await Promise.allSettled(sims.map((s) => s.stop()))
    // Gateway first (it drains to the sink and commits), then the rest.
    for (const name of ['gateway', 'ota-server', 'broker']) {
      const s = services.find((x) => x.name === name)
      if (!s || s.child.exitCode !== null) continue
      s.child.kill('SIGTERM')
      const t = setTimeout(() => s.child.kill('SIGKILL'), 6000)
      await s.exited
      clearTimeout(t)
    }
    await influx?.stop()
  }

  try {
    // --- PKI and a release --------------------------------------------------------------------
    const pki = join(dir, 'pki')
    await initPki(pki)
    await issueServer(pki, { hosts: ['localhost'], ips: ['127.0.0.1'] })
    for (const d of DEVICES) await issueDevice(pki, d)
    const release = generateReleaseKey()
    writeFileSync(join(pki, 'release.pub'), release.publicKeyPem)
    const ota = join(dir, 'ota')
    const image = join(dir, 'firmware-1.1.0.bin')
    writeFileSync(image, randomBytes(256 * 1024)) // a stand-in image: the devices verify it, not run it
    await publishRelease({ image, version: '1.1.0', hw: 'esp32dev', secureVersion: 1, keys: [release.privateKeyPem], dir: ota, expiresInMs: 30 * 86400e3 })
    // The private key stays in memory only: a real release key is kept offline.

    // --- services -------------------------------------------------------------------------------
    const [mqttPort, httpPort, otaPort] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()]
    let brokerData = join(dir, 'broker')
    const unreachable = brokerReachProblem(brokerData)
    if (unreachable) {
      // Root's mosquitto runs as its own user, which may not enter the demo folder (a clone in /root).
      // Only the broker's data moves, to a folder it can reach; its log stays in logs/.
      brokerTemp = mkdtempSync(join(tmpdir(), 'ferry-demo-broker-'))
      chmodSync(brokerTemp, 0o755)
      brokerData = brokerTemp
      say(`broker data in ${brokerTemp} (removed at the end): mosquitto's user ${unreachable.user.name} cannot enter ${unreachable.folder} (mode ${unreachable.mode.toString(8).padStart(4, '0')})`)
    }
    assertBrokerCanReach(brokerData)
    const start = (name: string, args: string[], env: Record<string, string> = {}): Service => {
      const out = createWriteStream(join(dir, 'logs', `${name}.log`))
      const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...args], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', FERRY_ENV_FILE: join(dir, 'none.env'), ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      child.stdout!.pipe(out)
      child.stderr!.pipe(out)
      const s = { name, child, exited: once(child, 'exit').then(([code]) => code as number | null) }
      services.push(s)
      return s
    }
    const broker = start('broker', ['broker', '--pki', pki, '--data', brokerData, '--port', String(mqttPort), '--bind', '127.0.0.1'])
    await waitForPort(mqttPort, '127.0.0.1', START_TIMEOUT_MS, () => broker.child.exitCode === null)

    let sinkEnv: Record<string, string>
    let sinkLabel: string
    if (sinkKind === 'influxdb') {
      influx = await startLocalInfluxd({ dir: join(dir, 'influxdb') })
      await influx.createDatabase('ferry')
      sinkEnv = { FERRY_SINKS: 'influxdb', FERRY_INFLUX_URL: influx.url, FERRY_INFLUX_VERSION: '1', FERRY_INFLUX_DB: 'ferry' }
      sinkLabel = `InfluxDB 1.x at ${influx.url}, database "ferry"`
    } else {
      sinkEnv = { FERRY_SINKS: 'file', FERRY_FILE_PATH: join(dir, 'out', 'telemetry.lp') }
      sinkLabel = `line protocol file ${join(dir, 'out', 'telemetry.lp')}`
    }
    const token = randomBytes(24).toString('hex')
    const db = join(dir, 'buffer.db')
    const gateway = start('gateway', ['gateway'], {
      FERRY_MQTT_URL: `mqtts://localhost:${mqttPort}`,
      FERRY_MQTT_CA: pkiFiles(pki).caCert,
      FERRY_MQTT_CERT: pkiFiles(pki).gatewayCert,
      FERRY_MQTT_KEY: pkiFiles(pki).gatewayKey,
      FERRY_DB: db,
      FERRY_HTTP_PORT: String(httpPort),
      FERRY_HTTP_HOST: '127.0.0.1',
      FERRY_API_TOKEN: token,
      FERRY_DRAIN_RETRY_MAX_MS: '5000',
      // Keep delivered readings for the whole demo, so the summary can count what was stored.
      FERRY_BUFFER_DEDUP_WINDOW_MS: String(7 * 86400e3),
      ...sinkEnv,
    })
    const otaServer = start('ota-server', ['ota-server'], {
      FERRY_OTA_PORT: String(otaPort),
      FERRY_OTA_HOST: '127.0.0.1',
      FERRY_OTA_DIR: ota,
      FERRY_OTA_CERT: pkiFiles(pki).serverCert,
      FERRY_OTA_KEY: pkiFiles(pki).serverKey,
      FERRY_OTA_CA: pkiFiles(pki).caCert,
      FERRY_OTA_CRL: pkiFiles(pki).crl,
      FERRY_OTA_PUB: join(pki, 'release.pub'),
    })
    await waitForPort(httpPort, '127.0.0.1', START_TIMEOUT_MS, () => gateway.child.exitCode === null)
    await waitForPort(otaPort, '127.0.0.1', START_TIMEOUT_MS, () => otaServer.child.exitCode === null)

    // --- devices --------------------------------------------------------------------------------
    for (const id of DEVICES) {
      const sim = new DeviceSim({
        id,
        url: `mqtts://localhost:${mqttPort}`,
        tls: deviceTlsFromPki(pki, id),
        stateDir: join(dir, 'sim-state'),
        rate,
        log: log.child({ device: id }),
        ota: { url: `https://localhost:${otaPort}`, releaseKeys: [release.publicKeyPem], hw: 'esp32dev', intervalMs: 0 },
      })
      sims.push(sim)
      await sim.start()
    }

    const dash = `http://127.0.0.1:${httpPort}/`
    say(`Ferry demo running in ${dir}`)
    say()
    say(`  dashboard     ${dash}`)
    say(`  broker        mqtts://localhost:${mqttPort} (mutual TLS; certificates in ${pki})`)
    say(`  OTA server    https://localhost:${otaPort} (firmware 1.1.0 published; the devices update from 1.0.0)`)
    say(`  sink          ${sinkLabel}`)
    say(`  devices       ${DEVICES.join(', ')} at ${rate} readings/s each`)
    say(`  logs          ${join(dir, 'logs')}/`)
    say()
    say('Things to try:')
    say(`  LED           move the slider on the dashboard (token: ${token}), or`)
    say(`                curl -X POST -H 'authorization: Bearer ${token}' -H 'content-type: application/json' -d '{"brightness":80}' ${dash}api/devices/demo-1/led`)
    say(`  status        node bin/ferry.js status --db ${db}`)
    if (sinkKind === 'influxdb') {
      say(`  unplug sink   kill -STOP ${influx!.process.pid}   (watch the backlog grow on the dashboard)`)
      say(`  replay        kill -CONT ${influx!.process.pid}   (the backlog drains, oldest first)`)
      say(`  query         curl -G ${influx!.url}/query --data-urlencode db=ferry --data-urlencode 'q=SELECT count(pot) FROM telemetry GROUP BY device'`)
    }
    say(durationMs ? `Stopping by itself after ${Math.round(durationMs / 1000)} s.` : 'Ctrl-C stops everything.')
    say()

    // --- run until Ctrl-C or --duration -----------------------------------------------------------
    await new Promise<void>((resolveRun) => {
      const timer = durationMs ? setTimeout(resolveRun, durationMs) : undefined
      const onSignal = () => {
        clearTimeout(timer)
        resolveRun()
      }
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      for (const s of services) {
        void s.exited.then((code) => {
          if (code !== 0) {
            say(`${s.name} exited unexpectedly (${code}); see ${join(dir, 'logs', s.name + '.log')}`)
            onSignal()
          }
        })
      }
    })

    say('Stopping the devices and waiting until the sink has every reading ...')
    // Stop taking readings, then let every device hear the confirmation of each one it holds: stopped
    // between a commit and its confirmation, a device would count one reading fewer than the buffer.
    for (const s of sims) s.stopTicking()
    const drainBy = Date.now() + 30_000
    while (sims.some((s) => s.counters.buffered > 0) && Date.now() < drainBy) await new Promise((r) => setTimeout(r, 50))
    await Promise.all(sims.map((s) => s.stop()))
    const published = Object.fromEntries(sims.map((s) => [s.id, s.counters.acked]))
    const buffered = () => readAll(db)
    // Wait until every acknowledged reading is in the buffer and every sink's cursor has passed it.
    const deadline = Date.now() + 60_000
    let stored = buffered()
    while (Date.now() < deadline) {
      stored = buffered()
      if (DEVICES.every((d) => (stored.perDevice[d] ?? 0) >= (published[d] ?? 0)) && stored.backlog === 0) break
      await new Promise((r) => setTimeout(r, 250))
    }
    const delivered = sinkKind === 'influxdb' ? await influxCounts(influx!) : fileCounts(join(dir, 'out', 'telemetry.lp'))
    await stopAll()

    say()
    say('device      published   stored   delivered')
    let ok = true
    for (const d of DEVICES) {
      const p = published[d] ?? 0
      const s = stored.perDevice[d] ?? 0
      const v = delivered[d] ?? 0
      if (v !== p || s !== p) ok = false
      say(`${d.padEnd(10)} ${String(p).padStart(10)} ${String(s).padStart(8)} ${String(v).padStart(11)}`)
    }
    const total = (o: Record<string, number>) => DEVICES.reduce((a, d) => a + (o[d] ?? 0), 0)
    say(`${'total'.padEnd(10)} ${String(total(published)).padStart(10)} ${String(total(stored.perDevice)).padStart(8)} ${String(total(delivered)).padStart(11)}`)
    say(`firmware after OTA: ${sims.map((s) => `${s.id} ${s.firmware.version}`).join(', ')}`)
    say(ok ? 'every published reading was delivered to the local sink' : 'NOT every published reading was delivered; see the logs')
    return ok ? 0 : 1
  } catch (err) {
    await stopAll()
    throw err
  } finally {
    if (brokerTemp) rmSync(brokerTemp, { recursive: true, force: true })
  }
}

/** Readings per device in the buffer (delivered ones are kept for the dedupe window) and the largest sink backlog. */
function readAll(path: string): { perDevice: Record<string, number>; backlog: number } {
  if (!existsSync(path)) return { perDevice: {}, backlog: Number.MAX_SAFE_INTEGER }
  const { db } = openBuffer(path, { readonly: true })
  try {
    return readingCounts(db)
  } finally {
    db.close()
  }
}

async function influxCounts(influx: LocalInfluxd): Promise<Record<string, number>> {
  const r = await influx.query('SELECT count(pot) FROM telemetry GROUP BY device', 'ferry')
  const out: Record<string, number> = {}
  for (const s of r.results[0]?.series ?? []) {
    const device = (s as { tags?: Record<string, string> }).tags?.device
    if (device) out[device] = Number(s.values[0]?.[1] ?? 0)
  }
  return out
}

function fileCounts(path: string): Record<string, number> {
  const out: Record<string, number> = {}
  if (!existsSync(path)) return out
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^telemetry,device=([^ ,]+)/.exec(line)
    if (m) out[m[1]!] = (out[m[1]!] ?? 0) + 1
  }
  return out
}

function commandExists(cmd: string): boolean {
  return (process.env.PATH ?? '').split(':').some((p) => p && existsSync(join(p, cmd)))
}

