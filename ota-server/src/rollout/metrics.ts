import { Counter, Gauge, Registry } from 'prom-client'
import type { RolloutStatus } from './status.js'

/**
 * The OTA server's Prometheus metrics (prom-client, one registry per server so tests can run several
 * in a process), served on `GET /metrics` to the gateway certificate or FERRY_API_TOKEN. The rollout
 * gauges are read from the engine at each scrape, so they never disagree with `GET /ota/rollouts`.
 */
export function createOtaMetrics(rollouts: () => RolloutStatus[]) {
  const registry = new Registry()
  const m = {
    registry,
    reports: new Counter({ name: 'ferry_ota_reports_total', help: 'Device OTA reports stored, by state and path (http: POST /ota/report; mqtt: forwarded by the gateway).', labelNames: ['state', 'source'] as const, registers: [registry] }),
    offers: new Counter({ name: 'ferry_ota_offers_total', help: 'Signed envelopes handed to devices (200 on GET /ota/latest), by deployment.', labelNames: ['deployment'] as const, registers: [registry] }),
    decisions: new Counter({ name: 'ferry_ota_rollout_decisions_total', help: 'Rollout decisions, by deployment, action (opened, advanced, halted, resumed) and who took it (server or operator).', labelNames: ['deployment', 'action', 'by'] as const, registers: [registry] }),
  }
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge, all: RolloutStatus[]) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset()
        fill(this, rollouts())
      },
    })
  gauge('ferry_ota_rollout_halted', '1 while a deployment is halted (devices not yet updated get 204), else 0.', ['deployment'], (g, all) => {
    for (const r of all) g.set({ deployment: r.deployment }, r.status === 'halted' ? 1 : 0)
  })
  gauge('ferry_ota_rollout_stage', 'The open stage of a staged deployment, 1-based (0: unstaged).', ['deployment'], (g, all) => {
    for (const r of all) g.set({ deployment: r.deployment }, r.stage?.number ?? 0)
  })
  gauge('ferry_ota_rollout_devices', 'Devices of the open stage by outcome: started, installed, failed, stalled, in_progress (and offered).', ['deployment', 'outcome'], (g, all) => {
    for (const r of all) {
      if (!r.counts) continue
      const c = r.counts
      for (const [outcome, n] of [['offered', c.offered], ['started', c.started], ['installed', c.installed], ['failed', c.failed], ['stalled', c.stalled], ['in_progress', c.inProgress]] as const) {
        g.set({ deployment: r.deployment, outcome }, n)
      }
    }
  })
  return m
}

export type OtaMetrics = ReturnType<typeof createOtaMetrics>
