import { ConfigError, hasCode } from '../errors.js'
import type { Logger } from '../logger.js'

/** A `FERRY_` name that was set but that no Ferry program reads (usually a typo), found by loadEnv. */
export interface UnknownSetting {
  name: string
  /** Where it was set: "the environment" and/or the dotenv file's path. */
  sources: string[]
  /** The closest known names, when one is close enough to be a likely typo (ties: up to three). */
  suggestions: string[]
  /** The warning: `unknown setting FERRY_SINKZ (from .env) ignored; did you mean FERRY_SINKS?` */
  message: string
}

/** What loadEnv needs to look for unknown names. */
export interface UnknownCheck {
  /** Names known besides the schema's own: see knownSettingNames. */
  known: Iterable<string>
  /** Called once per unknown name, before validation (so also when the configuration is then refused). */
  report: (u: UnknownSetting) => void
  /** The command that lists the known settings, for names with no close match. Default "ferry config". */
  help?: string
}

/** Label of the process environment in messages. */
export const FROM_ENVIRONMENT = 'the environment'

/**
 * Optimal-string-alignment distance (Damerau-Levenshtein where a transposed pair counts as one edit
 * and no substring is edited twice): insertions, deletions, substitutions and adjacent swaps.
 */
export function editDistance(a: string, b: string): number {
  // Three rows: the one before the previous (for swaps), the previous and the current.
  let before: number[] = []
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1)
      cur.push(d)
    }
    before = prev
    prev = cur
  }
  return prev[b.length]!
}

/**
 * The known names closest to `name` (case-insensitive), if close enough to be a typo of it: at most
 * max(2, length / 4) edits. Several only on a tie, at most three, in alphabetical order.
 */
export function closestNames(name: string, known: Iterable<string>): string[] {
  const limit = Math.max(2, Math.floor(name.length / 4))
  const upper = name.toUpperCase()
  let best = limit + 1
  let found: string[] = []
  for (const k of known) {
    const d = editDistance(upper, k.toUpperCase())
    if (d < best) {
      best = d
      found = [k]
    } else if (d === best && d <= limit) {
      found.push(k)
    }
  }
  return found.sort().slice(0, 3)
}

/** The unknown `FERRY_` names among `sources` (each a label and the names set there), in the order seen. */
export function findUnknownSettings(sources: { label: string; names: Iterable<string> }[], known: ReadonlySet<string>, help = 'ferry config'): UnknownSetting[] {
  const where = new Map<string, string[]>()
  for (const s of sources) {
    for (const name of s.names) {
      if (!name.startsWith('FERRY_') || known.has(name)) continue
      const list = where.get(name) ?? []
      if (!list.includes(s.label)) list.push(s.label)
      where.set(name, list)
    }
  }
  return [...where].map(([name, from]) => {
    const suggestions = closestNames(name, known)
    const next = suggestions.length ? `did you mean ${suggestions.join(' or ')}?` : `"${help}" lists the known settings`
    return { name, sources: from, suggestions, message: `unknown setting ${name} (from ${from.join(' and ')}) ignored; ${next}` }
  })
}

/** `Did you mean it as X, which is set but unknown?` for a missing `name`, or '' when no unknown name resembles it. */
export function lookAlikeHint(name: string, unknown: readonly UnknownSetting[]): string {
  const alikes = unknown.filter((u) => u.suggestions.includes(name)).map((u) => u.name)
  if (!alikes.length) return ''
  return `Did you mean it as ${alikes.join(' or ')}, which ${alikes.length > 1 ? 'are' : 'is'} set but unknown?`
}

/**
 * Collects what loadEnv reports until the service has its logger, then logs it there (WARN). When
 * start-up fails first, `explain` writes the reports to stderr instead and names the look-alike of
 * every setting the error says is missing.
 */
export class UnknownSettings {
  readonly found: UnknownSetting[] = []
  private logged = false

  constructor(private readonly known: Iterable<string>, private readonly help?: string) {}

  /** The option for loadEnv. */
  get check(): UnknownCheck {
    return { known: this.known, report: (u) => this.found.push(u), help: this.help }
  }

  /** Logs every report once, as a warning. */
  logTo(log: Pick<Logger, 'warn'>): void {
    this.logged = true
    for (const u of this.found) log.warn({ setting: u.name, sources: u.sources, suggestions: u.suggestions }, u.message)
  }

  /**
   * For an error that stops start-up: writes the reports to stderr if no logger took them yet, and for a
   * ConfigError that names settings that are not set (`isSet` says which are) while an unknown name
   * resembles them, returns a ConfigError that says so. Other errors are returned as they are.
   */
  explain(err: unknown, isSet?: (name: string) => boolean, prefix = 'ferry'): unknown {
    if (!this.logged) for (const u of this.found) process.stderr.write(`${prefix}: warning: ${u.message}\n`)
    this.logged = true
    if (!isSet || !hasCode(err, 'FERRY_ERR_CONFIG') || !(err instanceof Error)) return err
    const named = new Set(err.message.match(/FERRY_[A-Za-z0-9_]+/g) ?? [])
    const unmentioned = this.found.filter((u) => !named.has(u.name))
    const hints: string[] = []
    for (const name of named) {
      if (isSet(name)) continue
      const hint = lookAlikeHint(name, unmentioned)
      if (hint) hints.push(`${name} is not set. ${hint}`)
    }
    return hints.length ? new ConfigError(`${err.message} ${hints.join(' ')}`, { cause: err }) : err
  }
}
