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
  constructor(private readonly file: string) {}

  append(record: OtaReportRecord): void {
    mkdirSync(dirname(this.file), { recursive: true })
    appendFileSync(this.file, JSON.stringify(record) + '\n', { mode: 0o640 })
  }

  /** Matching reports, oldest first, at most `limit` (the newest ones). */
  list(filter: ReportFilter = {}): OtaReportRecord[] {
    if (!existsSync(this.file)) return []
    const out: OtaReportRecord[] = []
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      if (!line) continue
      let r: unknown
      try {
        r = JSON.parse(line)
      } catch {
        continue
      }
      if (!checkRecord.Check(r)) continue
      if (filter.device && r.device !== filter.device) continue
      if (filter.deployment && r.deployment !== filter.deployment) continue
      out.push(r)
    }
    return out.slice(-(filter.limit ?? 100))
  }
}
