/**
 * The gateway's link to the OTA server (docs/ota-rollouts.md#the-gateway-link). Devices report OTA
 * progress on MQTT `sensors/<id>/ota/status` (POST /ota/report only while MQTT is down), so the OTA
 * server, which decides staged rollouts on those reports, would otherwise never see most of them. Every
 * FERRY_OTA_SYNC_INTERVAL_MS the link:
 *
 * 1. forwards the ota/status events committed to the buffer since its cursor (`meta` key
 *    `ota_forward_cursor`, the last event id the OTA server accepted) with `POST /ota/reports`; the
 *    events were committed before their PUBACK, so a report survives a gateway crash and is forwarded
 *    after the restart. A batch sent again after a crash is harmless: the server keeps each device's
 *    latest report;
 * 2. reads `GET /ota/rollouts` back for /api/status, the dashboard and `ferry status` (`meta` key
 *    `ota_rollouts`, written only when it changes).
 *
 * It authenticates with the gateway's own certificate (CN ferry-gateway, or a replica's), which the
 * OTA server lets forward reports and read rollouts but never change one. A failure is logged once
 * when it starts and once when it ends, never per cycle.
 */
import { Agent, request } from 'undici'
import { Compile } from 'typebox/compile'
import { Type } from 'typebox'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Logger } from '../../../common/src/logger.js'
import { otaReportSchema } from '../../../ota-server/src/manifest/report.js'
import { RolloutStatusSchema, type RolloutStatus } from '../../../ota-server/src/rollout/status.js'
import { EventReads, type RingBuffer } from '../buffer/index.js'

export const META_OTA_CURSOR = 'ota_forward_cursor'
export const META_OTA_ROLLOUTS = 'ota_rollouts'

/** Reports per POST (the OTA server takes up to 500). */
const BATCH = 200

const checkReport = Compile(otaReportSchema)
const checkRollouts = Compile(Type.Object({ rollouts: Type.Array(RolloutStatusSchema) }))

export interface OtaLinkOptions {
  /** The OTA server's origin, e.g. https://ota-server:8443. */
  url: string
  intervalMs: number
  /** The gateway's client certificate and key, and the CA (the MQTT ones). */
  tls: { ca: Buffer; cert: Buffer; key: Buffer }
  buffer: Pick<RingBuffer, 'db' | 'getMeta' | 'setMeta'>
  log: Logger
  registry?: Registry
  now?: () => number
}

/** What /api/status says about the link; `rollouts` as the OTA server last answered. */
export interface OtaLinkStatus {
  url: string
  lastSyncAt: number | null
  lastOkAt: number | null
  lastError: { message: string; at: number } | null
  /** Reports forwarded since the gateway started, and the last event id the OTA server accepted. */
  forwarded: number
  cursor: number
  /** As of `rolloutsAt` (null until the first answer). */
  rollouts: RolloutStatus[]
  rolloutsAt: number | null
  /** Deployments that are halted, for a quick look. */
  halted: string[]
}

/** The snapshot kept in the buffer's meta table for `ferry status` (read-only, without the network). */
export interface OtaRolloutsSnapshot {
  url: string
  at: number
  rollouts: RolloutStatus[]
}

export class OtaLink {
  private readonly agent: Agent
  private readonly now: () => number
  private readonly events: EventReads
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private stopped = false
  private state: Omit<OtaLinkStatus, 'url' | 'halted'>
  private lastSaved = ''
  private readonly metrics?: { forwarded: Counter; up: Gauge }

  constructor(private readonly opts: OtaLinkOptions) {
    this.now = opts.now ?? Date.now
    this.agent = new Agent({
      connect: { ca: opts.tls.ca, cert: opts.tls.cert, key: opts.tls.key, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      headersTimeout: 15_000,
      bodyTimeout: 15_000,
      // Below the OTA server's 5 s keep-alive: never reuse a connection the server is closing.
      keepAliveTimeout: 2_000,
    })
    this.events = new EventReads(opts.buffer.db)
    const saved = opts.buffer.getMeta<OtaRolloutsSnapshot>(META_OTA_ROLLOUTS)
    this.state = {
      lastSyncAt: null,
      lastOkAt: null,
      lastError: null,
      forwarded: 0,
      cursor: opts.buffer.getMeta<number>(META_OTA_CURSOR) ?? 0,
      // What the OTA server said before a restart is better than nothing, and dated.
      rollouts: saved?.url === opts.url ? saved.rollouts : [],
      rolloutsAt: saved?.url === opts.url ? saved.at : null,
    }
    if (opts.registry) {
      const rollouts = () => this.state.rollouts
      this.metrics = {
        forwarded: new Counter({ name: 'ferry_ota_reports_forwarded_total', help: 'ota/status reports forwarded to the OTA server (FERRY_OTA_URL).', registers: [opts.registry] }),
        up: new Gauge({ name: 'ferry_ota_link_up', help: '1 while the last exchange with the OTA server (FERRY_OTA_URL) succeeded, else 0.', registers: [opts.registry] }),
      }
      new Gauge({
        name: 'ferry_ota_rollout_halted',
        help: '1 while a deployment is halted on the OTA server, as the gateway last read it (FERRY_OTA_URL), else 0.',
        labelNames: ['deployment'],
        registers: [opts.registry],
        collect() {
          this.reset()
          for (const r of rollouts()) this.set({ deployment: r.deployment }, r.status === 'halted' ? 1 : 0)
        },
      })
    }
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return
      this.running = this.sync().finally(() => {
        this.running = undefined
        if (!this.stopped) {
          this.timer = setTimeout(loop, this.opts.intervalMs)
          this.timer.unref()
        }
      })
    }
    loop()
  }

  /** Stops the cycles and closes the connections; idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearTimeout(this.timer)
    await this.running
    await this.agent.close()
  }

  status(): OtaLinkStatus {
    return { url: this.opts.url, ...this.state, halted: this.state.rollouts.filter((r) => r.status === 'halted').map((r) => r.deployment) }
  }

  /** One cycle: forward, then read the rollouts. Never throws. */
  async sync(): Promise<void> {
    const at = this.now()
    this.state.lastSyncAt = at
    try {
      await this.forward()
      await this.readRollouts()
      if (this.state.lastError) this.opts.log.info({ url: this.opts.url }, 'OTA server reachable again; reports are forwarded')
      this.state.lastError = null
      this.state.lastOkAt = this.now()
      this.metrics?.up.set(1)
    } catch (err) {
      const message = (err as Error).message
      if (!this.state.lastError) this.opts.log.warn({ url: this.opts.url, err: { message } }, 'cannot reach the OTA server; ota/status reports wait in the buffer and are forwarded when it answers')
      this.state.lastError = { message, at }
      this.metrics?.up.set(0)
    }
  }

  private async forward(): Promise<void> {
    for (;;) {
      const rows = this.events.otaStatusAfter(this.state.cursor, BATCH)
      if (!rows.length) return
      // Events after the cursor already pruned (FERRY_BUFFER_MAX_EVENTS): some may have been ota/status.
      const oldest = this.events.oldestId()
      if (this.state.cursor > 0 && oldest !== null && oldest > this.state.cursor + 1) {
        this.opts.log.warn({ url: this.opts.url, after: this.state.cursor, oldest }, 'device events were pruned from the buffer (FERRY_BUFFER_MAX_EVENTS) before the ota/status among them could be forwarded; the OTA server counts devices it hears nothing from as stalled')
      }
      const reports = rows.flatMap((r) => {
        let body: unknown
        try {
          body = JSON.parse(r.payload.toString('utf8'))
        } catch {
          return []
        }
        // Checked at ingest already; a row that no longer passes is skipped rather than block the rest.
        return checkReport.Check(body) ? [{ ts: r.at, device: r.device, ...body }] : []
      })
      if (reports.length) {
        const res = await request(new URL('/ota/reports', this.opts.url), {
          dispatcher: this.agent,
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ reports }),
        })
        const text = await res.body.text()
        if (res.statusCode === 400) {
          // The OTA server will never take this batch (a newer schema there?): skip it, loudly.
          this.opts.log.error({ url: this.opts.url, from: rows[0]!.id, to: rows.at(-1)!.id, answer: text.slice(0, 300) }, 'the OTA server refused a batch of ota/status reports (400); skipped')
        } else if (res.statusCode !== 200) {
          throw new Error(`POST /ota/reports answered ${res.statusCode}: ${text.slice(0, 200)}`)
        } else {
          this.state.forwarded += reports.length
          this.metrics?.forwarded.inc(reports.length)
        }
      }
      this.state.cursor = rows.at(-1)!.id
      this.opts.buffer.setMeta(META_OTA_CURSOR, this.state.cursor)
      if (rows.length < BATCH) return
    }
  }

  private async readRollouts(): Promise<void> {
    const res = await request(new URL('/ota/rollouts', this.opts.url), { dispatcher: this.agent, headers: { accept: 'application/json' } })
    const text = await res.body.text()
    if (res.statusCode !== 200) throw new Error(`GET /ota/rollouts answered ${res.statusCode}: ${text.slice(0, 200)}`)
    const body: unknown = JSON.parse(text)
    if (!checkRollouts.Check(body)) throw new Error('GET /ota/rollouts answered something that is not a list of rollouts; is the OTA server of the same Ferry version?')
    const at = this.now()
    const before = new Set(this.state.rollouts.filter((r) => r.status === 'halted').map((r) => r.deployment))
    for (const r of body.rollouts) {
      if (r.status === 'halted' && !before.has(r.deployment)) this.opts.log.error({ deployment: r.deployment, why: r.why }, 'the OTA server reports a halted rollout')
    }
    this.state.rollouts = body.rollouts
    this.state.rolloutsAt = at
    const text2 = JSON.stringify(body.rollouts)
    if (text2 !== this.lastSaved) {
      this.opts.buffer.setMeta(META_OTA_ROLLOUTS, { url: this.opts.url, at, rollouts: body.rollouts } satisfies OtaRolloutsSnapshot)
      this.lastSaved = text2
    }
  }
}
