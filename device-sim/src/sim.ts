import { EventEmitter } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient, type PacketCallback } from 'mqtt'
import { FerryError } from '../../common/src/errors.js'
import { assertDeviceId } from '../../common/src/ids.js'
import { silentLogger, type Logger } from '../../common/src/logger.js'
import { pkiFiles } from '../../common/src/pki/pki.js'
import type { KeyInput, Manifest } from '../../ota-server/src/manifest/index.js'
import { Reconnector } from './backoff.js'
import { encodeLedState, judgeLedCommand, parseLedCommand, type LedCommand } from './led.js'
import { OtaClient, type OtaCheckResult, type OtaReport } from './ota.js'
import { DeviceOutbox, parseConfirmation, type ConfirmMode } from './ring.js'
import { SimulatedSensors, type SensorOptions } from './sensors.js'
import { loadState, saveState, stateFile, type SimState } from './state.js'

/** One telemetry reading, as published on `sensors/<id>/telemetry` (README.md#topics-and-payloads). */
export interface Reading {
  seq: number
  boot: number
  /** Epoch ms when the reading was taken, so readings sent late are still placed in time. */
  ts: number
  pot: number
  switch: 0 | 1
  /** The brightness the LED showed when the reading was taken. */
  led: number
}

interface Entry {
  /** The reading's seq, which the outbox matches against confirmations. */
  seq: number
  reading: Reading
  /** Encoded once, when taken: a resend carries exactly the same bytes. */
  payload: string
}

/** Counters for the demo and tests. All count since this DeviceSim was started (one boot). */
export interface DeviceSimCounters {
  /** Readings taken. */
  produced: number
  /** Readings handed to MQTT for the first time. */
  published: number
  /** Publishes of readings published before: after a reconnect, a gap, or as a probe (docs/delivery.md rules 3–5). */
  resent: number
  /** Of those, probes (rule 5). */
  probes: number
  /** Readings that have left the device: confirmed by the gateway, or released on their PUBACK while `confirm` is `broker`. */
  acked: number
  /** Of those, confirmed by the gateway. */
  confirmed: number
  /** What releases readings now: the gateway's confirmations, or (fallback, rule 6) the broker's PUBACK. */
  confirm: ConfirmMode
  /** Readings held: not yet confirmed, whether sent or not. */
  buffered: number
  /** Of those, published and waiting for their PUBACK. */
  inflight: number
  /** Readings dropped because the outbox (offline buffer) was full (oldest first). */
  dropped: number
  /** Unreadable messages on `ack`, ignored. */
  ackInvalid: number
  /** LED commands applied / ignored (expired, clock not set, unreadable). */
  ledApplied: number
  ledIgnored: number
  /** Successful MQTT connections. */
  connects: number
}

export interface DeviceSimOtaOptions {
  /** Origin of the OTA server, e.g. `https://localhost:8443`. */
  url: string
  /** Trusted release public keys (PEM text, DER or KeyObject); the "compiled-in" keys. */
  releaseKeys: KeyInput[]
  /** Hardware id sent as `hw` and required in the manifest; default `esp32dev`. */
  hw?: string
  /** How often to ask for an update after the first check; default 1 h, 0 = only once per start. */
  intervalMs?: number
  /** Largest image the device holds; default 0x1E0000. */
  maxImageSize?: number
  /**
   * Stand-in for the firmware's post-install self-test (Wi-Fi, broker, one publish acked), given the
   * manifest being installed. Default: passes when the broker connection is up. Returning false makes
   * the update roll back (reported as `rolled-back`, reason `self_test_failed`).
   */
  selfTest?: (manifest: Manifest) => boolean | Promise<boolean>
  /**
   * Rehearse a bad release: the self-test fails for updates to these versions (`*`: every update),
   * on top of `selfTest`. `ferry device-sim --ota-fail-self-test`.
   */
  failSelfTest?: string[]
}

export interface DeviceSimOptions {
  /** Device id; the certificate's CN and the MQTT client id. */
  id: string
  /** Broker URL; default `mqtts://localhost:8883`. */
  url?: string
  /** Client certificate, key and CA (see `deviceTlsFromPki`). */
  tls: { ca: Buffer; cert: Buffer; key: Buffer }
  /** Folder of the persisted state (`<id>.json`, partial OTA downloads). */
  stateDir: string
  /** Readings per second; 0 = only when `produce()` is called. Default 1. */
  rate?: number
  /** Take this many readings, then stop taking more; `finished` resolves once all have left the device. */
  count?: number
  /** Outbox capacity: readings held until confirmed (not counting those awaiting PUBACK); default 1000. */
  bufferCapacity?: number
  /** QoS 1 publishes awaiting PUBACK at once; default 16 (the firmware sends one at a time). */
  inflightWindow?: number
  /** docs/delivery.md rule 5: probe the oldest unconfirmed reading after this long; default 10 s. */
  ackTimeoutMs?: number
  /** Rule 5: the probe period doubles up to this; default 5 min. */
  ackTimeoutMaxMs?: number
  /** Rule 6: no confirmation this long after a connection's first PUBACK: release on PUBACK instead; default 60 s. */
  ackFallbackMs?: number
  /** Rule 3: only readings PUBACKed at least this long ago count as lost; default 1 s. */
  ackReorderMs?: number
  /** MQTT protocol: 4 (3.1.1, default, as esp-mqtt and arduino-mqtt use) or 5. */
  protocolVersion?: 4 | 5
  keepaliveS?: number
  /** MQTT 5 session expiry; without it Mosquitto forgets a v5 session at disconnect. Default 1 day. */
  sessionExpiryS?: number
  /** Reconnect backoff (full jitter); defaults 500 ms base, 30 s cap, 10 s to count as stable. */
  backoff?: { baseMs?: number; capMs?: number; stableMs?: number }
  /** The firmware in "flash" before any OTA update: default 1.0.0, secure_version 0. */
  factory?: { version: string; secureVersion: number }
  ota?: DeviceSimOtaOptions
  sensors?: SensorOptions
  /** False models a node whose SNTP has not answered: readings carry no `ts`, expiring commands are not applied. */
  clockValid?: boolean
  log?: Logger
  now?: () => number
  random?: () => number
}

/** The device's TLS identity from a `ferry pki` folder: `devices/<id>.crt/.key` and `ca.crt`. */
export function deviceTlsFromPki(pkiDir: string, id: string): { ca: Buffer; cert: Buffer; key: Buffer } {
  assertDeviceId(id)
  const files = pkiFiles(pkiDir)
  for (const p of [files.caCert, files.deviceCert(id), files.deviceKey(id)]) {
    if (!existsSync(p)) {
      throw new FerryError('FERRY_ERR_PKI', `${p} does not exist; create the device identity with "ferry pki device ${id} --dir ${pkiDir}".`)
    }
  }
  return { ca: readFileSync(files.caCert), cert: readFileSync(files.deviceCert(id)), key: readFileSync(files.deviceKey(id)) }
}

/** The default state folder: `sim-state` beside the PKI folder. */
export function defaultStateDir(pkiDir: string): string {
  return join(dirname(pkiDir.replace(/\/+$/, '') || '.'), 'sim-state')
}

/**
 * A simulated ESP32 node speaking the device protocol, with the firmware's behaviour:
 *
 * - Identity: mutual TLS with the device certificate; client id = device id.
 * - Session: persistent (`clean: false`, and a session expiry on MQTT 5). The device subscribes
 *   only to its own `led/set` at QoS 1, so while it is away Mosquitto queues the commands sent
 *   meanwhile, and on return it gets them, not just the retained last one
 *   (docs/mqtt.md#durable-sessions-and-queues). The subscription is made again on the first
 *   connection of every boot (and whenever the broker lost the session), which delivers the
 *   retained command so a rebooted node restores its LED.
 * - Status: LWT `sensors/<id>/status` = `offline` (retained, QoS 1); `online` (retained) after each
 *   connect; an explicit `offline` before a planned stop, because a clean DISCONNECT discards the Will.
 * - Telemetry: `{"seq","boot","ts","pot","switch","led"}` every 1/rate s at QoS 1. `boot` is
 *   persisted and incremented once per start; `seq` restarts at 1 every boot, so
 *   `(device, boot, seq)` identifies a reading (README.md#topics-and-payloads;
 *   docs/firmware-notes.md#boot-counter-and-sequence-numbers).
 * - Outbox (the firmware's offline buffer, docs/delivery.md): every reading is held, drop-oldest with
 *   a counter, published in order, until the gateway confirms on `sensors/<id>/ack` that it committed
 *   it; resent after every reconnect, after a gap, and as a probe; released on the broker's PUBACK only
 *   while the gateway does not confirm (see ring.ts). The device subscribes to `ack` (QoS 0) on every
 *   connection, so the retained confirmation shows at once that its gateway confirms.
 * - Reconnect: our own exponential backoff with full jitter (MQTT.js's fixed period is turned off).
 * - LED: applies `led/set` (JSON or bare integer; expired commands ignored), echoes `led/state`
 *   retained.
 * - OTA (optional): checks after the first connection and then periodically, verifies, downloads,
 *   reports on `sensors/<id>/ota/status`; installing records the new version in the state file.
 *
 * Events: `connect`, `disconnect`, `reading` (Reading), `acked` (Reading, released), `dropped`
 * (Reading[]), `confirmation` ({ boot, seqs, released, remarked }), `confirm-mode` (ConfirmMode, on a
 * switch), `led` ({ verdict, command?, reason? }), `ota` (OtaCheckResult), `done` (counters, when
 * `count` is reached and every reading has left the device), `error` is never emitted (problems are
 * logged).
 */
export class DeviceSim extends EventEmitter {
  readonly id: string
  private readonly opts: DeviceSimOptions
  private readonly log: Logger
  private readonly now: () => number
  private readonly topics: { telemetry: string; status: string; ledSet: string; ledState: string; otaStatus: string; ack: string }
  /** Readings not yet confirmed (ring.ts); made again with the boot number at start. */
  private outbox: DeviceOutbox<Entry>
  private readonly sensors: SimulatedSensors
  private readonly reconnector: Reconnector
  private client: MqttClient | undefined
  private state: SimState | undefined
  private file: string
  private seqNo = 0
  private led = 0
  private ledCmd = ''
  private linkUp = false
  private simulatedOffline = false
  private stopping = false
  private connectedThisBoot = false
  private droppedThisOutage = 0
  /** The counters kept here; `counters` adds the outbox's. */
  private readonly counts = { produced: 0, ackInvalid: 0, ledApplied: 0, ledIgnored: 0, connects: 0 }
  /** Our telemetry publish callbacks, to find our publishes in MQTT.js's session (see `reconnect`). */
  private readonly telemetryCallbacks = new WeakSet<object>()
  private tick: NodeJS.Timeout | undefined
  /** Wakes the outbox for a probe or the fallback (rules 5, 6). */
  private outboxTimer: NodeJS.Timeout | undefined
  private reconnectTimer: NodeJS.Timeout | undefined
  private otaTimer: NodeJS.Timeout | undefined
  private otaClient: OtaClient | undefined
  private otaRunning: Promise<OtaCheckResult> | undefined
  private readonly otaAbort = new AbortController()
  private doneResolve!: (c: DeviceSimCounters) => void
  /** Resolves when `count` readings were taken and all of them have left the device (acked or dropped). */
  readonly finished: Promise<DeviceSimCounters>

  constructor(opts: DeviceSimOptions) {
    super()
    assertDeviceId(opts.id)
    if (opts.rate !== undefined && !(opts.rate >= 0 && Number.isFinite(opts.rate))) throw new RangeError(`rate must be ≥ 0 readings per second, got ${opts.rate}`)
    if (opts.count !== undefined && !(Number.isInteger(opts.count) && opts.count >= 1)) throw new RangeError(`count must be a positive integer, got ${opts.count}`)
    this.opts = opts
    this.id = opts.id
    this.log = (opts.log ?? silentLogger).child({ component: 'device-sim', device: opts.id })
    this.now = opts.now ?? Date.now
    const base = `sensors/${opts.id}`
    this.topics = { telemetry: `${base}/telemetry`, status: `${base}/status`, ledSet: `${base}/led/set`, ledState: `${base}/led/state`, otaStatus: `${base}/ota/status`, ack: `${base}/ack` }
    this.outbox = this.makeOutbox(0) // checks the options now; start() makes it again for the boot
    this.sensors = new SimulatedSensors({ random: opts.random, ...opts.sensors })
    this.reconnector = new Reconnector({ baseMs: opts.backoff?.baseMs ?? 500, capMs: opts.backoff?.capMs ?? 30_000, stableMs: opts.backoff?.stableMs ?? 10_000, random: opts.random, now: this.now })
    this.file = stateFile(opts.stateDir, opts.id)
    this.finished = new Promise((resolve) => (this.doneResolve = resolve))
  }

  /** The boot number of this run (after `start`). */
  get boot(): number {
    return this.state?.boot ?? 0
  }

  /** The last seq taken in this boot. */
  get seq(): number {
    return this.seqNo
  }

  /** The LED brightness now shown, and the id of the command that set it. */
  get ledState(): { cmd: string; brightness: number } {
    return { cmd: this.ledCmd, brightness: this.led }
  }

  /** The running firmware (factory, or the last version installed by OTA). */
  get firmware(): { version: string; secureVersion: number } {
    return { ...(this.state?.firmware ?? this.opts.factory ?? { version: '1.0.0', secureVersion: 0 }) }
  }

  /** True while the MQTT connection is up. */
  get connected(): boolean {
    return this.linkUp
  }

  get counters(): DeviceSimCounters {
    const o = this.outbox
    const { released, ...counts } = o.counts
    return { ...this.counts, ...counts, acked: released, confirm: o.mode, buffered: o.held, inflight: o.inflight }
  }

  /**
   * Boots: increments and persists the boot counter (before the first reading, like NVS), connects,
   * and starts taking readings. Resolves once booted; the connection comes up in the background.
   */
  start(): Promise<void> {
    // Invariant (a bug in the caller if broken): one simulator boots once.
    if (this.state) throw new Error('DeviceSim.start() called twice')
    const prev = loadState(this.file, this.id)
    const factory = this.opts.factory ?? { version: '1.0.0', secureVersion: 0 }
    this.state = {
      schema: 1,
      device: this.id,
      boot: (prev?.boot ?? 0) + 1,
      ...(prev?.lastSeq !== undefined ? { lastSeq: prev.lastSeq } : {}),
      firmware: prev?.firmware ?? factory,
      ...(prev?.ota ? { ota: prev.ota } : {}),
      updatedAt: this.now(),
    }
    saveState(this.file, this.state)
    this.outbox = this.makeOutbox(this.state.boot)
    this.log.info({ boot: this.state.boot, firmware: this.state.firmware.version, state: this.file }, 'device booted')

    if (this.opts.ota) {
      this.otaClient = new OtaClient({
        url: this.opts.ota.url,
        tls: this.opts.tls,
        releaseKeys: this.opts.ota.releaseKeys,
        hw: this.opts.ota.hw ?? 'esp32dev',
        device: this.id,
        workDir: this.opts.stateDir,
        log: this.log.child({ component: 'ota' }),
        report: (r) => this.reportOta(r),
        maxImageSize: this.opts.ota.maxImageSize,
        now: this.now,
        random: this.opts.random,
      })
    }

    const protocolVersion = this.opts.protocolVersion ?? 4
    const options: IClientOptions = {
      manualConnect: true,
      clientId: this.id,
      clean: false,
      protocolVersion,
      keepalive: this.opts.keepaliveS ?? 30,
      // We drive reconnects ourselves (backoff with jitter); see scheduleReconnect.
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      will: { topic: this.topics.status, payload: Buffer.from('offline'), qos: 1, retain: true },
      ca: this.opts.tls.ca,
      cert: this.opts.tls.cert,
      key: this.opts.tls.key,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: this.opts.sessionExpiryS ?? 86_400 } } : {}),
    } as IClientOptions
    const client = mqtt.connect(this.opts.url ?? 'mqtts://localhost:8883', options)
    this.client = client
    client.on('connect', (ack) => this.onConnect(ack))
    client.on('close', () => this.onClose())
    client.on('error', (err) => this.log.warn({ err: { message: err.message, code: (err as { code?: unknown }).code }, attempt: this.reconnector.attempts }, 'broker connection error'))
    client.on('message', (topic, payload) => this.onMessage(topic, payload))
    client.connect()

    const rate = this.opts.rate ?? 1
    if (rate > 0) this.tick = setInterval(() => this.produce(), Math.max(1, Math.round(1000 / rate)))
    return Promise.resolve()
  }

  /** Takes one reading now and queues it for publishing. Returns it. */
  produce(): Reading {
    // Invariants (a bug in the caller if broken): readings are taken between start() and stop(), and
    // no more than `count` (the tick stops itself at `count`).
    if (!this.state) throw new Error('DeviceSim.produce() before start()')
    if (this.stopping || (this.opts.count !== undefined && this.counts.produced >= this.opts.count)) throw new Error('DeviceSim is not taking readings any more')
    const now = this.now()
    const sample = this.sensors.read(now)
    const reading: Reading = { seq: ++this.seqNo, boot: this.state.boot, ts: now, pot: sample.pot, switch: sample.switch, led: this.led }
    // Key order as the firmware's encode_telemetry; no ts while the clock is unknown.
    const { ts, ...rest } = reading
    const payload = this.opts.clockValid === false ? JSON.stringify({ seq: rest.seq, boot: rest.boot, pot: rest.pot, switch: rest.switch, led: rest.led }) : JSON.stringify({ seq: rest.seq, boot: rest.boot, ts, pot: rest.pot, switch: rest.switch, led: rest.led })
    const dropped = this.outbox.push({ seq: reading.seq, reading, payload })
    this.counts.produced++
    if (this.opts.count !== undefined && this.counts.produced >= this.opts.count) this.stopTicking()
    this.emit('reading', reading)
    if (dropped.length) {
      if (this.droppedThisOutage === 0) {
        this.log.warn({ capacity: this.outbox.capacity, droppedSeq: dropped[0]!.reading.seq }, 'offline buffer full: dropping the oldest readings')
      }
      this.droppedThisOutage += dropped.length
      this.emit('dropped', dropped.map((e) => e.reading))
      this.checkDone()
    }
    this.pump()
    return reading
  }

  /** Simulates losing the network: the connection is cut (no DISCONNECT, so the broker sends the Will) and stays down until `goOnline`. */
  goOffline(): void {
    if (this.simulatedOffline || this.stopping) return
    this.simulatedOffline = true
    this.log.info('going offline (simulated network loss)')
    clearTimeout(this.reconnectTimer)
    this.reconnectTimer = undefined
    this.client?.stream?.destroy()
  }

  /** Ends a simulated network loss and reconnects at once. */
  goOnline(): void {
    if (!this.simulatedOffline || this.stopping) return
    this.simulatedOffline = false
    this.log.info({ buffered: this.outbox.held }, 'network back (simulated); reconnecting')
    if (!this.linkUp && !this.reconnectTimer) this.reconnect()
  }

  /**
   * Asks the OTA server for an update now (also runs by itself after the first connection). A
   * verified image is "installed": the new version is written to the state file and `installed` is
   * reported, or `rolled-back` when the self-test fails. Concurrent calls share one check.
   */
  checkOta(): Promise<OtaCheckResult> {
    // Invariant (a bug in the caller if broken): only a simulator made with `ota` options is asked to update.
    if (!this.otaClient) return Promise.reject(new Error('OTA is not configured for this device (no ota options)'))
    this.otaRunning ??= this.runOta().finally(() => (this.otaRunning = undefined))
    return this.otaRunning
  }

  /**
   * Planned shutdown: stops taking readings, publishes `offline` (retained) so the LWT is not needed,
   * waits briefly for in-flight publishes, disconnects cleanly and records the last seq. Readings not
   * yet confirmed are lost, as they would be on the device.
   */
  async stop(): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    this.stopTicking()
    clearTimeout(this.reconnectTimer)
    clearTimeout(this.outboxTimer)
    clearTimeout(this.otaTimer)
    this.otaAbort.abort()
    const client = this.client
    if (client) {
      if (this.linkUp) {
        await withTimeout(client.publishAsync(this.topics.status, 'offline', { qos: 1, retain: true }), 3000).catch((err: Error) =>
          this.log.warn({ err: { message: err.message } }, 'could not publish offline before stopping; the broker will send the Will'),
        )
        const ended = await withTimeout(client.endAsync(false), 3000).then(() => true, () => false)
        if (!ended) await client.endAsync(true).catch(() => undefined)
      } else {
        await client.endAsync(true).catch(() => undefined)
      }
    }
    await this.otaRunning?.catch(() => undefined)
    await this.otaClient?.close()
    if (this.state) {
      this.state = { ...this.state, lastSeq: this.seqNo, updatedAt: this.now() }
      saveState(this.file, this.state)
    }
    const counters = this.counters
    this.log.info(counters, 'device stopped')
  }

  // --- MQTT ----------------------------------------------------------------------------------------

  private onConnect(ack: IConnackPacket): void {
    const client = this.client!
    this.linkUp = true
    this.counts.connects++
    this.reconnector.connected()
    // Rule 4: the broker may have restarted and lost what it had; everything unconfirmed goes again, in order.
    this.outbox.connected()
    this.log.info({ sessionPresent: ack.sessionPresent, buffered: this.outbox.held, confirm: this.outbox.mode, droppedWhileOffline: this.droppedThisOutage }, 'connected to the broker')
    if (this.droppedThisOutage) {
      this.log.warn({ dropped: this.droppedThisOutage, totalDropped: this.outbox.counts.dropped }, 'readings were dropped while offline (buffer full)')
      this.droppedThisOutage = 0
    }
    client.publish(this.topics.status, 'online', { qos: 1, retain: true }, (err) => {
      if (err) this.log.debug({ err: { message: err.message } }, 'online status not acknowledged')
    })
    if (!this.connectedThisBoot || !ack.sessionPresent) {
      client.subscribe(this.topics.ledSet, { qos: 1 }, (err) => {
        if (err) this.log.error({ err: { message: err.message } }, 'subscribing to LED commands failed; reconnecting')
      })
    }
    // On every connection, even with the session kept: subscribing delivers the retained confirmation,
    // which shows at once (rule 6) that the gateway confirms, even while it is down.
    client.subscribe(this.topics.ack, { qos: 0 }, (err) => {
      if (err) this.log.error({ err: { message: err.message } }, 'subscribing to commit confirmations failed')
    })
    const first = !this.connectedThisBoot
    this.connectedThisBoot = true
    this.emit('connect')
    this.pump()
    if (first && this.otaClient) void this.checkOta()
  }

  private onClose(): void {
    const wasUp = this.linkUp
    this.linkUp = false
    if (wasUp) {
      if (this.stopping) this.log.debug('disconnected from the broker')
      else this.log.warn({ buffered: this.outbox.held, inflight: this.outbox.inflight }, 'broker connection lost; buffering readings')
      this.emit('disconnect')
    }
    clearTimeout(this.outboxTimer)
    this.outboxTimer = undefined
    if (this.stopping || this.simulatedOffline) return
    this.scheduleReconnect()
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer) return
    const delay = this.reconnector.next()
    this.log.debug({ delayMs: delay, attempt: this.reconnector.attempts }, 'reconnecting after backoff')
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (!this.stopping && !this.simulatedOffline) this.reconnect()
    }, delay)
  }

  private reconnect(): void {
    const client = this.client!
    // Keep MQTT.js's session stores for status, LED and OTA messages: unacknowledged publishes in
    // them are resent (DUP) right after CONNACK. Telemetry is taken out: the outbox resends every
    // unconfirmed reading itself, in order (rule 4), so MQTT.js must not send some of them first.
    // Their callbacks get "Message removed", which the outbox ignores (connected() starts afresh).
    for (const [id, pending] of Object.entries(client.outgoing)) {
      if (this.telemetryCallbacks.has(pending.cb)) client.removeOutgoingMessage(Number(id))
    }
    client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore })
  }

  private makeOutbox(boot: number): DeviceOutbox<Entry> {
    const o = this.opts
    return new DeviceOutbox<Entry>({ capacity: o.bufferCapacity ?? 1000, boot, window: o.inflightWindow, ackTimeoutMs: o.ackTimeoutMs, ackTimeoutMaxMs: o.ackTimeoutMaxMs, ackFallbackMs: o.ackFallbackMs, ackReorderMs: o.ackReorderMs })
  }

  /** Hands unsent readings to MQTT, oldest first, keeping at most the window awaiting PUBACK; then sets the outbox timer. */
  private pump(): void {
    const client = this.client
    while (client && this.linkUp && !this.stopping) {
      const next = this.outbox.next(this.now())
      if (!next) break
      const { item, send, resend } = next
      this.log.debug({ seq: item.seq }, resend ? 'sending a reading again' : 'reading published')
      const callback: PacketCallback = (err) => {
        if (err) {
          // The publish was taken out of the session (see reconnect) or the client was ended: the
          // outbox sends it again, unless a reconnect has already started afresh.
          this.outbox.publishFailed(send)
          return
        }
        this.released(this.outbox.puback(send, this.now()))
        this.pump()
      }
      this.telemetryCallbacks.add(callback)
      client.publish(this.topics.telemetry, item.payload, { qos: 1 }, callback)
    }
    this.scheduleOutboxTimer()
  }

  private scheduleOutboxTimer(): void {
    clearTimeout(this.outboxTimer)
    this.outboxTimer = undefined
    const at = this.linkUp && !this.stopping ? this.outbox.nextDeadline() : undefined
    if (at === undefined) return
    this.outboxTimer = setTimeout(() => {
      this.outboxTimer = undefined
      this.pollOutbox()
    }, Math.max(0, at - this.now()))
    this.outboxTimer.unref()
  }

  /** Rules 5 and 6, when due. */
  private pollOutbox(): void {
    if (!this.linkUp || this.stopping) return
    const r = this.outbox.poll(this.now())
    if (r.fellBack) {
      this.log.warn({ fallbackMs: this.opts.ackFallbackMs ?? 60_000, released: r.released.length }, 'the gateway does not confirm commits (nothing on ack): releasing readings on the broker\'s PUBACK instead (confirm=broker)')
      this.emit('confirm-mode', this.outbox.mode)
    }
    if (r.probe) this.log.info({ seq: r.probe.seq, nextProbeMs: this.outbox.ackTimeoutMs, buffered: this.outbox.held }, 'no confirmation from the gateway: sending the oldest unconfirmed reading again as a probe')
    this.released(r.released)
    this.pump()
  }

  /** A message on `ack` (docs/delivery.md): releases what it covers; never throws. */
  private onConfirmation(payload: Buffer): void {
    if (payload.length === 0) return // a cleared retained message: not a confirmation
    const parsed = parseConfirmation(payload)
    if (!parsed.ok) {
      this.counts.ackInvalid++
      this.log.warn({ reason: parsed.reason, payload: payload.toString('utf8').slice(0, 100) }, 'ignored an unreadable commit confirmation')
      return
    }
    const c = parsed.confirmation
    const r = this.outbox.confirm(c, this.now())
    if (r.backToGateway) {
      this.log.info('the gateway confirms commits again: readings are released on its confirmations (confirm=gateway)')
      this.emit('confirm-mode', this.outbox.mode)
    }
    if (r.remarked) this.log.warn({ remarked: r.remarked }, 'readings sent before confirmed ones did not reach the gateway: sending them again')
    this.emit('confirmation', { boot: c.boot, seqs: c.seqs, released: r.released.length, remarked: r.remarked })
    this.released(r.released)
    this.pump()
  }

  private released(entries: Entry[]): void {
    for (const e of entries) this.emit('acked', e.reading)
    if (entries.length) this.checkDone()
  }

  private checkDone(): void {
    const count = this.opts.count
    if (count === undefined || this.counts.produced < count || this.outbox.held > 0) return
    this.doneResolve(this.counters)
    this.emit('done', this.counters)
  }

  /** Stops taking readings; what is held is still sent until confirmed (the demo drains this way before stop()). */
  stopTicking(): void {
    clearInterval(this.tick)
    this.tick = undefined
  }

  // --- LED -----------------------------------------------------------------------------------------

  private onMessage(topic: string, payload: Buffer): void {
    if (topic === this.topics.ack) return this.onConfirmation(payload)
    if (topic !== this.topics.ledSet) return
    if (payload.length === 0) return // a cleared retained command: nothing to do
    const parsed = parseLedCommand(payload)
    if (!parsed.ok) {
      this.counts.ledIgnored++
      this.log.warn({ reason: parsed.reason, payload: payload.toString('utf8').slice(0, 100) }, 'ignored an unreadable LED command; the LED stays as it is')
      this.emit('led', { verdict: 'invalid', reason: parsed.reason })
      return
    }
    const command = parsed.command
    const verdict = judgeLedCommand(command, this.opts.clockValid !== false, this.now())
    if (verdict !== 'apply') {
      this.counts.ledIgnored++
      this.log.info({ cmd: command.cmd, verdict, expires: command.expires }, 'ignored an LED command')
      this.emit('led', { verdict, command })
      return
    }
    this.applyLed(command)
  }

  private applyLed(command: LedCommand): void {
    this.led = command.brightness
    this.ledCmd = command.cmd
    this.counts.ledApplied++
    this.log.info({ cmd: command.cmd, brightness: command.brightness }, 'LED set')
    this.client?.publish(this.topics.ledState, encodeLedState(command.cmd, command.brightness), { qos: 1, retain: true }, (err) => {
      if (err) this.log.debug({ err: { message: err.message } }, 'led/state not acknowledged')
    })
    this.emit('led', { verdict: 'apply', command })
  }

  // --- OTA -----------------------------------------------------------------------------------------

  private reportOta(r: OtaReport): void {
    this.client?.publish(this.topics.otaStatus, JSON.stringify(r), { qos: 1 }, (err) => {
      if (err) this.log.debug({ err: { message: err.message } }, 'ota/status not acknowledged')
    })
  }

  private async runOta(): Promise<OtaCheckResult> {
    clearTimeout(this.otaTimer)
    const running = this.firmware
    const result = await this.otaClient!.check(running, this.otaAbort.signal)
    if (result.kind === 'verified') await this.install(result.manifest)
    this.emit('ota', result)
    if (!this.stopping) {
      const every = this.opts.ota?.intervalMs ?? 3_600_000
      const next = result.kind === 'busy' ? result.retryAfterMs : result.kind === 'error' ? Math.min(every || 60_000, 60_000) : every
      if (next > 0) {
        this.otaTimer = setTimeout(() => void this.checkOta(), next)
        this.otaTimer.unref()
      }
    }
    return result
  }

  /**
   * The simulated install. A real node writes the inactive slot, reboots into it in pending-verify
   * state, runs a self-test and only then marks it valid and raises its secure_version floor
   * (firmware/lib/ferry_core/include/ferry/rollback.h). Here the "reboot" is skipped: the self-test
   * runs in place and, if it passes, the new version and floor are written to the state file.
   */
  private async install(manifest: Manifest): Promise<void> {
    const state = this.state!
    const fail = this.opts.ota?.failSelfTest?.some((v) => v === '*' || v === manifest.version) ?? false
    const ok = !fail && (await (this.opts.ota?.selfTest?.(manifest) ?? this.linkUp))
    const at = this.now()
    if (!ok) {
      this.state = { ...state, ota: { deployment: manifest.deployment, version: manifest.version, state: 'rolled-back', reason: 'self_test_failed', at }, updatedAt: at }
      saveState(this.file, this.state)
      this.log.error({ deployment: manifest.deployment, version: manifest.version }, 'new firmware failed its self-test; rolled back')
      this.reportOta({ deployment: manifest.deployment, state: 'rolled-back', version: manifest.version, reason: 'self_test_failed' })
      return
    }
    this.state = {
      ...state,
      firmware: { version: manifest.version, secureVersion: Math.max(state.firmware.secureVersion, manifest.secure_version) },
      ota: { deployment: manifest.deployment, version: manifest.version, state: 'installed', at },
      updatedAt: at,
    }
    saveState(this.file, this.state)
    this.log.info({ deployment: manifest.deployment, from: state.firmware.version, to: manifest.version }, 'firmware updated')
    this.reportOta({ deployment: manifest.deployment, state: 'installed', version: manifest.version })
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new FerryError('FERRY_ERR_BROKER', `the broker did not answer within ${ms} ms`)), ms)
    }),
  ])
}
