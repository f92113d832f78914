import { createHash } from 'node:crypto'
import { createReadStream, statSync, type ReadStream, type Stats } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { IMAGE_NAME_RE } from '../manifest/envelope.js'
import type { OtaLayout } from './layout.js'

/** An image ready to send: its size and its bytes (or a stream over them) for the requested range. */
export interface OpenImage {
  sha256: string
  size: number
  /** The requested range: from memory for images small enough to keep there, else streamed from the file. */
  body(range?: { start: number; end: number }): Buffer | ReadStream
  close(): Promise<void>
}

/** Images up to this size are kept in memory once verified (an ESP32 app slot is at most a few MB). */
const MEMORY_IMAGE_MAX = 8 * 1024 * 1024
/** ... up to this much in all, least recently used dropped first. */
const MEMORY_TOTAL_MAX = 32 * 1024 * 1024

export class ImageNotFoundError extends Error {}
/** The bytes on disk no longer hash to the image's name: someone changed the file after publishing. */
export class ImageCorruptError extends Error {}

/**
 * Images by content hash. The name is checked against `^[0-9a-f]{64}\.bin$` before a path is built,
 * and the content is hashed once per (inode, size, mtime) so a file altered after publishing is never
 * served: the device would refuse it anyway, but it should not have to download it first.
 */
export class ImageStore {
  private verified = new Map<string, string>()
  /** Verified image bytes by name, in least-recently-used order, with the stamp they were read under. */
  private memory = new Map<string, { stamp: string; data: Buffer }>()
  private memoryBytes = 0

  constructor(private readonly layout: OtaLayout) {}

  async open(name: string): Promise<OpenImage> {
    if (!IMAGE_NAME_RE.test(name)) throw new ImageNotFoundError(`no image ${name}`)
    const path = this.layout.image(name)
    const sha256 = name.slice(0, 64)
    const kept = this.memory.get(name)
    if (kept) {
      // The hot path of every download: one stat on this thread instead of open, fstat and close on
      // libuv's thread pool (three round trips, each costing more than the stat itself).
      const st = statSync(path, { throwIfNoEntry: false })
      if (st === undefined || !st.isFile()) throw new ImageNotFoundError(`no image ${name}`)
      if (stampOf(st) === kept.stamp) return this.fromMemory(name, sha256, kept)
      // Changed on disk: checked again below, through a descriptor.
    }
    let fh
    try {
      fh = await open(path, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ImageNotFoundError(`no image ${name}`)
      throw err
    }
    try {
      const st = await fh.stat()
      if (!st.isFile()) throw new ImageNotFoundError(`no image ${name}`)
      const stamp = stampOf(st)
      let cached = this.memory.get(name)
      if (cached && cached.stamp !== stamp) {
        this.forget(name)
        cached = undefined
      }
      if (this.verified.get(name) !== stamp) {
        const hash = createHash('sha256')
        const keep: Buffer[] | undefined = st.size <= MEMORY_IMAGE_MAX ? [] : undefined
        for await (const chunk of fh.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 })) {
          hash.update(chunk as Buffer)
          keep?.push(chunk as Buffer)
        }
        if (hash.digest('hex') !== sha256) throw new ImageCorruptError(`image ${name} on disk does not match its sha256; publish the release again`)
        this.verified.set(name, stamp)
        if (keep) cached = this.remember(name, stamp, Buffer.concat(keep))
      }
      const size = st.size
      if (cached) {
        await fh.close()
        return this.fromMemory(name, sha256, cached)
      }
      // Large images stream through the same descriptor, so a rename over the path mid-download
      // changes nothing; 1 MiB reads keep the per-chunk overhead down.
      return {
        sha256,
        size,
        body: (range) => createReadStream('', { fd: fh, start: range?.start ?? 0, end: range?.end ?? Math.max(0, size - 1), autoClose: false, highWaterMark: 1 << 20 }),
        close: () => fh.close(),
      }
    } catch (err) {
      await fh.close()
      throw err
    }
  }

  private fromMemory(name: string, sha256: string, entry: { stamp: string; data: Buffer }): OpenImage {
    // Most recently used goes last.
    this.memory.delete(name)
    this.memory.set(name, entry)
    const data = entry.data
    return { sha256, size: data.length, body: (range) => (range ? data.subarray(range.start, range.end + 1) : data), close: async () => {} }
  }

  private remember(name: string, stamp: string, data: Buffer): { stamp: string; data: Buffer } {
    const entry = { stamp, data }
    this.memory.set(name, entry)
    this.memoryBytes += data.length
    for (const [old] of this.memory) {
      if (this.memoryBytes <= MEMORY_TOTAL_MAX) break
      this.forget(old)
    }
    return entry
  }

  private forget(name: string): void {
    const e = this.memory.get(name)
    if (!e) return
    this.memoryBytes -= e.data.length
    this.memory.delete(name)
  }

  /** Size of an image, or undefined when absent. */
  async size(name: string): Promise<number | undefined> {
    if (!IMAGE_NAME_RE.test(name)) return undefined
    try {
      return (await stat(this.layout.image(name))).size
    } catch {
      return undefined
    }
  }
}

/** What identifies one version of a file: a rename over it changes the inode, a rewrite the mtime. */
function stampOf(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}`
}
