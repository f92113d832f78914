import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { Compile } from 'typebox/compile'
import { otaReportRecordSchema, type OtaReportRecord } from '../manifest/report.js'

const checkRecord = Compile(otaReportRecordSchema)

export interface ReportFilter {
  device?: string
  deployment?: string
  /** Newest N; default 100. */
  limit?: number
}

/**
 * Device progress reports, one JSON object per line (`OtaReportRecord`), appended synchronously so a
 * 204 means the line is in the file. JSON lines because the gateway records the MQTT path in the same
 * shape and an operator can read both with `jq`. Lines that do not parse are skipped on read, never fatal.
 */
export class ReportStore {
  private readonly listeners: Array<(r: OtaReportRecord) => void> = []

  constructor(private readonly file: string) {}

  /**
   * Appends one report (the line is in the file when this returns), then tells the listeners: the
   * rollout engine acts on reports (rollout/engine.ts). A listener that throws does not undo the append.
   */
  append(record: OtaReportRecord): void {
    mkdirSync(dirname(this.file), { recursive: true })
    appendFileSync(this.file, JSON.stringify(record) + '\n', { mode: 0o640 })
    for (const l of this.listeners) l(record)
  }

  /** Calls `listener` with every report appended from now on. */
  onAppend(listener: (r: OtaReportRecord) => void): void {
    this.listeners.push(listener)
  }

  /** Matching reports, oldest first, at most `limit` (the newest ones). */
  list(filter: ReportFilter = {}): OtaReportRecord[] {
    const out: OtaReportRecord[] = []
    this.each((r) => {
      if (filter.device && r.device !== filter.device) return
      if (filter.deployment && r.deployment !== filter.deployment) return
      out.push(r)
    })
    return out.slice(-(filter.limit ?? 100))
  }

  /** Every readable report in file order (the rollout engine rebuilds its view from them at start). */
  each(fn: (r: OtaReportRecord) => void): void {
    if (!existsSync(this.file)) return
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      if (!line) continue
      let r: unknown
      try {
        r = JSON.parse(line)
      } catch {
        continue
      }
      if (checkRecord.Check(r)) fn(r)
    }
  }
}
