import { readFileSync, existsSync } from 'node:fs'
import { parse as parseDotenv } from 'dotenv'
import { envSchema } from 'env-schema'
import type { TObject, TSchema } from 'typebox'
import { ConfigError } from '../errors.js'
import { FROM_ENVIRONMENT, findUnknownSettings, lookAlikeHint, type UnknownCheck, type UnknownSetting } from './unknown.js'
import { isSecret, MAKE_A_TOKEN, randomTokenProblem, SECRET_KEYWORDS, type SecretAnnotations } from './secrets.js'

export interface LoadEnvOptions {
  env?: NodeJS.ProcessEnv
  dotenvPath?: string
  /**
   * Look for unknown `FERRY_` names: any set (non-empty) in the environment or the dotenv file that is
   * neither in the schema nor in `known` is reported, with the closest known name, and a required
   * setting that is missing names its look-alike. Off when not given.
   */
  unknown?: UnknownCheck
}

/**
 * Loads `FERRY_*` settings from the environment plus an optional dotenv file and validates them with
 * one JSON schema (TypeBox builds it, Ajv checks it via env-schema, with type coercion and defaults).
 * The real environment wins over the dotenv file, as everywhere else in the Node world.
 *
 * A bad value throws a ConfigError that names every offending variable, says what is wanted (from the
 * schema's `description`) and what was given, except for secret settings, whose values are never
 * repeated (secrets.ts; a made-up token must also look random). Nothing here touches the network or
 * the buffer.
 * With `opts.unknown`, misspelt names are reported instead of silently ignored (see LoadEnvOptions).
 */
export function loadEnv<T>(schema: TObject, opts: LoadEnvOptions = {}): T {
  const env = opts.env ?? process.env
  const dotenvPath = opts.dotenvPath ?? env.FERRY_ENV_FILE ?? '.env'
  let fromFile: Record<string, string> = {}
  if (existsSync(dotenvPath)) {
    try {
      fromFile = parseDotenv(readFileSync(dotenvPath))
    } catch (err) {
      throw new ConfigError(`cannot read the dotenv file ${dotenvPath}: ${(err as Error).message}`, { cause: err })
    }
  }
  // Only FERRY_ names take part; empty strings count as "not set" so `FERRY_X=` falls back to the default.
  const data: Record<string, string> = {}
  for (const [k, v] of [...Object.entries(fromFile), ...Object.entries(env)]) {
    if (k.startsWith('FERRY_') && typeof v === 'string' && v !== '') data[k] = v
  }
  let unknown: UnknownSetting[] = []
  if (opts.unknown) {
    const setIn = (vars: Record<string, string | undefined>) => Object.keys(vars).filter((k) => vars[k])
    const known = new Set([...Object.keys(schema.properties), ...opts.unknown.known])
    unknown = findUnknownSettings([{ label: FROM_ENVIRONMENT, names: setIn(env) }, { label: dotenvPath, names: setIn(fromFile) }], known, opts.unknown.help)
    for (const u of unknown) opts.unknown.report(u)
  }
  // env-schema mutates the schema it is given (additionalProperties); hand it a copy, without the
  // annotations that Ajv's strict mode would refuse as unknown keywords.
  const copy = structuredClone(schema) as unknown as { properties: Record<string, Record<string, unknown>> }
  for (const field of Object.values(copy.properties)) for (const k of SECRET_KEYWORDS) delete field[k]
  let config: T | undefined
  let errors: AjvLikeError[] = []
  try {
    config = envSchema({ schema: copy, data, env: false }) as T
  } catch (err) {
    const found = (err as { errors?: AjvLikeError[] }).errors
    if (!found) throw new ConfigError((err as Error).message, { cause: err })
    errors = found
  }
  // What a schema cannot say: a token the operator makes up must look random (secrets.ts).
  for (const [name, field] of Object.entries(fieldsOf(schema))) {
    if (!field.random || !(name in data) || errors.some((e) => settingOf(e) === name)) continue
    const problem = randomTokenProblem(data[name]!)
    if (problem) errors.push({ keyword: 'random', instancePath: `/${name}`, message: problem })
  }
  if (errors.length) throw new ConfigError(formatErrors(schema, errors, data, unknown))
  return config as T
}

type Field = TSchema & SecretAnnotations & { description?: string }

function fieldsOf(schema: TObject): Record<string, Field> {
  return schema.properties as Record<string, Field>
}

function settingOf(e: AjvLikeError): string {
  return e.instancePath ? e.instancePath.slice(1) : String(e.params?.missingProperty ?? '')
}

/** A value as an error message may show it: a secret not at all, a URL without its password. */
function shown(field: Field | undefined, value: string): string {
  if (isSecret(field)) return 'set; the value is secret and not shown'
  return `got ${JSON.stringify(value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@'))}`
}

interface AjvLikeError {
  keyword?: string
  instancePath: string
  message?: string
  params?: Record<string, unknown>
}

function formatErrors(schema: TObject, errors: AjvLikeError[], data: Record<string, string>, unknown: UnknownSetting[]): string {
  const lines = new Set<string>()
  for (const e of errors) {
    const name = settingOf(e)
    const field = fieldsOf(schema)[name]
    const given = name in data ? ` (${shown(field, data[name]!)})` : ' (not set)'
    const message = e.keyword === 'required' ? 'is required' : (e.message ?? 'is invalid')
    const hint = name in data ? '' : lookAlikeHint(name, unknown)
    lines.add([`${name}: ${message}${given}.`, field?.description, field?.random ? MAKE_A_TOKEN : '', hint].filter(Boolean).join(' '))
  }
  return `invalid configuration; fix these and start again:\n  ${[...lines].join('\n  ')}`
}

/** One row of the generated configuration reference. */
export interface ConfigDocRow {
  name: string
  type: string
  default: string
  description: string
}

/** Turns a schema into rows for `docs/configuration.md`, `.env.example` and `--help`. */
export function describeSchema(schema: TObject): ConfigDocRow[] {
  const required = new Set((schema.required as string[] | undefined) ?? [])
  return Object.entries(schema.properties as Record<string, Record<string, unknown>>).map(([name, s]) => ({
    name,
    type: `${isSecret(s) ? 'secret ' : ''}${describeType(s)}`,
    default: 'default' in s ? String(s.default) : required.has(name) ? '(required)' : '(unset)',
    description: String(s.description ?? ''),
  }))
}

function describeType(s: Record<string, unknown>): string {
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(' \\| ')
  if (Array.isArray(s.anyOf)) {
    return (s.anyOf as Record<string, unknown>[]).map((x) => ('const' in x ? JSON.stringify(x.const) : describeType(x))).join(' \\| ')
  }
  if ('const' in s) return JSON.stringify(s.const)
  const range = [
    s.minimum !== undefined ? `≥ ${String(s.minimum)}` : '',
    s.maximum !== undefined ? `≤ ${String(s.maximum)}` : '',
  ].filter(Boolean)
  return `${String(s.type ?? 'string')}${range.length ? ` (${range.join(', ')})` : ''}`
}
