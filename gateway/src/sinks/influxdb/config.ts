/**
 * InfluxDB sink settings. One TypeBox schema is the validation, the `--help` text and the generated
 * configuration reference. Version-specific requirements (v2 needs org, bucket and token, …) are
 * checked by `checkInfluxConfig` when the sink is actually enabled, so a gateway that only uses the
 * file sink never has to set them.
 */
import { Type, type Static } from 'typebox'
import { ConfigError } from '../../../../common/src/errors.js'

export const influxConfigSchema = Type.Object({
  FERRY_INFLUX_URL: Type.String({
    default: 'http://127.0.0.1:8086',
    pattern: '^https?://',
    description: 'Base URL of the InfluxDB server (http:// or https://), without the /write path. A path prefix is kept (reverse proxies).',
  }),
  FERRY_INFLUX_VERSION: Type.Union([Type.Literal(1), Type.Literal(2), Type.Literal(3)], {
    default: 1,
    description: 'InfluxDB API to write to: 1 = POST /write (1.x), 2 = POST /api/v2/write (2.x, Cloud), 3 = POST /api/v3/write_lp (3 Core/Enterprise).',
  }),
  FERRY_INFLUX_DB: Type.String({
    default: 'ferry',
    minLength: 1,
    description: 'Database to write to (versions 1 and 3). Version 3 creates it on first write; version 1 needs CREATE DATABASE first.',
  }),
  FERRY_INFLUX_RP: Type.Optional(Type.String({ minLength: 1, description: 'Retention policy for version 1 (default: the database\'s default policy).' })),
  FERRY_INFLUX_ORG: Type.Optional(Type.String({ minLength: 1, description: 'Organisation name or id (version 2; required there).' })),
  FERRY_INFLUX_BUCKET: Type.Optional(Type.String({ minLength: 1, description: 'Bucket name or id (version 2; required there).' })),
  FERRY_INFLUX_TOKEN: Type.Optional(Type.String({
    minLength: 1,
    secret: true,
    description: 'API token: sent as "Token <t>" (versions 1 and 2) or "Bearer <t>" (version 3). Secret; no default.',
  })),
  FERRY_INFLUX_USER: Type.Optional(Type.String({ minLength: 1, description: 'Username for version 1 when auth is enabled (sent with HTTP Basic auth, never in the URL).' })),
  FERRY_INFLUX_PASSWORD: Type.Optional(Type.String({ minLength: 1, secret: true, description: 'Password for FERRY_INFLUX_USER. Secret; no default.' })),
  FERRY_INFLUX_CA: Type.Optional(Type.String({ minLength: 1, description: 'PEM file with the CA certificate(s) to trust for an https:// URL signed by a private CA.' })),
  FERRY_INFLUX_MEASUREMENT: Type.String({ default: 'telemetry', minLength: 1, description: 'Measurement name for readings.' }),
  FERRY_INFLUX_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100, description: 'Connect, response-header and body-gap timeout per request, in milliseconds.' }),
  FERRY_INFLUX_KEEPALIVE_MS: Type.Integer({ default: 30_000, minimum: 0, description: 'How long an idle keep-alive connection is kept open, in milliseconds.' }),
  FERRY_INFLUX_BATCH_SIZE: Type.Integer({ default: 5000, minimum: 1, description: 'Most readings per drain batch (InfluxDB recommends 5,000-10,000 points per write).' }),
  FERRY_INFLUX_MAX_BODY_BYTES: Type.Integer({
    default: 5_000_000,
    minimum: 1024,
    description: 'Most uncompressed line-protocol bytes per request; larger batches are split. Keep it below the server limit (1.x 25 MB, 3 Core 10 MiB).',
  }),
  FERRY_INFLUX_GZIP: Type.Boolean({ default: true, description: 'Compress request bodies with gzip (Content-Encoding: gzip).' }),
  FERRY_INFLUX_CONCURRENCY: Type.Integer({ default: 2, minimum: 1, maximum: 8, description: 'Batches in flight at once while draining a backlog: the next batch is read, encoded and compressed while InfluxDB writes the previous one. Safe because a re-sent point overwrites itself.' }),
  FERRY_INFLUX_GZIP_LEVEL: Type.Integer({ default: 1, minimum: 1, maximum: 9, description: 'gzip level. Line protocol is repetitive: level 1 already shrinks it ~8x at a fraction of the CPU of level 6 (bench/README.md, drain).' }),
  FERRY_INFLUX_BISECT_AFTER_500S: Type.Integer({
    default: 5,
    minimum: 0,
    description: 'After this many identical HTTP 500 answers in a row for the same readings, find the readings the server refuses (by splitting the batch) and dead-letter them with its message, as for a 400. Older InfluxDB 2.x answer a partial write on /write with 500; a 500 that every part of the batch gets is a server fault and stays retried. 0 = retry a 500 forever.',
  }),
  FERRY_INFLUX_ACCEPT_PARTIAL: Type.Boolean({ default: true, description: 'Version 3 only: let the server keep the valid lines of a batch with bad ones (accept_partial).' }),
})

/** Validated InfluxDB settings (see `influxConfigSchema`). */
export type InfluxConfig = Static<typeof influxConfigSchema>

/**
 * Checks what the schema cannot express per version. Throws ConfigError naming the variables.
 * Never touches the network (Telegraf's Init rule).
 */
export function checkInfluxConfig(c: InfluxConfig): void {
  const missing: string[] = []
  if (c.FERRY_INFLUX_VERSION === 2) {
    if (!c.FERRY_INFLUX_ORG) missing.push('FERRY_INFLUX_ORG')
    if (!c.FERRY_INFLUX_BUCKET) missing.push('FERRY_INFLUX_BUCKET')
    if (!c.FERRY_INFLUX_TOKEN) missing.push('FERRY_INFLUX_TOKEN')
  }
  if (missing.length) {
    throw new ConfigError(`InfluxDB version 2 needs ${missing.join(', ')}; set them (the token needs write access to the bucket).`)
  }
  if (Boolean(c.FERRY_INFLUX_USER) !== Boolean(c.FERRY_INFLUX_PASSWORD)) {
    throw new ConfigError('FERRY_INFLUX_USER and FERRY_INFLUX_PASSWORD go together; set both or neither.')
  }
}
