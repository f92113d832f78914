// File sink: the shared contract (a replayed batch is recognised, so replay is idempotent),
// rotation by size, fsync per batch, a disk error that must not count rows as written, and exactly
// once across crashes: a replay after a crash, a torn last line, a file moved away.
import t from 'tap'
import { appendFileSync, existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { loadEnv } from '../../../../common/src/config/env.js'
import { tempDir } from '../../../../test/helpers/tmp.js'
import { sinkContract, makeRows, CONTRACT_START_US, type Delivered } from '../../../../test/sink-contract.js'
import { toLine } from '../line-protocol.js'
import { fileConfigSchema, type FileConfig } from './config.js'
import { createFileSink } from './file.js'

const signal = () => new AbortController().signal
const cfg = (env: Record<string, string>): FileConfig => loadEnv<FileConfig>(fileConfigSchema, { env, dotenvPath: '/nonexistent' })

/** Parses the lines this sink writes (our own format, no general line-protocol parser needed). */
function parse(text: string): Delivered[] {
  return text.split('\n').filter(Boolean).map((line) => {
    const m = /^telemetry,device=(\S+) (\S+) (\d+)$/.exec(line)
    if (!m) throw new Error(`unexpected line ${line}`)
    const f = Object.fromEntries((m[2] as string).split(',').map((kv) => kv.split('=')).map(([k, v]) => [k, Number((v as string).slice(0, -1))]))
    return { device: m[1] as string, pot: f.pot as number, switch: f.switch as number, led: f.led ?? null, timeMs: Number(BigInt(m[3] as string) / 1_000_000n) }
  })
}

sinkContract(t, async (t) => {
  const path = join(tempDir(t), 'out', 'telemetry.lp')
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => sink.close())
  return { sink, delivered: async () => (existsSync(path) ? parse(readFileSync(path, 'utf8')) : []) }
})

t.test('writes exactly the InfluxDB line protocol, one line per reading', async (t) => {
  const path = join(tempDir(t), 'telemetry.lp')
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => sink.close())
  const rows = makeRows(3)
  await sink.write(rows, signal())
  t.equal(readFileSync(path, 'utf8'), rows.map((r) => toLine(r)).join('\n') + '\n')
})

t.test('appends to an existing file after a restart', async (t) => {
  const path = join(tempDir(t), 'telemetry.lp')
  const a = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  await a.write(makeRows(2), signal())
  await a.close()
  const b = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => b.close())
  await b.write(makeRows(2, { firstId: 3, startUs: Date.UTC(2026, 0, 2) * 1000 }), signal())
  t.equal(readFileSync(path, 'utf8').split('\n').filter(Boolean).length, 4)
})

t.test('rotates by size and keeps FERRY_FILE_KEEP copies; no batch is split across files', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'telemetry.lp')
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: path, FERRY_FILE_MAX_BYTES: '2048', FERRY_FILE_KEEP: '2' }))
  t.teardown(() => sink.close())
  const all = []
  for (let i = 0; i < 12; i++) {
    const rows = makeRows(10, { firstId: 1 + 10 * i, startUs: Date.UTC(2026, 0, 1) * 1000 + i * 600e6 })
    all.push(...rows)
    t.same((await sink.write(rows, signal())).accepted, rows.map((r) => r.id))
  }
  t.same(readdirSync(dir).sort(), ['telemetry.lp', 'telemetry.lp.1', 'telemetry.lp.2'])
  for (const f of readdirSync(dir)) {
    const text = readFileSync(join(dir, f), 'utf8')
    t.ok(Buffer.byteLength(text) <= 2048, `${f} is ${Buffer.byteLength(text)} bytes`)
    t.equal(text.split('\n').filter(Boolean).length % 10, 0, `${f} holds whole batches`)
  }
  const kept = ['telemetry.lp.2', 'telemetry.lp.1', 'telemetry.lp'].flatMap((f) => parse(readFileSync(join(dir, f), 'utf8')))
  const tail = all.slice(all.length - kept.length)
  t.same(kept.map((d) => d.pot), tail.map((r) => r.pot), 'the newest readings, in order, across the rotated files')
})

t.test('a write error throws and counts nothing as written', async (t) => {
  // The path is a folder, so opening it for append fails for real (also as root, unlike file modes).
  const dir = tempDir(t)
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: dir }))
  t.teardown(() => sink.close())
  await t.rejects(sink.write(makeRows(2), signal()), { code: 'EISDIR' })
})

t.test('an unencodable row is rejected, the others written', async (t) => {
  const path = join(tempDir(t), 'telemetry.lp')
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => sink.close())
  const rows = makeRows(3)
  rows[1] = { ...(rows[1] as (typeof rows)[number]), pot: Number.NaN }
  const r = await sink.write(rows, signal())
  t.same(r.accepted, [1, 3])
  t.match(r.rejected, [{ id: 2, reason: /pot must be an integer/ }])
  t.equal(readFileSync(path, 'utf8').split('\n').filter(Boolean).length, 2)
})

const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean)
const linesOf = (rows: readonly Parameters<typeof toLine>[0][]) => rows.map((r) => toLine(r))

t.test('crash between the write and the cursor commit: a new sink over the same file does not write the batch again', async (t) => {
  const path = join(tempDir(t), 'telemetry.lp')
  const before = makeRows(4, { startUs: Date.UTC(2025, 11, 31) * 1000 })
  const a = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => a.close())
  await a.write(before, signal()) // committed before the crash
  const batch = makeRows(10, { firstId: 5 })
  t.same((await a.write(batch, signal())).accepted, batch.map((r) => r.id))
  // "Crash": `a` is never closed, the cursor did not move, a new process offers the same batch again,
  // plus readings that arrived meanwhile.
  const b = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => b.close())
  await b.resume(signal())
  const more = makeRows(3, { firstId: 15, startUs: CONTRACT_START_US + 10 * 60_000_000, devices: ['dev2', 'dev1'] })
  t.same((await b.write(batch, signal())).accepted, batch.map((r) => r.id), 'the replayed batch is accepted without writing it')
  t.same(lines(path), linesOf([...before, ...batch]), 'no duplicates')
  t.same((await b.write(more, signal())).accepted, more.map((r) => r.id))
  t.same(lines(path), linesOf([...before, ...batch, ...more]), 'new readings are appended after it')
})

t.test('a replay that extends past what was written: the written prefix is skipped, the rest appended', async (t) => {
  const path = join(tempDir(t), 'telemetry.lp')
  const rows = makeRows(12)
  writeFileSync(path, linesOf(rows.slice(0, 7)).join('\n') + '\n')
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => sink.close())
  t.same((await sink.write(rows, signal())).accepted, rows.map((r) => r.id))
  t.same(lines(path), linesOf(rows))
})

t.test('a torn last line (a write cut short) is truncated, then written whole', async (t) => {
  const path = join(tempDir(t), 'telemetry.lp')
  const rows = makeRows(8)
  const all = linesOf(rows)
  writeFileSync(path, all.slice(0, 5).join('\n') + '\n' + (all[5] as string).slice(0, 23))
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => sink.close())
  await sink.resume(signal())
  t.equal(readFileSync(path, 'utf8'), all.slice(0, 5).join('\n') + '\n', 'repaired on open, before any write')
  t.same((await sink.write(rows.slice(3), signal())).accepted, rows.slice(3).map((r) => r.id))
  t.equal(readFileSync(path, 'utf8'), all.join('\n') + '\n', 'every line whole and once')
})

t.test('NUL blocks a power cut left at the end are truncated from the first NUL line on', async (t) => {
  const path = join(tempDir(t), 'telemetry.lp')
  const rows = makeRows(6)
  const all = linesOf(rows)
  writeFileSync(path, all.slice(0, 2).join('\n') + '\n' + '\0'.repeat(4096) + '\n' + (all[3] as string) + '\n')
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => sink.close())
  t.same((await sink.write(rows, signal())).accepted, rows.map((r) => r.id))
  t.equal(readFileSync(path, 'utf8'), all.join('\n') + '\n')
})

t.test('a file whose end is not line protocol is refused, not truncated', async (t) => {
  const path = join(tempDir(t), 'telemetry.lp')
  writeFileSync(path, 'x'.repeat(4096))
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => sink.close())
  await t.rejects(sink.write(makeRows(1), signal()), /does not end in line protocol/)
  t.equal(statSync(path).size, 4096, 'left as it was')
})

t.test('a large file: only its tail is read, and a replay at its end is still recognised', async (t) => {
  const path = join(tempDir(t), 'telemetry.lp')
  // ~2.4 MiB of older lines, more than the 1 MiB tail this batch size reads.
  const old = makeRows(30_000, { devices: ['old'], startUs: Date.UTC(2025, 0, 1) * 1000, spacingMs: 1000 })
  writeFileSync(path, linesOf(old).join('\n') + '\n')
  t.ok(statSync(path).size > 2 * 1024 * 1024)
  const batch = makeRows(10, { firstId: 30_001 })
  appendFileSync(path, linesOf(batch).join('\n') + '\n')
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: path, FERRY_FILE_BATCH_SIZE: '100' }))
  t.teardown(() => sink.close())
  const proto = await fileHandleProto()
  const read = proto.read
  let bytesRead = 0
  proto.read = async function (this: FileHandle, ...args: unknown[]) {
    const r = await (read as (...a: unknown[]) => Promise<{ bytesRead: number }>).apply(this, args)
    bytesRead += r.bytesRead
    return r
  } as typeof read
  t.teardown(() => {
    proto.read = read
  })
  t.same((await sink.write(batch, signal())).accepted, batch.map((r) => r.id))
  t.equal(lines(path).length, 30_010, 'nothing appended twice')
  t.ok(bytesRead > 0 && bytesRead <= 1024 * 1024, `read ${bytesRead} bytes of ${statSync(path).size}`)
})

/** The FileHandle prototype, to make its methods fail the way a sick disk does. */
async function fileHandleProto(): Promise<FileHandle> {
  const fh = await open(import.meta.filename, 'r')
  await fh.close()
  return Object.getPrototypeOf(fh) as FileHandle
}

t.test('a failed fsync is cut back, so the retry does not leave a second copy', async (t) => {
  const path = join(tempDir(t), 'telemetry.lp')
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => sink.close())
  const a = makeRows(3)
  const b = makeRows(4, { firstId: 4, startUs: CONTRACT_START_US + 3 * 60_000_000 })
  await sink.write(a, signal())
  const proto = await fileHandleProto()
  const { sync, truncate } = proto
  let failSync = 1
  let failTruncate = 1
  proto.sync = async function (this: FileHandle) {
    if (failSync-- > 0) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })
    return sync.call(this)
  }
  proto.truncate = async function (this: FileHandle, len?: number) {
    if (failTruncate-- > 0) throw Object.assign(new Error('EIO: i/o error, ftruncate'), { code: 'EIO' })
    return truncate.call(this, len)
  }
  t.teardown(() => {
    Object.assign(proto, { sync, truncate })
  })
  await t.rejects(sink.write(b, signal()), { code: 'EIO' })
  t.same(lines(path), linesOf([...a, ...b]), 'the failed batch is still there (the cut failed too)')
  t.same((await sink.write(b, signal())).accepted, b.map((r) => r.id), 'the retry succeeds')
  t.same(lines(path), linesOf([...a, ...b]), 'cut back before the retry: every line once')
  failSync = 1
  const c = makeRows(2, { firstId: 8, startUs: CONTRACT_START_US + 7 * 60_000_000 })
  await t.rejects(sink.write(c, signal()), { code: 'EIO' })
  t.same(lines(path), linesOf([...a, ...b]), 'a failed fsync alone is cut back at once')
  t.same((await sink.write(c, signal())).accepted, c.map((r) => r.id))
  t.same(lines(path), linesOf([...a, ...b, ...c]))
})

t.test('a file moved away while running: the next batch starts a new file at the path', async (t) => {
  const path = join(tempDir(t), 'telemetry.lp')
  const sink = createFileSink(cfg({ FERRY_FILE_PATH: path }))
  t.teardown(() => sink.close())
  const a = makeRows(3)
  const b = makeRows(3, { firstId: 4, startUs: CONTRACT_START_US + 3 * 60_000_000 })
  await sink.write(a, signal())
  renameSync(path, `${path}.moved`)
  await sink.write(b, signal())
  t.same(lines(`${path}.moved`), linesOf(a))
  t.same(lines(path), linesOf(b), 'not written into the moved file')
})
