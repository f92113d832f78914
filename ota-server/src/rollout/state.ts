/**
 * The OTA server's own rollout state, one small JSON file per deployment in `<FERRY_OTA_DIR>/rollouts/`
 * (the server's writable volume, beside `reports.jsonl`). It records which stage is open, whether the
 * deployment is halted, since when the current stage counts, which devices were offered the release
 * in it, and every decision with its reason, so a restart changes nothing and `status` can explain.
 *
 * Written whole to a temporary file, fsynced and renamed over the old one: a crash leaves the old
 * state or the new one. A file that cannot be read is moved aside and the deployment starts HALTED,
 * because not knowing whether a rollout was stopped must never let it spread.
 */
import { existsSync, readdirSync, readFileSync, renameSync } from 'node:fs'
import { writeFileDurably } from '../../../common/src/durable-file.js'
import { Type, type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import type { Logger } from '../../../common/src/logger.js'
import { DEPLOYMENT_PATTERN } from '../manifest/envelope.js'
import type { OtaLayout } from '../store/layout.js'

export const ROLLOUT_STATE_SCHEMA = 1

/** Keep this many decisions per deployment (the oldest are dropped). */
export const HISTORY_MAX = 100

export const DecisionSchema = Type.Object(
  {
    at: Type.Integer({ description: 'When, epoch ms.' }),
    action: Type.Union([Type.Literal('opened'), Type.Literal('advanced'), Type.Literal('halted'), Type.Literal('resumed')]),
    /** The stage (1-based) the deployment is at after the decision. */
    stage: Type.Integer({ minimum: 0 }),
    by: Type.Union([Type.Literal('server'), Type.Literal('operator')], { description: 'server: a threshold decided; operator: ferry ota rollout halt|resume|advance.' }),
    why: Type.String(),
  },
  { additionalProperties: false },
)
export type Decision = Static<typeof DecisionSchema>

export const HaltSchema = Type.Object(
  {
    at: Type.Integer(),
    by: Type.Union([Type.Literal('server'), Type.Literal('operator')]),
    why: Type.String(),
    /** The releases of the deployment at the halt (`<hw> <version>`), so `resume` can say whether a fix was published since. */
    releases: Type.Array(Type.String()),
  },
  { additionalProperties: false },
)

export const RolloutStateSchema = Type.Object(
  {
    schema: Type.Literal(ROLLOUT_STATE_SCHEMA),
    deployment: Type.String({ pattern: DEPLOYMENT_PATTERN }),
    status: Type.Union([Type.Literal('active'), Type.Literal('halted')]),
    /** Index of the open stage, 0-based. */
    stage: Type.Integer({ minimum: 0 }),
    /** Reports and offers count for the open stage from this time on (the stage's opening, or the last resume). */
    epoch: Type.Integer(),
    /** Since when the success threshold has held (for the soak), or null. */
    successSince: Type.Union([Type.Integer(), Type.Null()]),
    /** Device → when it was first offered the release since `epoch`. */
    offers: Type.Record(Type.String(), Type.Integer()),
    halt: Type.Union([HaltSchema, Type.Null()]),
    history: Type.Array(DecisionSchema),
    updatedAt: Type.Integer(),
  },
  { additionalProperties: false },
)
export type RolloutState = Static<typeof RolloutStateSchema>

const checkState = Compile(RolloutStateSchema)
const DEPLOYMENT_RE = new RegExp(DEPLOYMENT_PATTERN)

/** Every rollout state in memory, written through to `<dir>/rollouts/<deployment>.json` on each change. */
export class RolloutStateStore {
  private readonly states = new Map<string, RolloutState>()

  constructor(
    private readonly layout: OtaLayout,
    private readonly log: Logger,
    private readonly now: () => number,
  ) {}

  /** Reads every state file. One that cannot be read is moved aside and its deployment starts halted. */
  load(): void {
    const dir = this.layout.rolloutsDir
    if (!existsSync(dir)) return
    for (const name of readdirSync(dir)) {
      if (!name.endsWith('.json')) continue
      const deployment = name.slice(0, -5)
      if (!DEPLOYMENT_RE.test(deployment)) continue
      const file = this.layout.rolloutState(deployment)
      let problem: string
      try {
        const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'))
        if (checkState.Check(parsed) && parsed.deployment === deployment) {
          this.states.set(deployment, parsed)
          continue
        }
        const first = [...checkState.Errors(parsed)][0]
        problem = first ? `${first.instancePath || '/'} ${first.message}` : `it names deployment ${JSON.stringify((parsed as { deployment?: unknown }).deployment)}`
      } catch (err) {
        problem = (err as Error).message
      }
      const at = this.now()
      const movedTo = `${file}.corrupt-${at}`
      renameSync(file, movedTo)
      const why = `the rollout state file could not be read (${problem}) and was moved to ${movedTo}; halted because it is unknown whether the rollout had been stopped. Check the deployment's reports, then resume it.`
      this.log.error({ deployment, file, movedTo, problem }, 'rollout state unreadable; the deployment starts halted')
      this.save({
        schema: ROLLOUT_STATE_SCHEMA,
        deployment,
        status: 'halted',
        stage: 0,
        epoch: at,
        successSince: null,
        offers: {},
        halt: { at, by: 'server', why, releases: [] },
        history: [{ at, action: 'halted', stage: 1, by: 'server', why }],
        updatedAt: at,
      })
    }
  }

  get(deployment: string): RolloutState | undefined {
    return this.states.get(deployment)
  }

  all(): RolloutState[] {
    return [...this.states.values()]
  }

  /** Keeps `state` and writes it through (atomically, fsynced). */
  save(state: RolloutState): void {
    if (state.history.length > HISTORY_MAX) state.history.splice(0, state.history.length - HISTORY_MAX)
    state.updatedAt = this.now()
    const file = this.layout.rolloutState(state.deployment)
    writeFileDurably(file, JSON.stringify(state, null, 1) + '\n', 0o640)
    this.states.set(state.deployment, state)
  }
}

