import type { Logger } from '../../../common/src/logger.js'
import type { OtaLayout } from '../store/layout.js'
import type { ReleaseStore } from '../store/releases.js'
import type { ReportStore } from '../store/reports.js'
import { Rollouts } from './engine.js'
import { createOtaMetrics, type OtaMetrics } from './metrics.js'
import { RolloutStateStore } from './state.js'

export { Rollouts } from './engine.js'
export type { RolloutStatus } from './status.js'

/**
 * The rollout engine and the server's metrics, wired: saved states and reports loaded, decisions and
 * offers counted, and the engine re-evaluating every second. Call `stop()` when the server closes.
 */
export function startRollouts(d: { layout: OtaLayout; releases: ReleaseStore; reports: ReportStore; now: () => number; log: Logger }): { engine: Rollouts; metrics: OtaMetrics; stop(): void } {
  const log = d.log.child({ component: 'rollout' })
  const metrics: OtaMetrics = createOtaMetrics(() => engine.list(d.now()))
  const engine: Rollouts = new Rollouts({
    releases: d.releases,
    reports: d.reports,
    states: new RolloutStateStore(d.layout, log, d.now),
    now: d.now,
    log,
    events: {
      decision: (deployment, x) => metrics.decisions.inc({ deployment, action: x.action, by: x.by }),
      offer: (deployment) => metrics.offers.inc({ deployment }),
    },
  })
  engine.load()
  engine.start()
  return { engine, metrics, stop: () => engine.stop() }
}
