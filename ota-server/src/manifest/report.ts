/**
 * The OTA progress report a device sends, by `POST /ota/report` or on MQTT `sensors/<id>/ota/status`
 * (README.md#topics-and-payloads). One schema for both paths so the OTA server and the gateway
 * record the same thing; `OtaReportRecord` is the stored form (one JSON line per report).
 */
import { Type, type Static } from 'typebox'
import { DEPLOYMENT_PATTERN } from './envelope.js'
import { SEMVER_MAX_LENGTH, SEMVER_PATTERN } from './semver.js'

/** Progress states, in the order a successful update passes through them (then `failed` / `rolled-back`). */
export const OTA_STATES = ['downloading', 'verified', 'installed', 'failed', 'rolled-back'] as const
export type OtaState = (typeof OTA_STATES)[number]

/** Reports larger than this are refused (413 over HTTP); a real one is under 300 bytes. */
export const MAX_REPORT_BYTES = 4096

/** The body a device sends. */
export const otaReportSchema = Type.Object(
  {
    deployment: Type.String({ pattern: DEPLOYMENT_PATTERN, description: 'The manifest\'s deployment id.' }),
    state: Type.Union(OTA_STATES.map((s) => Type.Literal(s)), { description: 'Where the update stands.' }),
    version: Type.String({ pattern: SEMVER_PATTERN, maxLength: SEMVER_MAX_LENGTH, description: 'The version being installed.' }),
    reason: Type.Optional(Type.String({ maxLength: 512, description: 'Why it failed or rolled back, e.g. a verifier reason such as bad_signature.' })),
  },
  { additionalProperties: false },
)
export type OtaReport = Static<typeof otaReportSchema>

/** One stored report: the body plus who sent it (from the certificate CN), when, and by which path. */
export const otaReportRecordSchema = Type.Object(
  {
    ts: Type.Integer({ description: 'Receive time, epoch ms.' }),
    device: Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' }),
    source: Type.Union([Type.Literal('http'), Type.Literal('mqtt')]),
    deployment: otaReportSchema.properties.deployment,
    state: otaReportSchema.properties.state,
    version: otaReportSchema.properties.version,
    reason: Type.Optional(otaReportSchema.properties.reason),
  },
  { additionalProperties: false },
)
export type OtaReportRecord = Static<typeof otaReportRecordSchema>
