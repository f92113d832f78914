/** File sink settings: line protocol appended to a local file, rotated by size. */
import { Type, type Static } from 'typebox'

export const fileConfigSchema = Type.Object({
  FERRY_FILE_PATH: Type.String({ default: 'ferry-data/telemetry.lp', minLength: 1, description: 'File the file sink appends line protocol to (folders are created). Rotated copies are <path>.1 … <path>.<keep>.' }),
  FERRY_FILE_MAX_BYTES: Type.Integer({ default: 100_000_000, minimum: 1024, description: 'Rotate the file before it would grow past this many bytes.' }),
  FERRY_FILE_KEEP: Type.Integer({ default: 5, minimum: 0, maximum: 1000, description: 'Rotated files to keep (0 = keep only the current file; the oldest is deleted).' }),
  FERRY_FILE_BATCH_SIZE: Type.Integer({ default: 5000, minimum: 1, description: 'Most readings per write (one fsync each).' }),
})

/** Validated file sink settings (see `fileConfigSchema`). */
export type FileConfig = Static<typeof fileConfigSchema>
