import { existsSync } from 'node:fs'
import { parseCli } from '../../common/src/cli-args.js'
import { UsageError } from '../../common/src/errors.js'
import { openBuffer, queryStatus } from './buffer/index.js'

const HELP = `usage: ferry status [--db <path>] [--json]

Opens the buffer database read-only (safe while the gateway runs) and prints: readings buffered and
their bytes, per sink the backlog, oldest unsent age, totals, last error and replay progress (rows left,
rate, ETA), readings dropped because the buffer was full (total and per device), dead letters, and the
last recorded error (e.g. a corrupt database that was moved aside).
--db defaults to $FERRY_DB or ./ferry-buffer.db.`

function age(ms: number | null): string {
  if (ms === null) return '-'
  const s = Math.round(ms / 1000)
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`
}

export async function run(argv: string[]): Promise<number> {
  const { values, help } = parseCli(argv, { db: { type: 'string' }, json: { type: 'boolean' } }, HELP, false)
  if (help) {
    process.stdout.write(HELP + '\n')
    return 0
  }
  const path = values.db ?? process.env.FERRY_DB ?? 'ferry-buffer.db'
  if (!existsSync(path)) throw new UsageError(`no buffer database at ${path}; pass --db or set FERRY_DB`)
  const { db } = openBuffer(path, { readonly: true })
  try {
    const s = queryStatus(db)
    const progress = (name: string) => s.meta[`progress:${name}`] as { rowsLeft: number; ratePerS: number; etaS: number | null; at: number } | undefined
    if (values.json) {
      process.stdout.write(JSON.stringify({ ...s, sinks: s.sinks.map((k) => ({ ...k, progress: progress(k.name) ?? null })) }, null, 2) + '\n')
      return 0
    }
    const out: string[] = []
    out.push(`buffered:     ${s.buffered.rows} readings, ${s.buffered.bytes} bytes`)
    for (const k of s.sinks) {
      const p = progress(k.name)
      const replay = p && k.rows > 0 ? `, replay ${p.ratePerS}/s, ETA ${p.etaS === null ? '-' : age(p.etaS * 1000)}` : ''
      out.push(`sink ${k.name.padEnd(10)} backlog ${k.rows}, oldest unsent ${age(k.oldestAgeMs)}, sent ${k.sentTotal}, rejected ${k.rejectedTotal}${replay}`)
      if (k.lastErrorCode) out.push(`  last error (${k.lastErrorCode}) ${age(k.lastErrorAt === null ? null : Date.now() - k.lastErrorAt)} ago: ${k.lastError}`)
    }
    out.push(`dropped:      ${s.dropped.total}${s.dropped.total ? ' (' + Object.entries(s.dropped.byDevice).map(([d, n]) => `${d}: ${n}`).join(', ') + ')' : ''}`)
    out.push(`dead letters: ${s.deadLetters.total}${s.deadLetters.total ? ' (' + Object.entries(s.deadLetters.bySource).map(([d, n]) => `${d}: ${n}`).join(', ') + ')' : ''}`)
    const recovery = s.meta.last_corrupt_recovery as { movedTo: string; error: string; at: number } | undefined
    if (recovery) out.push(`last error:   corrupt database moved to ${recovery.movedTo} at ${new Date(recovery.at).toISOString()} (${recovery.error})`)
    process.stdout.write(out.join('\n') + '\n')
    return 0
  } finally {
    db.close()
  }
}
