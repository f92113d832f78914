/**
 * Secret settings. A setting's schema marks it with annotations that loadEnv (env.ts) reads:
 *
 * - `secret: true`: a token, key or password. Its value is never repeated in an error message (the
 *   message says that it is set and what is wrong, not what it is), and the docs mark it "(secret)".
 * - `random: true`: a secret the operator makes up (FERRY_API_TOKEN). Besides the schema's own rules
 *   (minLength) it must look random, see `randomTokenProblem`. Implies `secret`.
 *
 * Tokens issued by a service (InfluxDB, ThingSpeak) are only `secret`: their shape is the service's
 * business. Ajv refuses unknown keywords in strict mode, so loadEnv strips these before validating.
 */
export interface SecretAnnotations {
  secret?: boolean
  random?: boolean
}

/** The annotation keywords, stripped from the schema before Ajv sees it. */
export const SECRET_KEYWORDS = ['secret', 'random'] as const

export function isSecret(field: { secret?: unknown; random?: unknown } | undefined): boolean {
  return Boolean(field?.secret || field?.random)
}

/** What to tell the operator about making a good token. */
export const MAKE_A_TOKEN = 'Make a random one with: openssl rand -hex 24'

/** Fewest different characters a token may have (`openssl rand -hex 8`, 16 characters, has fewer than 6 once in 30,000). */
const MIN_DISTINCT = 6
/** Most neighbouring pairs that may be equal or adjacent characters (aaaa, abcd, 4321), as a share of all pairs. */
const MAX_RUN_SHARE = 0.6

/**
 * Why `token` cannot be a good made-up secret, or undefined when it can. It says what is wrong
 * without repeating the token. The rules refuse what people type instead of generating:
 * whitespace (a header cannot carry it, so the token could never authenticate) and characters
 * outside visible ASCII; fewer than 6 different characters; only digits, or only lower-case or only
 * upper-case letters; mostly runs of equal or neighbouring characters; a string repeated. A token from
 * `openssl rand -hex 24` passes all of them (a 16-character `-hex 8` one fails about once in 2,000:
 * make a new one).
 */
export function randomTokenProblem(token: string): string | undefined {
  if (token.trim() === '') return 'is blank (only whitespace)'
  if (/\s/.test(token)) return 'contains whitespace, which an Authorization header cannot carry'
  if (!/^[\x21-\x7e]+$/.test(token)) return 'contains characters other than visible ASCII (letters, digits, punctuation)'
  const distinct = new Set(token).size
  if (distinct < MIN_DISTINCT) return `has only ${distinct} different character${distinct === 1 ? '' : 's'}, so it is easy to guess`
  for (const [re, what] of [[/^[0-9]+$/, 'digits'], [/^[a-z]+$/, 'lower-case letters'], [/^[A-Z]+$/, 'upper-case letters']] as const) {
    if (re.test(token)) return `is only ${what}, so it is easy to guess`
  }
  let runs = 0
  for (let i = 1; i < token.length; i++) if (Math.abs(token.charCodeAt(i) - token.charCodeAt(i - 1)) <= 1) runs++
  if (runs > MAX_RUN_SHARE * (token.length - 1)) return 'is mostly runs of equal or neighbouring characters (like aaaa, abcd or 4321), so it is easy to guess'
  if ((token + token).indexOf(token, 1) < token.length) return 'is a shorter string repeated, so it is easy to guess'
  return undefined
}
