/**
 * A small, complete implementation of Semantic Versioning 2.0.0 parsing and precedence
 * (https://semver.org/spec/v2.0.0.html §2, §9-11). Ferry needs only "parse" and "compare", so a
 * dependency is not worth it; the firmware's `version.h` implements the same rules and is tested
 * against the same vectors (see `semver.test.ts`).
 */

/** The official semver.org regular expression (§ "Is there a suggested regular expression"). */
export const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/

/** The same pattern as a string, for JSON schemas. */
export const SEMVER_PATTERN = SEMVER_RE.source

/** Versions are also file names and HTTP query values; 64 characters is plenty and bounds the work. */
export const SEMVER_MAX_LENGTH = 64

export interface SemVer {
  major: number
  minor: number
  patch: number
  prerelease: string[]
  build: string[]
}

/** True when `text` is a semver 2.0.0 version of at most 64 characters whose numbers are safe integers. */
export function isSemver(text: unknown): text is string {
  return typeof text === 'string' && parseSemverOrUndefined(text) !== undefined
}

/** Parses a version; throws a TypeError naming the text when it is not semver 2.0.0. */
export function parseSemver(text: string): SemVer {
  const v = parseSemverOrUndefined(text)
  if (!v) throw new TypeError(`"${text}" is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build], e.g. 1.4.0)`)
  return v
}

function parseSemverOrUndefined(text: string): SemVer | undefined {
  if (text.length > SEMVER_MAX_LENGTH) return undefined
  const m = SEMVER_RE.exec(text)
  if (!m) return undefined
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])]
  // Beyond 2^53 numbers lose precision and two different versions could compare equal.
  if (![major, minor, patch].every(Number.isSafeInteger)) return undefined
  const prerelease = m[4] ? m[4].split('.') : []
  if (prerelease.some((id) => /^\d+$/.test(id) && !Number.isSafeInteger(Number(id)))) return undefined
  return { major, minor, patch, prerelease, build: m[5] ? m[5].split('.') : [] }
}

/**
 * Precedence as in semver §11: -1 when a < b, 0 when equal, 1 when a > b. Build metadata is ignored,
 * so `1.0.0+a` and `1.0.0+b` compare equal. Throws TypeError on an invalid version.
 */
export function compareSemver(a: string, b: string): -1 | 0 | 1 {
  const x = parseSemver(a)
  const y = parseSemver(b)
  for (const k of ['major', 'minor', 'patch'] as const) {
    if (x[k] !== y[k]) return x[k] < y[k] ? -1 : 1
  }
  // A version without pre-release identifiers has higher precedence than one with them (§11.3).
  if (!x.prerelease.length || !y.prerelease.length) {
    if (x.prerelease.length === y.prerelease.length) return 0
    return x.prerelease.length ? -1 : 1
  }
  const n = Math.min(x.prerelease.length, y.prerelease.length)
  for (let i = 0; i < n; i++) {
    const c = compareIdentifier(x.prerelease[i]!, y.prerelease[i]!)
    if (c) return c
  }
  // A larger set of pre-release fields has higher precedence when all before are equal (§11.4.4).
  if (x.prerelease.length === y.prerelease.length) return 0
  return x.prerelease.length < y.prerelease.length ? -1 : 1
}

function compareIdentifier(a: string, b: string): -1 | 0 | 1 {
  const an = /^\d+$/.test(a)
  const bn = /^\d+$/.test(b)
  // Numeric identifiers compare numerically and always have lower precedence than alphanumeric ones (§11.4.1-3).
  if (an && bn) {
    const d = Number(a) - Number(b)
    return d === 0 ? 0 : d < 0 ? -1 : 1
  }
  if (an !== bn) return an ? -1 : 1
  // ASCII order, not locale order.
  return a === b ? 0 : a < b ? -1 : 1
}
