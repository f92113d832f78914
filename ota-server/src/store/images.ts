import { createHash } from 'node:crypto'
import { createReadStream, type ReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { IMAGE_NAME_RE } from '../manifest/envelope.js'
import type { OtaLayout } from './layout.js'

/** An image ready to stream: its size and a stream over the requested byte range. */
export interface OpenImage {
  sha256: string
  size: number
  stream(range?: { start: number; end: number }): ReadStream
  close(): Promise<void>
}

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

  constructor(private readonly layout: OtaLayout) {}

  async open(name: string): Promise<OpenImage> {
    if (!IMAGE_NAME_RE.test(name)) throw new ImageNotFoundError(`no image ${name}`)
    const path = this.layout.image(name)
    const sha256 = name.slice(0, 64)
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
      const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`
      if (this.verified.get(name) !== stamp) {
        const hash = createHash('sha256')
        for await (const chunk of fh.createReadStream({ start: 0, autoClose: false })) hash.update(chunk as Buffer)
        if (hash.digest('hex') !== sha256) throw new ImageCorruptError(`image ${name} on disk does not match its sha256; publish the release again`)
        this.verified.set(name, stamp)
      }
      const size = st.size
      // Streams read through the same descriptor, so a rename over the path mid-download changes nothing.
      return {
        sha256,
        size,
        stream: (range) => createReadStream('', { fd: fh, start: range?.start ?? 0, end: range?.end ?? Math.max(0, size - 1), autoClose: false }),
        close: () => fh.close(),
      }
    } catch (err) {
      await fh.close()
      throw err
    }
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
