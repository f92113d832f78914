import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseCli, parseDuration } from '../../common/src/cli-args.js'
import { UsageError } from '../../common/src/errors.js'
import { createLogger } from '../../common/src/logger.js'
import { isSemver, splitPemBundle } from '../../ota-server/src/manifest/index.js'
import { defaultStateDir, deviceTlsFromPki, DeviceSim, type DeviceSimOptions } from './sim.js'

const HELP = `usage: ferry device-sim --id <id> --pki <dir> [options]

A simulated ESP32 node speaking the device protocol: mutual TLS, telemetry with (boot, seq),
offline buffering, LED commands, and (with --ota-url) signed OTA updates. Each reading is kept
until the gateway confirms on sensors/<id>/ack that it committed it (docs/delivery.md).

  --id <id>               device id; its certificate is <pki>/devices/<id>.crt/.key
  --pki <dir>             the "ferry pki" folder (ca.crt, devices/)
  --url <url>             broker (default mqtts://localhost:8883)
  --rate <r>              readings per second (default 1)
  --count <n>             take n readings, exit once all are confirmed (0 if all were,
                          1 if the offline buffer had to drop some); the last line says
                          confirm=gateway, or confirm=broker after the fallback
  --buffer <n>            offline buffer capacity in readings (default 1000; oldest dropped)
  --ack-timeout <d>       resend the oldest unconfirmed reading as a probe after this long
                          without a confirmation, doubling up to 5m (default 10s)
  --ack-fallback <d>      no confirmation at all this long after the first PUBACK on a
                          connection: the gateway does not confirm, so release readings on
                          the broker's PUBACK (confirm=broker) until one comes (default 60s)
  --ack-reorder <d>       a confirmation of a later reading marks an earlier unconfirmed one
                          for sending again only once its PUBACK is this old: gateway
                          replicas confirm out of order (default 1s; 0 = at once)
  --offline-after <d>     simulate losing the network after this long (e.g. 20s)
  --offline-for <d>       ... and getting it back after this long (default 30s)
  --state <dir>           persisted state: boot counter, firmware version
                          (default <pki>/../sim-state)
  --mqtt-version <4|5>    MQTT 3.1.1 (4, default) or 5
  --ota-url <url>         OTA server origin, e.g. https://localhost:8443 (enables OTA checks)
  --release-pub <file>    trusted release public key(s), PEM; required with --ota-url
  --hw <hw>               hardware id (default esp32dev)
  --version <semver>      factory firmware version (default 1.0.0); a version installed
                          by OTA, recorded in the state file, takes precedence
  --secure-version <n>    factory anti-rollback counter (default 0)
  --ota-interval <d>      how often to ask for updates (default 1h; 0 = once per start)
  --ota-fail-self-test <v>  rehearse a bad release: the new firmware's self-test fails when
                          the update is to version <v> (repeatable, or a comma list; * = every
                          update), so the device rolls back and reports rolled-back
                          (reason self_test_failed) instead of installed

Logs are JSON lines (pino); FERRY_LOG_LEVEL=debug shows each reading.
SIGINT/SIGTERM: publishes "offline", disconnects cleanly and exits 0.
Exit codes: 0 success, 1 failure (or readings dropped with --count), 2 bad usage.`

function positiveNumber(name: string, text: string | undefined, dflt: number, integer = false): number {
  if (text === undefined) return dflt
  const n = Number(text)
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new UsageError(`--${name} must be a ${integer ? 'non-negative integer' : 'non-negative number'}, got "${text}"`)
  return n
}

function positiveDuration(name: string, text: string): number {
  const ms = parseDuration(text)
  if (ms < 1) throw new UsageError(`--${name} must be longer than 0, got "${text}"`)
  return ms
}

/** Builds the simulator's options from the command line (exported for tests). */
export function parseDeviceSimArgs(argv: string[]): { options: Omit<DeviceSimOptions, 'log'>; offlineAfterMs?: number; offlineForMs: number } | 'help' {
  const { values, help, helpText } = parseCli(
    argv,
    {
      id: { type: 'string' },
      pki: { type: 'string' },
      url: { type: 'string' },
      rate: { type: 'string' },
      count: { type: 'string' },
      buffer: { type: 'string' },
      'ack-timeout': { type: 'string' },
      'ack-fallback': { type: 'string' },
      'ack-reorder': { type: 'string' },
      'offline-after': { type: 'string' },
      'offline-for': { type: 'string' },
      state: { type: 'string' },
      'mqtt-version': { type: 'string' },
      'ota-url': { type: 'string' },
      'release-pub': { type: 'string' },
      hw: { type: 'string' },
      version: { type: 'string' },
      'secure-version': { type: 'string' },
      'ota-interval': { type: 'string' },
      'ota-fail-self-test': { type: 'string', multiple: true },
    },
    HELP,
    false,
  )
  if (help) return 'help'
  if (!values.id) throw new UsageError(`--id is required\n\n${helpText}`)
  if (!values.pki) throw new UsageError(`--pki is required\n\n${helpText}`)
  const pki = resolve(values.pki)
  const mqttVersion = values['mqtt-version'] ?? '4'
  if (mqttVersion !== '4' && mqttVersion !== '5') throw new UsageError(`--mqtt-version must be 4 (MQTT 3.1.1) or 5, got "${mqttVersion}"`)
  const version = values.version ?? '1.0.0'
  if (!isSemver(version)) throw new UsageError(`--version must be a semantic version such as 1.2.0, got "${version}"`)
  const count = values.count === undefined ? undefined : positiveNumber('count', values.count, 0, true)
  if (count === 0) throw new UsageError('--count must be at least 1')
  const buffer = positiveNumber('buffer', values.buffer, 1000, true)
  if (buffer < 1) throw new UsageError('--buffer must be at least 1')
  const ackTimeoutMs = values['ack-timeout'] === undefined ? undefined : positiveDuration('ack-timeout', values['ack-timeout'])
  const ackFallbackMs = values['ack-fallback'] === undefined ? undefined : positiveDuration('ack-fallback', values['ack-fallback'])
  const ackReorderMs = values['ack-reorder'] === undefined ? undefined : parseDuration(values['ack-reorder'])

  let ota: DeviceSimOptions['ota']
  if (values['ota-url']) {
    if (!values['release-pub']) throw new UsageError('--ota-url needs --release-pub <file>: the device installs only images signed by a release key it trusts')
    let url: URL
    try {
      url = new URL(values['ota-url'])
    } catch {
      throw new UsageError(`--ota-url "${values['ota-url']}" is not a URL; use e.g. https://localhost:8443`)
    }
    if (url.protocol !== 'https:') throw new UsageError('--ota-url must be https://: the device authenticates with its certificate and trusts only the CA')
    let keys: string[]
    try {
      keys = splitPemBundle(readFileSync(values['release-pub'], 'utf8'))
    } catch (err) {
      throw new UsageError(`cannot read --release-pub ${values['release-pub']}: ${(err as Error).message}`)
    }
    if (keys.length === 0) throw new UsageError(`--release-pub ${values['release-pub']} holds no PEM public key; use the release.pub written by "ferry ota keygen"`)
    const failSelfTest = (values['ota-fail-self-test'] ?? []).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean)
    const bad = failSelfTest.filter((x) => x !== '*' && !isSemver(x))
    if (bad.length) throw new UsageError(`--ota-fail-self-test takes versions such as 1.2.0 (or *), got ${JSON.stringify(bad.join(','))}`)
    ota = {
      url: url.origin,
      releaseKeys: keys,
      hw: values.hw ?? 'esp32dev',
      intervalMs: values['ota-interval'] === undefined ? 3_600_000 : parseDuration(values['ota-interval']),
      ...(failSelfTest.length ? { failSelfTest } : {}),
    }
  } else if (values['release-pub'] || values['ota-interval'] || values['ota-fail-self-test']) {
    throw new UsageError('--release-pub, --ota-interval and --ota-fail-self-test only make sense with --ota-url')
  }

  return {
    options: {
      id: values.id,
      url: values.url ?? 'mqtts://localhost:8883',
      tls: deviceTlsFromPki(pki, values.id),
      stateDir: resolve(values.state ?? defaultStateDir(pki)),
      rate: positiveNumber('rate', values.rate, 1),
      ...(count !== undefined ? { count } : {}),
      bufferCapacity: buffer,
      ...(ackTimeoutMs !== undefined ? { ackTimeoutMs } : {}),
      ...(ackFallbackMs !== undefined ? { ackFallbackMs } : {}),
      ...(ackReorderMs !== undefined ? { ackReorderMs } : {}),
      protocolVersion: mqttVersion === '5' ? 5 : 4,
      factory: { version, secureVersion: positiveNumber('secure-version', values['secure-version'], 0, true) },
      ...(ota ? { ota } : {}),
    },
    ...(values['offline-after'] !== undefined ? { offlineAfterMs: parseDuration(values['offline-after']) } : {}),
    offlineForMs: parseDuration(values['offline-for'] ?? '30s'),
  }
}

/** `ferry device-sim`: runs one simulated device until --count is reached or a signal arrives. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseDeviceSimArgs(argv)
  if (parsed === 'help') {
    process.stdout.write(HELP + '\n')
    return 0
  }
  const log = createLogger({ name: 'ferry-device-sim' })
  const sim = new DeviceSim({ ...parsed.options, log })
  const timers: NodeJS.Timeout[] = []
  await sim.start()
  if (parsed.offlineAfterMs !== undefined) {
    timers.push(
      setTimeout(() => {
        sim.goOffline()
        timers.push(setTimeout(() => sim.goOnline(), parsed.offlineForMs))
      }, parsed.offlineAfterMs),
    )
  }

  const signalled = new Promise<NodeJS.Signals>((resolveSignal) => {
    const on = (sig: NodeJS.Signals) => resolveSignal(sig)
    process.once('SIGINT', on)
    process.once('SIGTERM', on)
  })
  const outcome = await Promise.race([sim.finished.then((counters) => ({ kind: 'done' as const, counters })), signalled.then((sig) => ({ kind: 'signal' as const, sig }))])
  for (const t of timers) clearTimeout(t)
  if (outcome.kind === 'signal') log.info({ signal: outcome.sig }, 'stopping')
  await sim.stop()
  const counters = sim.counters
  const { produced, published, resent, probes, acked, confirmed, confirm, buffered, dropped } = counters
  const how = `${confirmed} confirmed by the gateway` + (acked > confirmed ? `, ${acked - confirmed} released on the broker's PUBACK` : '')
  log.info(
    { confirm, produced, published, resent, probes, acked, confirmed, buffered, dropped, boot: sim.boot },
    `readings: ${acked} of ${produced} taken left the device (${how}); confirm=${confirm} confirmed=${confirmed} resent=${resent} dropped=${dropped}`,
  )
  if (outcome.kind === 'done' && counters.dropped > 0) {
    log.error({ dropped: counters.dropped }, 'some readings were dropped because the offline buffer was full; raise --buffer')
    return 1
  }
  return 0
}
