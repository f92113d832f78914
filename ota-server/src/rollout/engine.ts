/**
 * Staged rollouts that advance and halt by themselves (docs/ota-rollouts.md). The engine decides only
 * whether a device may be handed a release's signed envelope (`admits`); it never builds, changes or
 * signs an envelope, and it holds no key.
 *
 * Inputs: the releases and their stage plans (`releases/<hw>/<version>.rollout.json`, rollout/plan.ts),
 * the device reports (`reports.jsonl`, by POST /ota/report or forwarded from MQTT by the gateway), the
 * offers it makes itself, and the clock. State: one file per deployment (rollout/state.ts). Every
 * decision is written there with its reason before it takes effect for the next request.
 *
 * Per deployment, the open stage counts from its `epoch` (its opening, or the last resume), exclusive:
 * - a device that was offered the release, or reported on it, since the epoch has STARTED the stage;
 * - its latest report since the epoch says INSTALLED (a confirmed install); otherwise it FAILED if it
 *   reported `failed` or `rolled-back` since the epoch (a failure stays counted while the device tries
 *   again: only an install clears it), else it is in progress (`downloading`, `verified`, or offered
 *   without a report yet);
 * - in progress for longer than the plan's stall timeout counts as STALLED, a failure.
 * Halt: failures reach `halt.failures`, or `halt.percent` of the started devices once
 * `success.min_devices` started. Advance: at least `success.min_devices` started and `success.percent`
 * of them installed, and that held for `success.soak_ms`. The halt is checked first.
 */
import type { Logger } from '../../../common/src/logger.js'
import type { OtaReportRecord, OtaState } from '../manifest/report.js'
import { compareSemver } from '../manifest/semver.js'
import type { Release, ReleaseStore } from '../store/releases.js'
import type { ReportStore } from '../store/reports.js'
import { describeStage, describeStages, describeThresholds, duration, stageIncludes, type RolloutPlan } from './plan.js'
import { ROLLOUT_STATE_SCHEMA, type Decision, type RolloutState, type RolloutStateStore } from './state.js'
import type { Failure, RolloutStatus, StageCounts } from './status.js'
import { RolloutErrors } from './errors.js'

/** A report as the engine keeps it. */
interface Seen {
  ts: number
  state: OtaState
  version: string
  reason?: string
}

/** A device's latest report on a deployment, its latest failure (failed or rolled-back) and when it last installed. */
interface Latest extends Seen {
  failure?: Seen
  installedAt?: number
}

/** What the engine knows of one deployment from the release folders. */
interface DeploymentReleases {
  /** Newest version first. */
  releases: Release[]
  /** The plan of the newest release that has one. */
  plan?: RolloutPlan
}

export interface RolloutEvents {
  /** A decision was taken and saved (server or operator). */
  decision?(deployment: string, d: Decision): void
  /** A device was handed a release's envelope. */
  offer?(deployment: string): void
}

export interface RolloutsDeps {
  releases: ReleaseStore
  reports: ReportStore
  states: RolloutStateStore
  now: () => number
  log: Logger
  events?: RolloutEvents
}

/** How often the engine re-evaluates by itself (stall timeouts and soak times pass without a request). */
export const TICK_MS = 1000

const FAILURES_SHOWN = 20
const HISTORY_SHOWN = 20

export class Rollouts {
  /** deployment → device → latest report. */
  private readonly latest = new Map<string, Map<string, Latest>>()
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly deps: RolloutsDeps) {}

  private get log(): Logger {
    return this.deps.log
  }

  /** Reads the saved states and every report, then listens for new reports. Call once, before serving. */
  load(): void {
    this.deps.states.load()
    this.deps.reports.each((r) => this.remember(r))
    this.deps.reports.onAppend((r) => this.report(r))
  }

  /** Re-evaluates every staged deployment each TICK_MS until `stop()`. */
  start(): void {
    this.timer ??= setInterval(() => {
      try {
        this.tick(this.deps.now())
      } catch (err) {
        this.log.error({ err }, 'rollout evaluation failed; trying again in a second')
      }
    }, TICK_MS)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  // --- what the routes ask -------------------------------------------------------------------------

  /**
   * May `device` be handed `release`'s envelope now? No while its deployment is halted; with a plan,
   * only when the open stage includes the device. A deployment seen with a plan for the first time
   * opens its first stage here.
   */
  admits(release: Release, device: string, now: number): boolean {
    const deployment = release.manifest.deployment
    const state = this.deps.states.get(deployment)
    if (state?.status === 'halted') return false
    // The release's own plan too: a plan just published is never missed, whatever else is cached.
    const plan = this.catalogue().get(deployment)?.plan ?? release.plan
    if (!plan) return true
    const s = state ?? this.open(deployment, plan, now)
    return stageIncludes(plan, s.stage, deployment, device)
  }

  /** `device` was handed `release`'s envelope: it has started the open stage. */
  offered(release: Release, device: string, now: number): void {
    const deployment = release.manifest.deployment
    this.deps.events?.offer?.(deployment)
    const state = this.deps.states.get(deployment)
    if (!state || state.offers[device] !== undefined) return
    state.offers[device] = now
    this.deps.states.save(state)
  }

  /** A report was stored: remember it and let its deployment decide. */
  report(r: OtaReportRecord): void {
    this.remember(r)
    const plan = this.catalogue().get(r.deployment)?.plan
    if (!plan) return
    const now = this.deps.now()
    // First seen through a report: the stage opens just before it, so that report counts.
    const state = this.deps.states.get(r.deployment) ?? this.open(r.deployment, plan, Math.min(now, r.ts - 1))
    if (state.status === 'active') this.evaluate(state, plan, now)
  }

  /** Opens the first stage of newly planned deployments and re-evaluates the active ones. */
  tick(now: number): void {
    for (const [deployment, d] of this.catalogue()) {
      if (!d.plan) continue
      const state = this.deps.states.get(deployment) ?? this.open(deployment, d.plan, now)
      if (state.status === 'active') this.evaluate(state, d.plan, now)
    }
  }

  /** Every deployment with a release or a saved state, by id. */
  list(now: number): RolloutStatus[] {
    const ids = new Set([...this.catalogue().keys(), ...this.deps.states.all().map((s) => s.deployment)])
    return [...ids].sort().map((id) => this.status(id, now)!)
  }

  /** The status of one deployment, or undefined when nothing is known of it. */
  status(deployment: string, now: number): RolloutStatus | undefined {
    const d = this.catalogue().get(deployment)
    const state = this.deps.states.get(deployment)
    if (!d && !state) return undefined
    const plan = d?.plan
    const releases = (d?.releases ?? []).map((r) => ({ hw: r.manifest.hw, version: r.manifest.version, planned: r.plan !== undefined }))
    const history = state?.history.slice(-HISTORY_SHOWN) ?? []
    const base = { deployment, releases, halt: state?.halt ?? null, history, stages: plan ? describeStages(plan) : null, thresholds: plan ? describeThresholds(plan) : null }
    const stage = plan && state ? this.stageInfo(plan, state) : null
    const tally = plan && state ? this.tally(deployment, state, plan, now) : null
    if (state?.status === 'halted') {
      return {
        ...base,
        status: 'halted',
        stage,
        since: state.epoch,
        why: state.halt?.why ?? 'halted',
        next: `devices not yet updated are answered 204; devices already updated are not affected. Publish a fixed release with --deployment ${deployment}, then "ferry ota rollout resume ${deployment}"`,
        counts: tally?.counts ?? null,
        failures: tally?.failures.slice(0, FAILURES_SHOWN) ?? [],
      }
    }
    if (!plan || !state || !tally || !stage) {
      return {
        ...base,
        status: 'unstaged',
        stage: null,
        since: null,
        why: state?.history.at(-1)?.why ?? 'no stage plan: the release is offered to every device its signed manifest includes (publish with --stage to stage it)',
        next: 'nothing: the server takes no rollout decision for this deployment; "ferry ota rollout halt" still stops it',
        counts: null,
        failures: [],
      }
    }
    return {
      ...base,
      status: 'active',
      stage,
      since: state.epoch,
      why: state.history.at(-1)?.why ?? `stage ${stage.number} open`,
      next: this.next(plan, state, tally.counts),
      counts: tally.counts,
      failures: tally.failures.slice(0, FAILURES_SHOWN),
    }
  }

  // --- what the operator asks (ferry ota rollout halt|resume|advance) ---------------------------------

  /** Stops the deployment: devices not yet updated are answered 204. */
  halt(deployment: string, reason: string | undefined, now: number): RolloutStatus {
    const state = this.deps.states.get(deployment) ?? this.known(deployment, now)
    if (state.status === 'halted') throw new RolloutErrors.Conflict(`${deployment} is already halted (${new Date(state.halt?.at ?? state.updatedAt).toISOString()}): ${state.halt?.why ?? ''}`)
    const why = `halted by the operator${reason ? `: ${reason}` : ' (no reason given)'}`
    this.haltNow(state, 'operator', why, now)
    return this.status(deployment, now)!
  }

  /** Lets a halted deployment go on at its open stage, which counts afresh from now. */
  resume(deployment: string, reason: string | undefined, now: number): RolloutStatus {
    const state = this.deps.states.get(deployment)
    if (!state && !this.catalogue().has(deployment)) throw new RolloutErrors.NotFound(`no deployment ${deployment}: no release names it and it has no rollout state`)
    if (state?.status !== 'halted') throw new RolloutErrors.Conflict(`${deployment} is not halted; nothing to resume`)
    const plan = this.catalogue().get(deployment)?.plan
    const now_ = this.releaseNames(deployment)
    const then = state.halt?.releases ?? []
    const same = now_.length > 0 && now_.join(',') === then.join(',')
    const releases = same
      ? ` Note: the releases are the same as at the halt (${now_.join(', ')}); devices will be offered what failed before.`
      : now_.length
        ? ` Releases now: ${now_.join(', ')}${then.length ? ` (at the halt: ${then.join(', ')})` : ''}.`
        : ''
    const stageText = plan ? `stage ${Math.min(state.stage, plan.stages.length - 1) + 1} (${describeStage(plan.stages[Math.min(state.stage, plan.stages.length - 1)]!)}) counts afresh from now` : 'no stage plan: every device the manifest includes may update again'
    const why = `resumed by the operator${reason ? `: ${reason}` : ''}; ${stageText}.${releases}`
    state.status = 'active'
    state.halt = null
    this.restartStage(state, now)
    this.decide(state, { at: now, action: 'resumed', stage: state.stage + 1, by: 'operator', why })
    this.log.warn({ deployment, stage: state.stage + 1 }, `rollout resumed: ${why}`)
    return this.status(deployment, now)!
  }

  /** Opens the next stage now, whatever the thresholds say. */
  advance(deployment: string, reason: string | undefined, now: number): RolloutStatus {
    const plan = this.catalogue().get(deployment)?.plan
    const state = this.deps.states.get(deployment)
    if (!plan) {
      if (!state && !this.catalogue().has(deployment)) throw new RolloutErrors.NotFound(`no deployment ${deployment}: no release names it and it has no rollout state`)
      throw new RolloutErrors.Conflict(`${deployment} has no stage plan, so there is no next stage; it is offered to every device its manifest includes`)
    }
    const s = state ?? this.open(deployment, plan, now)
    if (s.status === 'halted') throw new RolloutErrors.Conflict(`${deployment} is halted; resume it first ("ferry ota rollout resume ${deployment}"), then advance`)
    if (s.stage >= plan.stages.length - 1) throw new RolloutErrors.Conflict(`${deployment} is already at its last stage (${s.stage + 1} of ${plan.stages.length})`)
    const { counts } = this.tally(deployment, s, plan, now)
    const from = s.stage
    s.stage++
    this.restartStage(s, now)
    const why = `stage ${s.stage + 1} of ${plan.stages.length} (${describeStage(plan.stages[s.stage]!)}) opened by the operator${reason ? `: ${reason}` : ''}; stage ${from + 1} had ${counts.installed} of ${counts.started} installed, ${counts.failed + counts.stalled} failed`
    this.decide(s, { at: now, action: 'advanced', stage: s.stage + 1, by: 'operator', why })
    this.log.info({ deployment, stage: s.stage + 1 }, `rollout advanced: ${why}`)
    return this.status(deployment, now)!
  }

  // --- inside --------------------------------------------------------------------------------------

  private remember(r: OtaReportRecord): void {
    let byDevice = this.latest.get(r.deployment)
    if (!byDevice) this.latest.set(r.deployment, (byDevice = new Map()))
    const prev = byDevice.get(r.device)
    const seen: Seen = { ts: r.ts, state: r.state, version: r.version, ...(r.reason !== undefined ? { reason: r.reason } : {}) }
    const failed = r.state === 'failed' || r.state === 'rolled-back'
    const failure = failed && !(prev?.failure && prev.failure.ts > r.ts) ? seen : prev?.failure
    const installedAt = r.state === 'installed' ? Math.max(r.ts, prev?.installedAt ?? 0) : prev?.installedAt
    const extra = { ...(failure ? { failure } : {}), ...(installedAt !== undefined ? { installedAt } : {}) }
    // Later receive time wins; for the same time, the later line (reports of one device come in order).
    if (prev && prev.ts > r.ts) byDevice.set(r.device, { ...prev, ...extra })
    else byDevice.set(r.device, { ...seen, ...extra })
  }

  /** Deployments named by the published releases, each with its releases (newest first) and plan. */
  private catalogue(): Map<string, DeploymentReleases> {
    const out = new Map<string, DeploymentReleases>()
    for (const hw of this.deps.releases.hardware()) {
      for (const r of this.deps.releases.releases(hw)) {
        const d = out.get(r.manifest.deployment) ?? { releases: [] }
        d.releases.push(r)
        out.set(r.manifest.deployment, d)
      }
    }
    for (const d of out.values()) {
      d.releases.sort((a, b) => compareSemver(b.manifest.version, a.manifest.version))
      const planned = d.releases.find((r) => r.plan)
      if (planned?.plan) d.plan = planned.plan
    }
    return out
  }

  private releaseNames(deployment: string): string[] {
    return (this.catalogue().get(deployment)?.releases ?? []).map((r) => `${r.manifest.hw} ${r.manifest.version}`)
  }

  /** A state for a deployment the operator names; 404 when nothing is known of it. */
  private known(deployment: string, now: number): RolloutState {
    const d = this.catalogue().get(deployment)
    if (!d) throw new RolloutErrors.NotFound(`no deployment ${deployment}: no release names it and it has no rollout state`)
    if (d.plan) return this.open(deployment, d.plan, now)
    return { schema: ROLLOUT_STATE_SCHEMA, deployment, status: 'active', stage: 0, epoch: now, successSince: null, offers: {}, halt: null, history: [], updatedAt: now }
  }

  /** Opens stage 1 of a deployment first seen with a plan. */
  private open(deployment: string, plan: RolloutPlan, now: number): RolloutState {
    const from = this.catalogue().get(deployment)?.releases.find((r) => r.plan)
    const state: RolloutState = { schema: ROLLOUT_STATE_SCHEMA, deployment, status: 'active', stage: 0, epoch: now, successSince: null, offers: {}, halt: null, history: [], updatedAt: now }
    const why = `stage 1 of ${plan.stages.length} (${describeStage(plan.stages[0]!)}) opened: first time the server saw this deployment with a stage plan${from ? ` (published with ${from.manifest.hw} ${from.manifest.version})` : ''}; plan ${describeStages(plan)}`
    this.decide(state, { at: now, action: 'opened', stage: 1, by: 'server', why })
    this.log.info({ deployment, stages: describeStages(plan) }, `rollout opened: ${why}`)
    return state
  }

  private restartStage(state: RolloutState, now: number): void {
    state.epoch = now
    state.offers = {}
    state.successSince = null
  }

  /** Records and saves a decision. */
  private decide(state: RolloutState, d: Decision): void {
    state.history.push(d)
    this.deps.states.save(state)
    this.deps.events?.decision?.(state.deployment, d)
  }

  private haltNow(state: RolloutState, by: 'server' | 'operator', why: string, now: number): void {
    state.status = 'halted'
    state.successSince = null
    state.halt = { at: now, by, why, releases: this.releaseNames(state.deployment) }
    this.decide(state, { at: now, action: 'halted', stage: state.stage + 1, by, why })
    // ERROR: someone must act (Vector's rule, common/src/logger.ts) whoever halted it.
    this.log.error({ deployment: state.deployment, stage: state.stage + 1, by }, `rollout halted: ${why}`)
  }

  private stageInfo(plan: RolloutPlan, state: RolloutState): NonNullable<RolloutStatus['stage']> {
    const i = Math.min(state.stage, plan.stages.length - 1)
    return { number: i + 1, of: plan.stages.length, description: describeStage(plan.stages[i]!), final: i === plan.stages.length - 1 }
  }

  /** The open stage's counts and failures (see the module comment for the rules). */
  private tally(deployment: string, state: RolloutState, plan: RolloutPlan, now: number): { counts: StageCounts; failures: Failure[] } {
    const latest = this.latest.get(deployment)
    const devices = new Set(Object.keys(state.offers))
    // Strictly after the epoch: the report that completed the previous stage (stamped in the same
    // millisecond the next one opened) belongs to the previous stage.
    for (const [device, r] of latest ?? []) if (r.ts > state.epoch) devices.add(device)
    const counts: StageCounts = { offered: Object.keys(state.offers).length, started: devices.size, installed: 0, failed: 0, stalled: 0, inProgress: 0 }
    const failures: Failure[] = []
    const stall = plan.stall_timeout_ms
    for (const device of devices) {
      const r = latest?.get(device)
      if (r && r.ts > state.epoch) {
        // A failure since the epoch counts until the device installs after it.
        const f = r.failure && r.failure.ts > state.epoch && !(r.installedAt !== undefined && r.installedAt >= r.failure.ts) ? r.failure : undefined
        if (r.state === 'installed') counts.installed++
        else if (f) {
          counts.failed++
          failures.push({ device, state: f.state as 'failed' | 'rolled-back', reason: f.reason ?? null, at: f.ts })
        } else if (now - r.ts > stall) {
          counts.stalled++
          failures.push({ device, state: 'stalled', reason: `no report for ${duration(now - r.ts)} after ${r.state}`, at: r.ts + stall })
        } else counts.inProgress++
        continue
      }
      const offeredAt = state.offers[device]!
      if (now - offeredAt > stall) {
        counts.stalled++
        failures.push({ device, state: 'stalled', reason: `no report for ${duration(now - offeredAt)} after the offer`, at: offeredAt + stall })
      } else counts.inProgress++
    }
    failures.sort((a, b) => a.at - b.at || a.device.localeCompare(b.device))
    return { counts, failures }
  }

  /** Halts or advances the deployment when its open stage has reached a threshold. */
  private evaluate(state: RolloutState, plan: RolloutPlan, now: number): void {
    const { counts, failures } = this.tally(state.deployment, state, plan, now)
    const i = Math.min(state.stage, plan.stages.length - 1)
    const stageName = `stage ${i + 1} (${describeStage(plan.stages[i]!)})`
    const failed = counts.failed + counts.stalled
    const byCount = plan.halt.failures !== undefined && failed >= plan.halt.failures
    const byPercent = plan.halt.percent !== undefined && failed > 0 && counts.started >= plan.success.min_devices && failed * 100 >= plan.halt.percent * counts.started
    if (byCount || byPercent) {
      const threshold = byCount ? `the limit is ${plan.halt.failures} failure${plan.halt.failures === 1 ? '' : 's'}` : `${pct(failed, counts.started)} ≥ the ${plan.halt.percent}% limit`
      const named = failures.slice(0, 5).map((f) => `${f.device} ${f.state}${f.reason ? ` (${f.reason})` : ''}`).join(', ') + (failures.length > 5 ? `, and ${failures.length - 5} more` : '')
      this.haltNow(state, 'server', `${failed} of the ${counts.started} devices that started ${stageName} failed; ${threshold}: ${named}`, now)
      return
    }
    if (i >= plan.stages.length - 1) return
    const succeeded = counts.started >= plan.success.min_devices && counts.installed * 100 >= plan.success.percent * counts.started
    if (!succeeded) {
      if (state.successSince !== null) {
        state.successSince = null
        this.deps.states.save(state)
      }
      return
    }
    if (state.successSince === null) {
      state.successSince = now
      this.deps.states.save(state)
    }
    if (now - state.successSince < plan.success.soak_ms) return
    const held = plan.success.soak_ms ? `, held for the ${duration(plan.success.soak_ms)} soak` : ''
    state.stage = i + 1
    this.restartStage(state, now)
    const why = `${stageName} succeeded: ${counts.installed} of the ${counts.started} devices that started it installed (${pct(counts.installed, counts.started)} ≥ ${plan.success.percent}%, at least ${plan.success.min_devices} started)${held}; stage ${state.stage + 1} of ${plan.stages.length} (${describeStage(plan.stages[state.stage]!)}) opened`
    this.decide(state, { at: now, action: 'advanced', stage: state.stage + 1, by: 'server', why })
    this.log.info({ deployment: state.deployment, stage: state.stage + 1 }, `rollout advanced: ${why}`)
  }

  private next(plan: RolloutPlan, state: RolloutState, c: StageCounts): string {
    const i = Math.min(state.stage, plan.stages.length - 1)
    const halt = [plan.halt.failures !== undefined ? `${plan.halt.failures} failure${plan.halt.failures === 1 ? '' : 's'}` : '', plan.halt.percent !== undefined ? `${plan.halt.percent}% failed` : ''].filter(Boolean).join(' or ')
    if (i >= plan.stages.length - 1) return `final stage: open to every device it includes; halts if its failures reach ${halt}`
    const nextStage = `stage ${i + 2} (${describeStage(plan.stages[i + 1]!)})`
    if (state.successSince !== null) return `the success threshold holds since ${new Date(state.successSince).toISOString()}; ${nextStage} opens at ${new Date(state.successSince + plan.success.soak_ms).toISOString()} unless failures come in`
    const need = c.started < plan.success.min_devices ? `${plan.success.min_devices - c.started} more device${plan.success.min_devices - c.started === 1 ? '' : 's'} must start` : `${plan.success.percent}% must install`
    return `${nextStage} opens when ≥ ${plan.success.percent}% of ≥ ${plan.success.min_devices} devices that started stage ${i + 1} installed (now ${c.installed} of ${c.started}; ${need}); halts if failures reach ${halt}`
  }
}

/** "60%" (whole percent, rounded down so a threshold is never shown as met when it is not). */
function pct(n: number, of: number): string {
  return of === 0 ? '0%' : `${Math.floor((n * 100) / of)}%`
}
