/**
 * Ferry's error types. Every error has a stable `code` (`FERRY_ERR_*`); callers match on `code`,
 * not on `instanceof`, because two copies of a module can coexist (the undici rule).
 * Messages say what happened, where, and what to do next. `docs/errors.md` lists every code, these
 * and the HTTP answer codes of the gateway API and the OTA server; `common/src/errors.test.ts` fails
 * when a code used anywhere in the product source is missing there (or a documented one is unused).
 *
 * A bare `Error` is thrown only for a programming bug (a broken invariant), with a comment saying so.
 */
export const ErrorCodes = {
  FERRY_ERR_CONFIG: 'A configuration value is missing or invalid; the message names the variable.',
  FERRY_ERR_USAGE: 'The command line is wrong; run the command with --help.',
  FERRY_ERR_DEVICE_ID: 'A device id does not match ^[a-z0-9][a-z0-9_-]{0,62}$ or is reserved.',
  FERRY_ERR_PKI: 'A PKI operation failed (missing CA, existing CA without --force, unknown certificate).',
  FERRY_ERR_BROKER: 'The mosquitto broker could not be started or did not become ready.',
  FERRY_ERR_BUFFER_CORRUPT: 'The buffer database was corrupt; it was moved aside and a fresh one started.',
  FERRY_ERR_BUFFER_FULL_DISK: 'The disk is full; acknowledgements stop until writes succeed again.',
  FERRY_ERR_BUFFER_BACKPRESSURE: 'The buffer is full of undelivered readings (FERRY_BUFFER_ON_FULL=backpressure); ingest pauses until the drainers free room.',
  FERRY_ERR_BUFFER_DAMAGED: 'The background check found damage in the running buffer database; the next start checks it and moves it aside.',
  FERRY_ERR_BUFFER_LOCKED: 'Another gateway is running on the same buffer database (FERRY_DB); this one refuses to start.',
  FERRY_ERR_SINK_AUTH: 'A sink refused the credentials (401/403, or ThingSpeak -1 for a channel read); that sink stopped, data stays buffered.',
  FERRY_ERR_SINK_ENDPOINT: 'A sink found no write endpoint at its URL (404 naming no database); that sink stopped, data stays buffered.',
  FERRY_ERR_SINK: 'A sink failed in a way that will be retried.',
  FERRY_ERR_MANIFEST_SIGNATURE: 'An OTA envelope signature did not verify against the release key.',
  FERRY_ERR_MANIFEST: 'An OTA manifest is malformed, expired, for other hardware, or a downgrade.',
  FERRY_ERR_RELEASE: 'A published OTA release cannot be served: its file name and manifest disagree, or its image is missing.',
  FERRY_ERR_INFLUXD: 'The private influxd (demo, tests) did not start, or refused a statement.',
  FERRY_ERR_MQTT_SHARE_REFUSED: 'The broker does not support the shared subscriptions that FERRY_MQTT_SHARE_GROUP needs.',
  FERRY_ERR_MQTT_SUBSCRIBE_DENIED: 'The broker refused the gateway\'s subscriptions: its ACL does not give this certificate the gateway\'s rights.',
  FERRY_ERR_MQTT_INCOMPATIBLE: 'The installed MQTT.js lacks the hook that holds PUBACKs until commit; the gateway refuses to start.',
} as const

export type ErrorCode = keyof typeof ErrorCodes

/** Base class of every error Ferry throws on purpose. */
export class FerryError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** A configuration value is wrong; raised before anything connects or opens the buffer. */
export class ConfigError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FERRY_ERR_CONFIG', message, options)
  }
}

/** Bad command-line usage. */
export class UsageError extends FerryError {
  constructor(message: string) {
    super('FERRY_ERR_USAGE', message)
  }
}

/** A PKI operation could not be carried out. */
export class PkiError extends FerryError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FERRY_ERR_PKI', message, options)
  }
}

/** An OTA envelope failed signature verification. */
export class ManifestSignatureError extends FerryError {
  constructor(message: string) {
    super('FERRY_ERR_MANIFEST_SIGNATURE', message)
  }
}

/** True when `err` is a Ferry error with the given code. */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code
}
