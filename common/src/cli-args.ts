import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError } from './errors.js'

type Options = NonNullable<ParseArgsConfig['options']>

/**
 * Node's own `parseArgs`, strict, with `--help` built in. Unknown flags become a UsageError that
 * points at `--help`, so every sub-command answers bad input the same way.
 */
export function parseCli<O extends Options>(argv: string[], options: O, help: string, allowPositionals = true) {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true })
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${help}`)
  }
  return { ...parsed, help: Boolean((parsed.values as Record<string, unknown>).help), helpText: help }
}

/** Parses "30d", "12h", "15m", "10s" or plain seconds into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?$/.exec(text.trim())
  if (!m) throw new UsageError(`cannot read duration "${text}"; use e.g. 90s, 15m, 12h, 30d`)
  const unit = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3, y: 365 * 86400e3 }[m[2] ?? 's']!
  return Math.round(Number(m[1]) * unit)
}
