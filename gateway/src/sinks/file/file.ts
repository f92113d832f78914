/**
 * File sink: the same line protocol as InfluxDB, appended to a local file and fsynced once per
 * batch, so a row counts as delivered only once it is on disk. It is the default sink when no cloud
 * sink is configured: nothing is lost, and `influx -import` or Telegraf's `tail` input can load the
 * file later.
 *
 * Rotation by size: before a batch would push the file past `FERRY_FILE_MAX_BYTES`, `<path>` becomes
 * `<path>.1` (older copies shift up), keeping `FERRY_FILE_KEEP` copies. A batch is never split
 * across files.
 *
 * Exactly once across crashes. The drainer appends a batch, then moves the sink's cursor in SQLite;
 * a crash between the two makes it offer the batch again. So when the sink opens the file (at start,
 * after a rotation, after the file was moved or deleted) it:
 * 1. repairs the end: an unterminated last line (a write cut short by a kill or a power cut) and any
 *    lines from the first NUL byte on (blocks a power cut left unwritten) are truncated away. Nothing
 *    there was counted as delivered: a batch is accepted only after its fsync, and an fsync covers
 *    everything written before it;
 * 2. fsyncs the file and its folder, so lines a killed gateway wrote but did not fsync are on disk
 *    before they are trusted;
 * 3. keeps the last lines in memory (at least `FERRY_FILE_BATCH_SIZE` × 512 bytes of the file's end,
 *    1 MiB to 64 MiB, never the whole file). Rows offered next whose exact line is among them (the
 *    line holds device, boot, seq, the values and the point time, which ingest makes strictly
 *    increasing per device) were written before the crash: they are accepted without writing them
 *    again. Only a prefix of the offered rows is skipped (the rows after the first one that is not
 *    in the file cannot be in it either). After each write the batch's own lines take the place of
 *    the tail, so a batch offered twice in one run is not written twice either.
 * A failed write (ENOSPC, EIO) is truncated back to the size before it (again before the next write
 * if that fails too), so a retry does not append a second copy of a partial batch.
 *
 * Limits: the replay check covers the file at FERRY_FILE_PATH only. If the operator moves or
 * rotates the file away between a crash and the restart, the replayed batch goes into the new file
 * and also stays in the moved one (each file on its own holds every line once). A batch larger than
 * the tail read (a FERRY_FILE_BATCH_SIZE lowered a lot across a crash) may leave duplicates beyond
 * it. While running, a moved or deleted file is noticed before the next batch and a new file is
 * started at FERRY_FILE_PATH. A power cut is survived as far as the disk honours fsync.
 */
import { mkdirSync } from 'node:fs'
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import { ConfigError, FerryError } from '../../../../common/src/errors.js'
import { resolveDeps, type SinkDeps } from '../deps.js'
import { encodeBatch } from '../line-protocol.js'
import type { BufferedReading, Sink, WriteResult } from '../types.js'
import type { FileConfig } from './config.js'

/**
 * More than the longest line this sink writes: `telemetry,device=` and a 63-character device id,
 * five integer fields and a 19-digit timestamp stay under 256 bytes.
 */
const LINE_BYTES_BOUND = 512
const MIN_TAIL_BYTES = 1 << 20
const MAX_TAIL_BYTES = 64 << 20
const NL = 0x0a

/** The file sink. Build it with `createFileSink`. */
export class FileSink implements Sink {
  readonly name = 'file'
  readonly maxBatch: number
  private fh: FileHandle | undefined
  /** Identity of the open file, to notice it being moved or deleted. */
  private fileIdentity: { dev: number; ino: number } | undefined
  /** Bytes in the open file, all whole lines. */
  private size = 0
  /**
   * Lines at the end of the file that a replay may offer again: the tail read when the file was
   * opened, then the last batch written. Rows whose line is here are in the file already.
   */
  private replay: Set<string> | undefined
  /** Set when a failed write could not be truncated away: the size to cut back to before writing. */
  private dirtyFrom: number | undefined
  private closed = false
  private readonly tailBytes: number
  private readonly deps: Required<SinkDeps>

  constructor(private readonly cfg: FileConfig, deps: SinkDeps = {}) {
    this.maxBatch = cfg.FERRY_FILE_BATCH_SIZE
    this.tailBytes = Math.min(MAX_TAIL_BYTES, Math.max(MIN_TAIL_BYTES, cfg.FERRY_FILE_BATCH_SIZE * LINE_BYTES_BOUND))
    this.deps = resolveDeps(deps, this.name)
    try {
      mkdirSync(dirname(cfg.FERRY_FILE_PATH), { recursive: true })
    } catch (err) {
      throw new ConfigError(`cannot create the folder for FERRY_FILE_PATH=${cfg.FERRY_FILE_PATH}: ${(err as Error).message}; choose a writable path`, { cause: err })
    }
  }

  /** Opens the file before the first write: repairs a torn end and reads what it already holds. */
  async resume(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted()
    if (this.closed) return
    await this.handle()
  }

  /**
   * Appends the batch and fsyncs. Rows that cannot be encoded are rejected; rows the file already
   * holds from before a crash are accepted without writing them again; a disk error (ENOSPC, EIO)
   * throws and the drainer retries, so nothing is counted as written unless it reached disk.
   */
  async write(batch: readonly BufferedReading[], signal: AbortSignal): Promise<WriteResult> {
    signal.throwIfAborted()
    // Invariant (a programming bug if broken): the drainer closes a sink only after its last write.
    if (this.closed) throw new Error('file sink is closed')
    const { ok, bad } = encodeBatch(batch)
    const result: WriteResult = { accepted: [], retryable: [], rejected: bad }
    if (ok.length === 0) return result
    let file = await this.handle()
    let held = 0
    if (this.replay) while (held < ok.length && this.replay.has(ok[held]!.line)) held++
    const fresh = held === 0 ? ok : ok.slice(held)
    let bytes = 0
    if (fresh.length > 0) {
      const data = Buffer.from(fresh.map((x) => x.line).join('\n') + '\n')
      if (this.size > 0 && this.size + data.length > this.cfg.FERRY_FILE_MAX_BYTES) {
        await this.rotate()
        file = await this.handle()
      }
      const before = this.size
      try {
        await writeAll(file, data)
        await file.sync()
      } catch (err) {
        await this.undo(file, before)
        throw err
      }
      this.size += data.length
      // The region a replay can cover is now this batch: re-sent, it is recognised and skipped.
      this.replay = new Set(ok.map((x) => x.line))
      bytes = data.length
    }
    if (held > 0) this.deps.log.info({ rows: held, path: this.cfg.FERRY_FILE_PATH }, 'file already holds these readings (written before a crash); not writing them again')
    result.accepted = ok.map((x) => x.id)
    this.deps.log.debug({ rows: fresh.length, skipped: held, bytes, size: this.size }, 'file batch written')
    return result
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.reset()
  }

  /** The open file; (re)opens it when there is none or the path no longer names it. */
  private async handle(): Promise<FileHandle> {
    if (this.fh) {
      if (await this.stillAtPath()) {
        if (this.dirtyFrom !== undefined) {
          await this.fh.truncate(this.dirtyFrom)
          await this.fh.sync()
          this.size = this.dirtyFrom
          this.dirtyFrom = undefined
        }
        return this.fh
      }
      this.deps.log.warn({ path: this.cfg.FERRY_FILE_PATH }, 'the file was moved or deleted; starting a new one')
      await this.reset()
    }
    const path = this.cfg.FERRY_FILE_PATH
    const fh = await open(path, 'a+', 0o640)
    try {
      const stats = await fh.stat()
      const { size, lines } = await this.repairTail(fh, stats.size)
      // Lines a killed gateway wrote may still sit in the page cache only: make them durable before
      // counting them as delivered, and the file's name too (it may have just been created).
      await fh.sync()
      await syncDir(dirname(path))
      this.fileIdentity = { dev: stats.dev, ino: stats.ino }
      this.size = size
      this.replay = lines.length > 0 ? new Set(lines) : undefined
      this.fh = fh
      return fh
    } catch (err) {
      await fh.close().catch(() => undefined)
      throw err
    }
  }

  /**
   * Reads the file's last `tailBytes`, truncates a torn end (an unterminated last line; lines from
   * the first NUL byte on) and returns the new size and the whole lines read.
   */
  private async repairTail(fh: FileHandle, size: number): Promise<{ size: number; lines: string[] }> {
    if (size === 0) return { size, lines: [] }
    const start = Math.max(0, size - this.tailBytes)
    const buf = Buffer.alloc(size - start)
    for (let off = 0; off < buf.length;) {
      const { bytesRead } = await fh.read(buf, off, buf.length - off, start + off)
      if (bytesRead === 0) break
      off += bytesRead
    }
    const path = this.cfg.FERRY_FILE_PATH
    let keep = buf.lastIndexOf(NL) + 1 // end of the last whole line, relative to `start`
    const fragment = buf.subarray(keep)
    if ((fragment.length >= LINE_BYTES_BOUND && !fragment.includes(0)) || (keep === 0 && start > 0)) {
      throw new FerryError('FERRY_ERR_SINK', `${path} does not end in line protocol (${fragment.length} bytes after the last newline); move it away so the file sink can start a new file`)
    }
    const from = start > 0 ? buf.indexOf(NL) + 1 : 0 // the first line read may be partial
    const nul = buf.indexOf(0, from)
    if (nul !== -1 && nul < keep) keep = Math.max(from, buf.lastIndexOf(NL, nul) + 1)
    const newSize = start + keep
    if (newSize < size) {
      await fh.truncate(newSize)
      this.deps.log.warn({ path, removedBytes: size - newSize }, 'file ended in a torn line (a write cut short by a crash); truncated it, the readings are written again')
    }
    const lines = keep > from ? buf.toString('utf8', from, keep - 1).split('\n') : []
    return { size: newSize, lines }
  }

  /** Cuts a failed write back to `size`; if that fails too, it is done before the next write. */
  private async undo(fh: FileHandle, size: number): Promise<void> {
    try {
      await fh.truncate(size)
      await fh.sync()
      this.dirtyFrom = undefined
    } catch {
      this.dirtyFrom = size
    }
  }

  private async stillAtPath(): Promise<boolean> {
    try {
      const stats = await stat(this.cfg.FERRY_FILE_PATH)
      return stats.dev === this.fileIdentity?.dev && stats.ino === this.fileIdentity.ino
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw err
    }
  }

  private async reset(): Promise<void> {
    const fh = this.fh
    this.fh = undefined
    this.fileIdentity = undefined
    this.replay = undefined
    this.dirtyFrom = undefined
    await fh?.close().catch(() => undefined)
  }

  private async rotate(): Promise<void> {
    await this.reset()
    const path = this.cfg.FERRY_FILE_PATH
    const keep = this.cfg.FERRY_FILE_KEEP
    if (keep === 0) {
      await rm(path, { force: true })
    } else {
      await rm(`${path}.${keep}`, { force: true })
      for (let i = keep - 1; i >= 1; i--) {
        if (await exists(`${path}.${i}`)) await rename(`${path}.${i}`, `${path}.${i + 1}`)
      }
      await rename(path, `${path}.1`)
    }
    this.deps.log.info({ path, keep }, 'file sink rotated')
  }
}

/** `FileHandle.write` may write less than asked (a full disk); loops until all of `data` is written. */
async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  for (let off = 0; off < data.length;) {
    const { bytesWritten } = await fh.write(data, off, data.length - off)
    if (bytesWritten === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' })
    off += bytesWritten
  }
}

/** fsyncs a folder so a file created or renamed in it survives a power cut (where the OS allows). */
async function syncDir(dir: string): Promise<void> {
  let dirHandle: FileHandle | undefined
  try {
    dirHandle = await open(dir, 'r')
    await dirHandle.sync()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EACCES') throw err
  } finally {
    await dirHandle?.close().catch(() => undefined)
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
