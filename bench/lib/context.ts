import type { Result } from './harness.js'
import type { ToolName } from './preflight.js'

/** What every benchmark gets from bench/run.ts. */
export interface BenchContext {
  /** `--quick`: fewer samples and smaller sizes, the whole run in about three minutes. */
  quick: boolean
  /** Progress lines (stderr), so stdout keeps only the tables (or only the JSON with a bare `--json`). */
  log(msg: string): void
}

/** A benchmark module: `bench/<case>.bench.ts` exports one of these as `bench`. */
export interface Bench {
  /** Prefix of its result ids; `--only <name>` selects it. */
  name: string
  description: string
  /** Every external command it spawns (preflight.ts `TOOLS`); bench/run.ts checks them before anything starts. */
  needs: ToolName[]
  /**
   * With `--cpus`: what runs on Ferry's cores besides `ferry` itself, i.e. the baselines that stand
   * in for it (started with `cores: 'ferry'`); everything else runs on the other cores.
   */
  onFerryCores?: string
  run(ctx: BenchContext): Promise<Result[]>
}
