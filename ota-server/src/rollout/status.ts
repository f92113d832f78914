/**
 * What `GET /ota/rollouts` answers for each deployment, `ferry ota rollout status` prints and the
 * gateway shows on /api/status and its dashboard. One schema for all three (the gateway validates
 * what it fetches against it before showing it).
 */
import { Type, type Static, type TSchema } from 'typebox'
import { DEPLOYMENT_PATTERN } from '../manifest/envelope.js'
import { DecisionSchema, HaltSchema } from './state.js'

const Nullable = <T extends TSchema>(s: T) => Type.Union([s, Type.Null()])

export const StageCountsSchema = Type.Object(
  {
    offered: Type.Integer({ description: 'Devices handed the signed envelope since the stage counts (opening or resume).' }),
    started: Type.Integer({ description: 'Devices offered the release or reporting on it since then: the denominator of both thresholds.' }),
    installed: Type.Integer({ description: 'Of those, devices whose latest report is installed (a confirmed install: the self-test passed).' }),
    failed: Type.Integer({ description: 'Devices whose latest report is failed or rolled-back.' }),
    stalled: Type.Integer({ description: 'Devices with no report within the stall timeout after the offer, downloading or verified; they count as failures.' }),
    inProgress: Type.Integer({ description: 'The rest: offered, downloading or verified, within the stall timeout.' }),
  },
  { additionalProperties: false },
)
export type StageCounts = Static<typeof StageCountsSchema>

export const FailureSchema = Type.Object(
  {
    device: Type.String(),
    state: Type.Union([Type.Literal('failed'), Type.Literal('rolled-back'), Type.Literal('stalled')]),
    /** The device's reason (e.g. self_test_failed), or for a stall what it last said. */
    reason: Nullable(Type.String()),
    at: Type.Integer(),
  },
  { additionalProperties: false },
)
export type Failure = Static<typeof FailureSchema>

export const RolloutStatusSchema = Type.Object(
  {
    deployment: Type.String({ pattern: DEPLOYMENT_PATTERN }),
    status: Type.Union([Type.Literal('active'), Type.Literal('halted'), Type.Literal('unstaged')], {
      description: 'active: staged and running; halted: devices not yet updated get 204; unstaged: no stage plan, served by the manifest\'s rollout alone.',
    }),
    stage: Nullable(
      Type.Object(
        {
          number: Type.Integer({ description: 'The open stage, 1-based.' }),
          of: Type.Integer(),
          description: Type.String({ description: 'e.g. "25%" or "3 devices (a, b, c)"; stages are cumulative.' }),
          final: Type.Boolean(),
        },
        { additionalProperties: false },
      ),
    ),
    stages: Nullable(Type.String({ description: 'The whole plan, e.g. "5% → 25% → 100%".' })),
    thresholds: Nullable(Type.String({ description: 'The plan\'s thresholds in words.' })),
    since: Nullable(Type.Integer({ description: 'Reports and offers count for the open stage from this time (its opening or the last resume), epoch ms.' })),
    why: Type.String({ description: 'Why the deployment is where it is: the decision that opened the stage, resumed it or halted it.' }),
    next: Type.String({ description: 'What happens next, or what the operator can do.' }),
    counts: Nullable(StageCountsSchema),
    failures: Type.Array(FailureSchema, { description: 'The open stage\'s failures (at most 20).' }),
    releases: Type.Array(
      Type.Object({ hw: Type.String(), version: Type.String(), planned: Type.Boolean() }, { additionalProperties: false }),
      { description: 'The releases of this deployment, newest first; planned: published with a stage plan.' },
    ),
    halt: Nullable(HaltSchema),
    history: Type.Array(DecisionSchema, { description: 'The last decisions, oldest first (at most 20 here; 100 are kept).' }),
  },
  { additionalProperties: false },
)
export type RolloutStatus = Static<typeof RolloutStatusSchema>
