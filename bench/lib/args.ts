/**
 * The bench runner's arguments. `--json` takes an optional file: Node's parseArgs (common/src/
 * cli-args.ts) has no optional values (a string option always takes the next argument, and refuses
 * one that looks like an option), so a bare `--json` is rewritten to `--json=-` before parsing, and
 * `-` means stdout. Done here rather than in parseCli so the other commands keep their strict parsing.
 */
import { parseCli } from '../../common/src/cli-args.js'
import { UsageError } from '../../common/src/errors.js'

export interface BenchArgs {
  help: boolean
  quick: boolean
  /** `--json` / `--json -`: the document to stdout; `--json <file>`: to the file. */
  json?: { to: 'stdout' } | { to: 'file'; file: string }
  /** `--only a,b`; undefined for all. */
  only?: string[]
  /** `--cpus N` */
  cpus?: number
}

/** `--json` with no value (last, or followed by another option; `-` is a value) becomes `--json=-`. */
export function bareJsonToStdout(argv: string[]): string[] {
  const bare = (next: string | undefined) => next === undefined || (next.startsWith('-') && next !== '-')
  return argv.map((a, i) => (a === '--json' && bare(argv[i + 1]) ? '--json=-' : a))
}

export function parseBenchArgs(argv: string[], help: string): BenchArgs {
  const { values, help: wantHelp } = parseCli(
    bareJsonToStdout(argv),
    { quick: { type: 'boolean' }, json: { type: 'string' }, only: { type: 'string' }, cpus: { type: 'string' } },
    help,
    false,
  )
  let cpus: number | undefined
  if (values.cpus !== undefined) {
    cpus = Number(values.cpus)
    if (!/^\d+$/.test(values.cpus) || !Number.isSafeInteger(cpus) || cpus < 1) throw new UsageError(`--cpus takes a whole number of cores for Ferry, at least 1, not "${values.cpus}"\n\n${help}`)
  }
  if (values.json === '') throw new UsageError(`--json takes a file name, or nothing (or -) for stdout\n\n${help}`)
  const json = values.json === undefined ? undefined : values.json === '-' ? { to: 'stdout' as const } : { to: 'file' as const, file: values.json }
  return {
    help: wantHelp,
    quick: values.quick === true,
    ...(json ? { json } : {}),
    ...(values.only !== undefined ? { only: values.only.split(',').map((x) => x.trim()).filter(Boolean) } : {}),
    ...(cpus !== undefined ? { cpus } : {}),
  }
}
