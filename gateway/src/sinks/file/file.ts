/**
 * File sink: the same line protocol as InfluxDB, appended to a local file and fsynced once per
 * batch, so a row counts as delivered only once it is on disk. It is the default sink when no cloud
 * sink is configured: nothing is lost, and `influx -import` or Telegraf's `tail` input can load the
 * file later (replayed lines carry their original timestamps, so InfluxDB overwrites duplicates).
 *
 * Rotation by size: before a batch would push the file past `FERRY_FILE_MAX_BYTES`, `<path>` becomes
 * `<path>.1` (older copies shift up), keeping `FERRY_FILE_KEEP` copies. A batch is never split
 * across files.
 */
import { mkdirSync } from 'node:fs'
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ConfigError } from '../../../../common/src/errors.js'
import { resolveDeps, type SinkDeps } from '../deps.js'
import { encodeBatch } from '../line-protocol.js'
import type { Sink, Stored, WriteResult } from '../types.js'
import type { FileConfig } from './config.js'

/** The file sink. Build it with `createFileSink`. */
export class FileSink implements Sink {
  readonly name = 'file'
  readonly maxBatch: number
  private fh: FileHandle | undefined
  private size = 0
  private closed = false
  private readonly deps: Required<SinkDeps>

  constructor(private readonly cfg: FileConfig, deps: SinkDeps = {}) {
    this.maxBatch = cfg.FERRY_FILE_BATCH_SIZE
    this.deps = resolveDeps(deps, this.name)
    try {
      mkdirSync(dirname(cfg.FERRY_FILE_PATH), { recursive: true })
    } catch (err) {
      throw new ConfigError(`cannot create the folder for FERRY_FILE_PATH=${cfg.FERRY_FILE_PATH}: ${(err as Error).message}; choose a writable path`, { cause: err })
    }
  }

  /**
   * Appends the batch and fsyncs. Rows that cannot be encoded are rejected; a disk error (ENOSPC,
   * EIO) throws and the drainer retries, so nothing is counted as written unless it reached disk.
   */
  async write(batch: readonly Stored[], signal: AbortSignal): Promise<WriteResult> {
    signal.throwIfAborted()
    if (this.closed) throw new Error('file sink is closed')
    const { ok, bad } = encodeBatch(batch)
    const result: WriteResult = { accepted: [], retryable: [], rejected: bad }
    if (ok.length === 0) return result
    const data = Buffer.from(ok.map((x) => x.line).join('\n') + '\n')
    await this.handle() // learns the current size
    if (this.size > 0 && this.size + data.length > this.cfg.FERRY_FILE_MAX_BYTES) await this.rotate()
    const cur = await this.handle()
    try {
      await cur.write(data)
      await cur.sync()
    } catch (err) {
      // A short write may have left part of the batch; the retry appends it again, which InfluxDB
      // treats as an overwrite when the file is imported. Reopen to learn the true size.
      await this.reset()
      throw err
    }
    this.size += data.length
    result.accepted = ok.map((x) => x.row.id)
    this.deps.log.debug({ rows: ok.length, bytes: data.length, size: this.size }, 'file batch written')
    return result
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.reset()
  }

  private async handle(): Promise<FileHandle> {
    if (!this.fh) {
      this.fh = await open(this.cfg.FERRY_FILE_PATH, 'a', 0o640)
      this.size = (await this.fh.stat()).size
    }
    return this.fh
  }

  private async reset(): Promise<void> {
    const fh = this.fh
    this.fh = undefined
    await fh?.close().catch(() => undefined)
  }

  private async rotate(): Promise<void> {
    await this.reset()
    const p = this.cfg.FERRY_FILE_PATH
    const keep = this.cfg.FERRY_FILE_KEEP
    if (keep === 0) {
      await rm(p, { force: true })
    } else {
      await rm(`${p}.${keep}`, { force: true })
      for (let i = keep - 1; i >= 1; i--) {
        if (await exists(`${p}.${i}`)) await rename(`${p}.${i}`, `${p}.${i + 1}`)
      }
      await rename(p, `${p}.1`)
    }
    this.deps.log.info({ path: p, keep }, 'file sink rotated')
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p)
    return true
  } catch {
    return false
  }
}

/** Builds the file sink (creates the folder; throws ConfigError when it cannot). */
export function createFileSink(config: FileConfig, deps: SinkDeps = {}): FileSink {
  return new FileSink(config, deps)
}
