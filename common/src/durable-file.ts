import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * Replaces `file` with `text` so that a crash or power cut leaves the old content or the new one,
 * never half of one: temporary file, fsync, rename, fsync of the folder. Creates the folder.
 */
export function writeFileDurably(file: string, text: string, mode: number): void {
  mkdirSync(dirname(file), { recursive: true })
  const tmp = `${file}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, file)
  try {
    const dfd = openSync(dirname(file), 'r')
    try {
      fsyncSync(dfd)
    } finally {
      closeSync(dfd)
    }
  } catch {
    // Some file systems refuse fsync on a folder; the rename is still atomic.
  }
}
