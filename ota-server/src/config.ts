import { Type, type Static } from 'typebox'
import { loadEnv } from '../../common/src/config/env.js'
import type { UnknownCheck } from '../../common/src/config/unknown.js'

/**
 * `ferry ota-server` settings. This schema is the reference: `ferry ota-server --help` prints it and
 * the configuration docs are generated from it. Paths have no default because a wrong guess would
 * serve the wrong folder or the wrong identity.
 */
export const otaServerConfigSchema = Type.Object({
  FERRY_OTA_PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 8443, description: 'HTTPS port of the OTA server.' }),
  FERRY_OTA_HOST: Type.String({ default: '0.0.0.0', description: 'Address to listen on (0.0.0.0 for all IPv4, :: for all).' }),
  FERRY_OTA_DIR: Type.String({ minLength: 1, description: 'OTA folder written by "ferry ota publish" (images/, releases/, reports.jsonl).' }),
  FERRY_OTA_CERT: Type.String({ minLength: 1, description: 'Server certificate (PEM), e.g. <pki>/server.crt; its SANs must name the host devices connect to.' }),
  FERRY_OTA_KEY: Type.String({ minLength: 1, description: 'Server private key (PEM), e.g. <pki>/server.key.' }),
  FERRY_OTA_CA: Type.String({ minLength: 1, description: 'CA certificate that signed the device certificates (PEM), e.g. <pki>/ca.crt.' }),
  FERRY_OTA_CRL: Type.Optional(Type.String({ minLength: 1, description: 'Certificate revocation list (PEM), e.g. <pki>/crl.pem; re-read on change and on SIGHUP. Strongly recommended.' })),
  FERRY_OTA_PUB: Type.Optional(Type.String({ minLength: 1, description: 'Release public key(s) (PEM, several for key rotation). When set, envelopes that do not verify are never served.' })),
  FERRY_OTA_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 30, description: 'Manifest and report requests allowed per device per window.' }),
  FERRY_OTA_DOWNLOAD_RATE_LIMIT_MAX: Type.Integer({ minimum: 1, default: 600, description: 'Image (Range) requests allowed per device per window; a 1.9 MB image in 16 KiB ranges is ~120.' }),
  FERRY_OTA_RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 1000, default: 60000, description: 'Rate-limit window in milliseconds.' }),
  FERRY_OTA_MAX_DOWNLOADS: Type.Integer({ minimum: 1, default: 16, description: 'Concurrent image downloads before the server answers 503 with Retry-After.' }),
  FERRY_OTA_MAX_DOWNLOADS_PER_DEVICE: Type.Integer({ minimum: 1, default: 2, description: 'Concurrent image downloads one device (certificate CN) may hold; more are answered 429 with Retry-After, so one device cannot take every FERRY_OTA_MAX_DOWNLOADS slot. 2 leaves room for a device that reconnects before the server has noticed its previous connection is gone.' }),
  FERRY_OTA_RETRY_AFTER_S: Type.Integer({ minimum: 1, default: 30, description: 'Seconds a busy server asks devices to wait (Retry-After).' }),
  FERRY_API_TOKEN: Type.Optional(Type.String({ minLength: 16, secret: true, random: true, description: 'Bearer token for GET /ota/reports, /ota/rollouts and /metrics (besides the gateway client certificate), and the only credential that may halt, resume or advance a staged rollout (ferry ota rollout). At least 16 characters that look random, as for the gateway (e.g. openssl rand -hex 24). No default; unset means certificate only.' })),
})

export type OtaServerConfig = Static<typeof otaServerConfigSchema>

/**
 * Validates the environment (plus .env); throws ConfigError naming every bad variable. `unknown`:
 * report misspelt FERRY_ names (see LoadEnvOptions); `ferry ota-server` turns it on.
 */
export function loadOtaServerConfig(env: NodeJS.ProcessEnv = process.env, unknown?: UnknownCheck): OtaServerConfig {
  return loadEnv<OtaServerConfig>(otaServerConfigSchema, { env, unknown })
}
