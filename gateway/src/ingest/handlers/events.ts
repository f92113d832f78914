import { Compile } from 'typebox/compile'
import type { DeadIn, EventIn } from '../../buffer/index.js'
import { OTA_STATES, otaReportSchema } from '../../../../ota-server/src/manifest/report.js'

type Kind = EventIn['kind']

/** The OTA server's report schema: a report is valid on MQTT exactly when it is valid over HTTP. */
const checkOtaReport = Compile(otaReportSchema)

/** What each field must be, for a dead-letter reason that a person can act on. */
const OTA_FIELD_RULES: Record<string, string> = {
  state: `must be one of ${OTA_STATES.join('|')}`,
  version: 'must be a semantic version such as 1.4.0',
  deployment: "must be the manifest's deployment id (letters, digits, . _ + -, at most 128)",
  reason: 'must be a string of at most 512 characters',
}

/** Why `report` is not a valid OTA report, or undefined when it is one. */
function otaReportProblem(report: Record<string, unknown>): string | undefined {
  if (checkOtaReport.Check(report)) return undefined
  const first = [...checkOtaReport.Errors(report)][0]
  if (!first) return 'not a valid ota/status report'
  // Errors on the object itself: a missing required field or an unknown one.
  if (first.instancePath === '') return first.message
  const field = first.instancePath.slice(1)
  const rule = OTA_FIELD_RULES[field]
  return rule ? `"${field}" ${rule}` : `unknown field "${field}"; a report has only ${Object.keys(OTA_FIELD_RULES).join(', ')}`
}

/**
 * Status (LWT `online`/`offline`), `led/state` (`{"cmd","brightness"}`) and `ota/status`
 * (`{"deployment","state","version","reason"?}`, checked against the OTA server's `otaReportSchema`).
 * Valid ones become events; anything else a dead letter.
 */
export function handleEvent(topic: string, device: string, kind: Kind, payload: Buffer, receivedAt: number, maxBytes: number): EventIn | DeadIn {
  const dead = (reason: string): DeadIn => ({ type: 'dead', topic, device, reason, payload, receivedAt })
  if (payload.length > maxBytes) return dead(`payload is ${payload.length} bytes, more than FERRY_INGEST_MAX_PAYLOAD_BYTES=${maxBytes}`)
  const text = payload.toString('utf8')
  const event = (): EventIn => ({ type: 'event', topic, device, kind, payload, receivedAt })
  if (kind === 'status') {
    // An empty retained payload clears the retained status; nothing to record.
    return text === 'online' || text === 'offline' ? event() : dead('status must be "online" or "offline"')
  }
  let fields: Record<string, unknown>
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return dead(`${kind} must be a JSON object`)
    fields = parsed as Record<string, unknown>
  } catch (err) {
    return dead(`not JSON: ${(err as Error).message}`)
  }
  if (kind === 'led_state') {
    if (typeof fields.brightness !== 'number' || !Number.isInteger(fields.brightness) || fields.brightness < 0 || fields.brightness > 100) {
      return dead('"brightness" must be an integer 0..100')
    }
    if (fields.cmd !== undefined && (typeof fields.cmd !== 'string' || fields.cmd.length > 64)) return dead('"cmd" must be a string of at most 64 characters')
    return event()
  }
  const problem = otaReportProblem(fields)
  return problem === undefined ? event() : dead(problem)
}
