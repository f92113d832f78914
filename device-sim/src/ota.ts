import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, existsSync, mkdirSync, rmSync, statSync, truncateSync } from 'node:fs'
import { once } from 'node:events'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request, type Dispatcher } from 'undici'
import type { Logger } from '../../common/src/logger.js'
import {
  rejectReasonOf,
  verifyEnvelope,
  verifyEnvelopeSignature,
  type KeyInput,
  type Manifest,
  type OtaState,
} from '../../ota-server/src/manifest/index.js'
import { backoffDelayMs } from './backoff.js'

/**
 * A progress report for `sensors/<id>/ota/status` (README.md#topics-and-payloads). Declared here
 * rather than taken from the report schema's Static type so the `state` union stays a plain string
 * union.
 */
export interface OtaReport {
  deployment: string
  state: OtaState
  version: string
  reason?: string
}

/** What the device runs; the OTA check sends it and the verifier enforces it. */
export interface RunningFirmware {
  version: string
  secureVersion: number
}

export interface OtaClientOptions {
  /** Origin of the OTA server, e.g. `https://localhost:8443`. */
  url: string
  /** The device's identity (its MQTT client certificate) and the CA that signed the server's. */
  tls: { ca: Buffer; cert: Buffer; key: Buffer }
  /** Release public keys compiled into the "firmware"; two during key rotation. */
  releaseKeys: KeyInput[]
  hw: string
  device: string
  /** Where partial downloads live between attempts (and restarts): `<workDir>/<device>-<sha256>.part`. */
  workDir: string
  log: Logger
  /** Progress reports (`sensors/<id>/ota/status`). */
  report: (r: OtaReport) => void | Promise<void>
  /** Largest image this device can hold; default 0x1E0000 (the ESP32 `min_spiffs` OTA slot). */
  maxImageSize?: number
  /** Download attempts before giving up, resuming in between; default 5. */
  downloadAttempts?: number
  /** Per-request timeout for headers and between body chunks; default 30 s. */
  timeoutMs?: number
  now?: () => number
  random?: () => number
}

export type OtaCheckResult =
  | { kind: 'up-to-date' }
  /** The server asked us to come back later (503 + Retry-After). */
  | { kind: 'busy'; retryAfterMs: number }
  /** The check itself failed (network, unexpected status); nothing was reported, try again later. */
  | { kind: 'error'; message: string }
  /** The envelope verified and the image matched size and sha256; ready to install. */
  | { kind: 'verified'; manifest: Manifest; resumedFrom: number }
  /** Refused or failed, and reported as `failed` with `reason`. */
  | { kind: 'failed'; reason: string; message: string; deployment: string; version: string }

const DEFAULT_MAX_IMAGE = 0x1e0000

/** Retry-After in ms from seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
function retryAfterMs(value: string | string[] | undefined, now: number): number | undefined {
  const header = Array.isArray(value) ? value[0] : value
  if (!header) return undefined
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

class DownloadFailure extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly retryable: boolean,
    readonly waitMs?: number,
  ) {
    super(message)
  }
}

/**
 * The device's side of OTA, in the ESP-IDF order (docs/firmware-notes.md#ota-order): ask
 * `GET /ota/latest`, verify the envelope (signature over the exact bytes first, then hw, expiry,
 * secure_version, newer version, size) with the same verifier the server and `ferry ota` use,
 * download the image (resuming with `Range` after an interruption), hash while writing, and accept
 * it only when size and sha256 match. Installing is the caller's business. Every request
 * authenticates with the device certificate.
 */
export class OtaClient {
  private readonly agent: Agent
  private readonly now: () => number

  constructor(private readonly opts: OtaClientOptions) {
    if (opts.releaseKeys.length === 0) throw new TypeError('OtaClient needs at least one release public key')
    this.now = opts.now ?? Date.now
    const timeoutMs = opts.timeoutMs ?? 30_000
    this.agent = new Agent({
      connect: { ca: opts.tls.ca, cert: opts.tls.cert, key: opts.tls.key, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
  }

  /** The partial download of an image, kept between attempts so a retry resumes where it stopped. */
  partFile(sha256: string): string {
    return join(this.opts.workDir, `${this.opts.device}-${sha256}.part`)
  }

  /** One full check: ask, verify, download, verify the image. Never throws for network or server trouble. */
  async check(running: RunningFirmware, signal?: AbortSignal): Promise<OtaCheckResult> {
    const log = this.opts.log
    const query = new URLSearchParams({ hw: this.opts.hw, version: running.version, secure_version: String(running.secureVersion) })
    let res: Dispatcher.ResponseData
    try {
      res = await request(new URL(`/ota/latest?${query}`, this.opts.url), { dispatcher: this.agent, signal })
    } catch (err) {
      log.warn({ err: { message: (err as Error).message, code: (err as { code?: unknown }).code }, url: this.opts.url }, 'OTA check failed; will try again later')
      return { kind: 'error', message: (err as Error).message }
    }
    if (res.statusCode === 204) {
      await res.body.dump()
      log.debug({ version: running.version }, 'firmware is up to date')
      return { kind: 'up-to-date' }
    }
    if (res.statusCode === 503 || res.statusCode === 429) {
      await res.body.dump()
      const wait = retryAfterMs(res.headers['retry-after'], this.now()) ?? 60_000
      log.info({ status: res.statusCode, retryAfterMs: wait }, 'OTA server busy; will ask again later')
      return { kind: 'busy', retryAfterMs: wait }
    }
    if (res.statusCode !== 200) {
      const text = (await res.body.text()).slice(0, 300)
      log.warn({ status: res.statusCode, body: text }, 'OTA server answered with an unexpected status; will try again later')
      return { kind: 'error', message: `GET /ota/latest answered ${res.statusCode}: ${text}` }
    }
    const body = Buffer.from(await res.body.arrayBuffer())

    let manifest: Manifest
    try {
      manifest = verifyEnvelope(body, this.opts.releaseKeys, {
        now: this.now(),
        hw: this.opts.hw,
        currentVersion: running.version,
        secureVersion: running.secureVersion,
        maxImageSize: this.opts.maxImageSize ?? DEFAULT_MAX_IMAGE,
      }).manifest
    } catch (err) {
      const reason = rejectReasonOf(err) ?? 'malformed_envelope'
      // Name the deployment only when the bytes carrying it were signed by a trusted key; an
      // unverified payload is never read, not even for a report.
      const signed = signedManifestFields(body, this.opts.releaseKeys)
      const failed = { kind: 'failed' as const, reason, message: (err as Error).message, deployment: signed?.deployment ?? 'unverified', version: signed?.version ?? running.version }
      log.error({ reason, err: { message: failed.message, code: (err as { code?: unknown }).code } }, 'refused the OTA envelope; nothing downloaded')
      await this.opts.report({ deployment: failed.deployment, state: 'failed', version: failed.version, reason })
      return failed
    }

    const { deployment, version } = manifest
    log.info({ deployment, from: running.version, to: version, size: manifest.image.size }, 'update offered and verified; downloading')
    await this.opts.report({ deployment, state: 'downloading', version })
    try {
      const resumedFrom = await this.download(manifest, signal)
      await this.opts.report({ deployment, state: 'verified', version })
      log.info({ deployment, version, resumedFrom }, 'image downloaded; size and sha256 match')
      return { kind: 'verified', manifest, resumedFrom }
    } catch (err) {
      const reason = err instanceof DownloadFailure ? err.reason : 'download'
      log.error({ deployment, version, reason, err: { message: (err as Error).message } }, 'OTA download failed')
      await this.opts.report({ deployment, state: 'failed', version, reason })
      return { kind: 'failed', reason, message: (err as Error).message, deployment, version }
    }
  }

  /** Downloads into the part file, resuming across attempts; returns the offset the first attempt resumed from. */
  private async download(manifest: Manifest, signal?: AbortSignal): Promise<number> {
    mkdirSync(this.opts.workDir, { recursive: true })
    const part = this.partFile(manifest.image.sha256)
    const attempts = this.opts.downloadAttempts ?? 5
    let resumedFrom: number | undefined
    for (let attempt = 0; ; attempt++) {
      const offset = existsSync(part) ? statSync(part).size : 0
      resumedFrom ??= offset
      try {
        await this.fetchFrom(manifest, part, offset, signal)
        break
      } catch (err) {
        if (signal?.aborted) throw err
        const failure = err instanceof DownloadFailure ? err : new DownloadFailure('download', (err as Error).message, true)
        if (!failure.retryable || attempt + 1 >= attempts) {
          if (!failure.retryable) rmSync(part, { force: true })
          throw failure
        }
        const wait = failure.waitMs ?? backoffDelayMs(attempt, 500, 30_000, (this.opts.random ?? Math.random)())
        this.opts.log.warn({ attempt: attempt + 1, of: attempts, waitMs: wait, err: { message: failure.message } }, 'image download interrupted; resuming')
        await sleep(wait, undefined, { signal })
      }
    }
    // Hash the whole file as it now stands: every byte that counts has passed through the hash.
    const hash = createHash('sha256')
    let size = 0
    for await (const chunk of createReadStream(part)) {
      hash.update(chunk as Buffer)
      size += (chunk as Buffer).length
    }
    rmSync(part, { force: true })
    if (size !== manifest.image.size) throw new DownloadFailure('size', `image is ${size} bytes, the manifest says ${manifest.image.size}`, false)
    const sha = hash.digest('hex')
    if (sha !== manifest.image.sha256) throw new DownloadFailure('sha256', `image sha256 ${sha} does not match the manifest's ${manifest.image.sha256}`, false)
    return resumedFrom ?? 0
  }

  /** One request for the rest of the image, appended to the part file. */
  private async fetchFrom(manifest: Manifest, part: string, offset: number, signal?: AbortSignal): Promise<void> {
    if (offset > manifest.image.size) {
      truncateSync(part, 0)
      offset = 0
    }
    if (offset === manifest.image.size) return
    const headers: Record<string, string> = {}
    if (offset > 0) {
      headers.range = `bytes=${offset}-`
      // Images are content-addressed (ETag = "<sha256>"): resume only into the same bytes.
      headers['if-range'] = `"${manifest.image.sha256}"`
    }
    const res = await request(new URL(manifest.image.path, this.opts.url), { dispatcher: this.agent, headers, signal })
    if (res.statusCode === 503 || res.statusCode === 429) {
      await res.body.dump()
      throw new DownloadFailure('busy', `image download answered ${res.statusCode}`, true, retryAfterMs(res.headers['retry-after'], this.now()))
    }
    if (res.statusCode === 416) {
      await res.body.dump()
      truncateSync(part, 0)
      throw new DownloadFailure('range', 'the server refused the resume range; starting over', true, 0)
    }
    let start: number
    if (res.statusCode === 206) {
      const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''))
      if (!contentRange || Number(contentRange[1]) !== offset || Number(contentRange[3]) !== manifest.image.size) {
        await res.body.dump()
        truncateSync(part, 0)
        throw new DownloadFailure('range', `unexpected Content-Range ${String(res.headers['content-range'])} for a resume at ${offset}`, true, 0)
      }
      start = offset
    } else if (res.statusCode === 200) {
      start = 0 // the server ignored the range (or the image changed): take it from the top
    } else {
      const text = (await res.body.text()).slice(0, 300)
      // 404: the release was withdrawn; 4xx will not get better by retrying.
      throw new DownloadFailure('download', `image download answered ${res.statusCode}: ${text}`, res.statusCode >= 500)
    }
    const out = createWriteStream(part, { flags: start === 0 ? 'w' : 'a', mode: 0o600 })
    let written = start
    try {
      for await (const chunk of res.body) {
        written += (chunk as Buffer).length
        if (written > manifest.image.size) throw new DownloadFailure('size', `image is larger than the manifest's ${manifest.image.size} bytes`, false)
        if (!out.write(chunk)) await once(out, 'drain')
      }
    } finally {
      out.end()
      await once(out, 'close')
    }
    if (written < manifest.image.size) throw new DownloadFailure('download', `the image stream ended at ${written} of ${manifest.image.size} bytes`, true)
  }

  /** Closes the HTTPS connections. */
  async close(): Promise<void> {
    await this.agent.close()
  }
}

/** deployment and version from an envelope whose signature verifies, else undefined. */
function signedManifestFields(body: Buffer, keys: KeyInput[]): { deployment: string; version: string } | undefined {
  try {
    const { payload } = verifyEnvelopeSignature(body, keys)
    const fields = JSON.parse(payload.toString('utf8')) as { deployment?: unknown; version?: unknown }
    if (typeof fields.deployment === 'string' && typeof fields.version === 'string' && /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/.test(fields.deployment)) {
      return { deployment: fields.deployment, version: fields.version.slice(0, 64) }
    }
  } catch {
    // not signed by a trusted key: say nothing about its contents
  }
  return undefined
}
