// File sink: the shared contract (append-only, so no idempotent replay), rotation by size, fsync
// per batch, and a disk error that must not count rows as written.
import t from 'tap'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadEnv } from '../../../../common/src/config/env.js'
import { tempDir } from '../../../../test/helpers/tmp.js'
import { sinkContract, makeRows, type Delivered } from '../sink-contract.js'
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
}, { idempotentReplay: false })

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
