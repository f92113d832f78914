/**
 * A release's stage plan: who may be offered the release, stage by stage, and the thresholds by which
 * the OTA server opens the next stage or halts the deployment by itself (docs/ota-rollouts.md).
 *
 * The plan is unsigned publishing metadata written by `ferry ota publish` beside the signed envelope
 * (`releases/<hw>/<version>.rollout.json`). It decides only WHO is handed the signed envelope, never
 * WHAT it contains: the envelope's bytes, and so its signature, are the same with or without a plan.
 * A plan can narrow the signed `rollout` field of the manifest but never widen it (the server checks
 * both). The worst a tampered plan can do is offer a correctly signed release to more or fewer of the
 * devices the manifest already allows, which is what the server can do anyway.
 */
import { readFileSync } from 'node:fs'
import { Type, type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { FerryError } from '../../../common/src/errors.js'
import { rolloutBucket } from '../manifest/rollout.js'

/** The plan format this code writes and reads. */
export const ROLLOUT_PLAN_SCHEMA = 1

const DeviceId = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' })

/**
 * One stage: a percentage of devices by the same stable bucket as the manifest's rollout
 * (`rolloutBucket(deployment, device) < percent`), or a list of device ids. Stages are cumulative:
 * stage k is open to every device of stages 1..k.
 */
export const StageSchema = Type.Union([
  Type.Object({ percent: Type.Integer({ minimum: 1, maximum: 100 }) }, { additionalProperties: false }),
  Type.Object({ devices: Type.Array(DeviceId, { minItems: 1, maxItems: 10_000, uniqueItems: true }) }, { additionalProperties: false }),
])
export type Stage = Static<typeof StageSchema>

export const RolloutPlanSchema = Type.Object(
  {
    schema: Type.Literal(ROLLOUT_PLAN_SCHEMA),
    stages: Type.Array(StageSchema, { minItems: 1, maxItems: 32 }),
    /** The next stage opens when `percent` of the devices that started this stage installed, once at least `min_devices` started, and that held for `soak_ms`. */
    success: Type.Object(
      {
        percent: Type.Integer({ minimum: 1, maximum: 100 }),
        min_devices: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
        soak_ms: Type.Integer({ minimum: 0 }),
      },
      { additionalProperties: false },
    ),
    /** The deployment halts when the failures of the current stage reach `failures`, or `percent` of the devices that started it (judged once `min_devices` started). */
    halt: Type.Object(
      {
        failures: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        percent: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
      },
      { additionalProperties: false },
    ),
    /** A device that reported `downloading` or `verified` (or was offered the release) and then nothing for this long counts as failed. */
    stall_timeout_ms: Type.Integer({ minimum: 1000 }),
  },
  { additionalProperties: false },
)
export type RolloutPlan = Static<typeof RolloutPlanSchema>

const checkPlan = Compile(RolloutPlanSchema)

/** The defaults `ferry ota publish` fills in for options not given. */
export const PLAN_DEFAULTS = {
  success: { percent: 95, min_devices: 1, soak_ms: 0 },
  halt: { percent: 10 },
  stall_timeout_ms: 30 * 60_000,
} as const

/** Why `plan` is not a usable plan, or undefined. Beyond the schema: a halt threshold is required, and percentage stages must grow. */
export function planProblem(plan: unknown): string | undefined {
  if (!checkPlan.Check(plan)) {
    const first = [...checkPlan.Errors(plan)][0]
    return `not a rollout plan: ${first?.instancePath || '/'} ${first?.message ?? 'is invalid'}`
  }
  if (plan.halt.failures === undefined && plan.halt.percent === undefined) return 'a rollout plan needs a halt threshold (halt.failures, halt.percent or both)'
  let last = 0
  for (const [i, s] of plan.stages.entries()) {
    if (!('percent' in s)) continue
    if (s.percent <= last) return `stage ${i + 1} (${s.percent}%) does not widen the rollout: percentage stages must grow (the earlier stage already had ${last}%)`
    last = s.percent
  }
  return undefined
}

/** Throws FerryError('FERRY_ERR_RELEASE') naming the file when it is not a usable plan. */
export function readPlan(file: string): RolloutPlan {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new FerryError('FERRY_ERR_RELEASE', `${file}: the rollout plan cannot be read (${(err as Error).message}); publish the release again`, { cause: err })
  }
  const problem = planProblem(parsed)
  if (problem) throw new FerryError('FERRY_ERR_RELEASE', `${file}: ${problem}; publish the release again`)
  return parsed as RolloutPlan
}

/** The plan's file text: one line of JSON, keys in schema order. */
export function encodePlan(plan: RolloutPlan): string {
  const ordered: RolloutPlan = {
    schema: plan.schema,
    stages: plan.stages.map((s) => ('percent' in s ? { percent: s.percent } : { devices: [...s.devices] })),
    success: { percent: plan.success.percent, min_devices: plan.success.min_devices, soak_ms: plan.success.soak_ms },
    halt: { ...(plan.halt.failures !== undefined ? { failures: plan.halt.failures } : {}), ...(plan.halt.percent !== undefined ? { percent: plan.halt.percent } : {}) },
    stall_timeout_ms: plan.stall_timeout_ms,
  }
  return JSON.stringify(ordered) + '\n'
}

/** True when stage `index` (0-based) is open to the device: it belongs to one of stages 1..index+1. */
export function stageIncludes(plan: RolloutPlan, index: number, deployment: string, device: string): boolean {
  const last = Math.min(index, plan.stages.length - 1)
  for (let i = 0; i <= last; i++) {
    const s = plan.stages[i]!
    if ('percent' in s ? rolloutBucket(deployment, device) < s.percent : s.devices.includes(device)) return true
  }
  return false
}

/** "25%", or "3 devices (a, b, c)" (at most five named). */
export function describeStage(s: Stage): string {
  if ('percent' in s) return `${s.percent}%`
  const named = s.devices.slice(0, 5).join(', ') + (s.devices.length > 5 ? ', …' : '')
  return `${s.devices.length} device${s.devices.length === 1 ? '' : 's'} (${named})`
}

/** "5% → 25% → 100%". */
export function describeStages(plan: RolloutPlan): string {
  return plan.stages.map(describeStage).join(' → ')
}

/** The thresholds in words, e.g. "advance at ≥ 95% installed of ≥ 5 started, soak 10m; halt at 3 failures or 10%; stall timeout 30m". */
export function describeThresholds(plan: RolloutPlan): string {
  const halt = [plan.halt.failures !== undefined ? `${plan.halt.failures} failure${plan.halt.failures === 1 ? '' : 's'}` : '', plan.halt.percent !== undefined ? `${plan.halt.percent}% failed` : '']
    .filter(Boolean)
    .join(' or ')
  return `advance at ≥ ${plan.success.percent}% installed of ≥ ${plan.success.min_devices} started${plan.success.soak_ms ? `, held ${duration(plan.success.soak_ms)}` : ''}; halt at ${halt}; stall timeout ${duration(plan.stall_timeout_ms)}`
}

/** 1500 → "1.5s", 600000 → "10m", 5400000 → "90m", 7200000 → "2h". */
export function duration(ms: number): string {
  if (ms < 1000) return `${ms}ms`
  if (ms < 120_000) return `${Math.round(ms / 100) / 10}s`
  if (ms < 7_200_000) return `${Math.round(ms / 6000) / 10}m`
  return `${Math.round(ms / 360_000) / 10}h`
}
