import { existsSync } from 'node:fs'
import { parseCli } from '../../common/src/cli-args.js'
import { UsageError } from '../../common/src/errors.js'
import { printable, printableJson } from '../../common/src/printable.js'
import { damageReported, META_INGEST_PAUSED, openBuffer, queryStatus, type Runway } from './buffer/index.js'
import { META_OTA_ROLLOUTS, type OtaRolloutsSnapshot } from './ota/link.js'

const HELP = `usage: ferry status [--db <path>] [--json]

Opens the buffer database read-only (safe while the gateway runs) and prints: readings buffered and
their bytes, the runway (how long the buffer absorbs the current ingest rate before it must drop, or
push back), whether ingest is paused and why, per sink the backlog, oldest unsent age, totals, last
error and replay progress (rate, drain ETA), sinks retired since when (no longer in FERRY_SINKS: they hold no readings), readings dropped because the buffer was full and readings expired by FERRY_BUFFER_MAX_AGE (total and per device), dead letters (per source, what they hold against their bound, and per device those not kept: over-share or evicted), the
OTA server's staged rollouts as the gateway last read them (with FERRY_OTA_URL; a HALTED one with its reason), and the
last recorded error (e.g. a corrupt database that was moved aside), and damage the gateway's background
check found in the database (docs/integrity.md).
--db defaults to $FERRY_DB or ./ferry-buffer.db.`

function age(ms: number | null): string {
  if (ms === null) return '-'
  const s = Math.round(ms / 1000)
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${(s / 3600).toFixed(1)}h`
}

/** "3 (dev1: 2, dev2: 1)", or "0". */
function counted(total: number, by: Record<string, number>): string {
  return `${total}${total ? ' (' + Object.entries(by).map(([d, n]) => `${printable(d)}: ${n}`).join(', ') + ')' : ''}`
}

function runwayLine(r: Runway | null): string {
  if (!r) return '-'
  const then = r.onFull === 'backpressure' ? 'ingest pauses (backpressure)' : 'the oldest undelivered readings are dropped'
  return `${r.seconds === null ? '-' : age(r.seconds * 1000)} until ${then} (${r.ingestPerS} readings/s; room for ${r.freeRows} readings, ${r.freeBytes} bytes)`
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
    // Written by the gateway when ingest pauses or resumes (ingest/pipeline.ts).
    const paused = (s.meta[META_INGEST_PAUSED] ?? null) as { reason: string; code: string; since: number; error: string } | null
    // Written by the gateway's OTA link (ota/link.ts) each time the OTA server's answer changes.
    const ota = s.meta[META_OTA_ROLLOUTS] as OtaRolloutsSnapshot | undefined
    // Left beside the database by the gateway's background check (docs/integrity.md).
    const damage = damageReported(path) ?? null
    if (values.json) {
      process.stdout.write(printableJson({ ...s, damage, ingestPaused: paused, sinks: s.sinks.map((k) => ({ ...k, progress: progress(k.name) ?? null })), ota: ota ?? null }, 2) + '\n')
      return 0
    }
    // Errors are remote text (a sink's answer, an OS message): every one goes through printable(), so
    // it can neither drive the terminal nor start a status line of its own (common/src/printable.ts).
    const out: string[] = []
    out.push(`buffered:     ${s.buffered.rows} readings, ${s.buffered.bytes} bytes`)
    out.push(`runway:       ${runwayLine(s.runway)}`)
    if (paused) out.push(`ingest:       paused (${printable(paused.reason)}, ${printable(paused.code)}) for ${age(Date.now() - paused.since)}: ${printable(paused.error)}`)
    for (const k of s.sinks) {
      const p = progress(k.name)
      const replay = k.rows > 0 ? `${p ? `, replay ${p.ratePerS}/s` : ''}, drain ETA ${k.drainEtaS === null ? '-' : age(k.drainEtaS * 1000)}` : ''
      out.push(`sink ${printable(k.name).padEnd(10)} backlog ${k.rows}, oldest unsent ${age(k.oldestAgeMs)}, sent ${k.sentTotal}, rejected ${k.rejectedTotal}${replay}`)
      if (k.lastErrorCode) out.push(`  last error (${printable(k.lastErrorCode)}) ${age(k.lastErrorAt === null ? null : Date.now() - k.lastErrorAt)} ago: ${printable(String(k.lastError))}`)
    }
    for (const k of s.retiredSinks) {
      out.push(`sink ${printable(k.name).padEnd(10)} retired since ${new Date(k.retiredAt).toISOString()} (${age(Date.now() - k.retiredAt)} ago; not in FERRY_SINKS), cursor ${k.cursor}, sent ${k.sentTotal}, rejected ${k.rejectedTotal}`)
    }
    out.push(`dropped:      ${counted(s.dropped.total, s.dropped.byDevice)}`)
    out.push(`expired:      ${counted(s.expired.total, s.expired.byDevice)}`)
    const dl = s.deadLetters
    const bound = dl.limits ? ` of ${dl.limits.maxRows} rows, ${dl.limits.maxBytes} bytes (per device ${dl.limits.deviceMaxRows} rows, ${dl.limits.deviceMaxBytes} bytes)` : ''
    out.push(`dead letters: ${counted(dl.total, dl.bySource)}; held ${dl.held.rows} rows, ${dl.held.bytes} bytes${bound}`)
    const why = Object.entries(dl.discarded.byReason).map(([r, n]) => `${r} ${n}`).join(', ')
    out.push(`  not kept:   ${counted(dl.discarded.total, dl.discarded.byDevice)}${why ? `: ${why}` : ''}`)
    for (const r of ota?.rollouts ?? []) {
      const stage = r.stage ? ` at stage ${r.stage.number} of ${r.stage.of} (${printable(r.stage.description)})` : ''
      out.push(`ota rollout:  ${printable(r.deployment)} ${r.status === 'halted' ? 'HALTED' : r.status}${stage} (as of ${age(Date.now() - ota!.at)} ago, ${printable(ota!.url)}): ${printable(r.why)}`)
    }
    if (damage) out.push(`DAMAGED:      the background check found damage at ${new Date(damage.at).toISOString()} (${printable(damage.error)}); once the sinks have caught up, restart the gateway: the next start moves the file aside (FERRY_ERR_BUFFER_DAMAGED)`)
    const recovery = s.meta.last_corrupt_recovery as { movedTo: string; error: string; at: number } | undefined
    if (recovery) out.push(`last error:   corrupt database moved to ${printable(recovery.movedTo)} at ${new Date(recovery.at).toISOString()} (${printable(recovery.error)})`)
    process.stdout.write(out.join('\n') + '\n')
    return 0
  } finally {
    db.close()
  }
}
