// The file sink as a real process: a gateway draining a backlog into the file is SIGKILLed right
// after the file grew (the sink wrote a batch, the cursor commit in SQLite may not have happened
// yet), again and again. Every published reading must end up in the file exactly once, in order,
// with no torn line left behind.
import t from 'tap'
import Database from 'better-sqlite3'
import { existsSync, mkdirSync, readFileSync, statSync, watch } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { startTestBroker } from '../helpers/mosquitto.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings, spawnFerry, type FerryProcess } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'

function dbGet<T>(path: string, sql: string): T {
  const d = new Database(path, { readonly: true })
  try {
    return d.prepare(sql).get() as T
  } finally {
    d.close()
  }
}

const sizeOf = (p: string) => (existsSync(p) ? statSync(p).size : 0)

/** Lines ending in a newline (a torn last line, if any, is not counted). */
function completeLines(p: string): string[] {
  if (!existsSync(p)) return []
  const parts = readFileSync(p, 'utf8').split('\n')
  parts.pop()
  return parts
}

/**
 * SIGKILLs `gw` from inside the watcher callback the moment `file` grows past `before` bytes: the
 * sink has just written a batch, and its fsync and the cursor commit are likely still to come.
 * Resolves once the process is gone (killed, or exited on its own).
 */
async function killWhenFileGrows(gw: FerryProcess, file: string, before: number): Promise<void> {
  const watcher = watch(dirname(file), (_event, name) => {
    if (name === basename(file) && sizeOf(file) > before) gw.child.kill('SIGKILL')
  })
  try {
    await gw.exited
  } finally {
    watcher.close()
  }
}

t.test('file sink: SIGKILLs right after batches are written leave every reading in the file exactly once', async (t) => {
  const devices = ['dev1', 'dev2', 'dev3']
  const perDevice = 250
  const total = devices.length * perDevice
  const broker = await startTestBroker(t, { devices })
  const dir = tempDir(t)
  const file = join(dir, 'out', 'telemetry.lp')
  mkdirSync(dirname(file))
  const base = gatewayEnv(broker, dir, { FERRY_DRAIN_RETRY_MIN_MS: '50', FERRY_DRAIN_RETRY_MAX_MS: '200' })

  // A backlog: readings buffered while no sink is configured.
  let gw = spawnFerry(t, ['gateway'], base)
  await gw.waitFor(/connected to the broker/)
  const clients = await Promise.all(devices.map((d) => deviceClient(t, broker, d)))
  await Promise.all(clients.map((c, i) => publishReadings(c, devices[i]!, 1, perDevice, { window: 20 })))
  await waitUntil(() => dbGet<{ n: number }>(base.FERRY_DB!, 'SELECT count(*) AS n FROM readings').n === total, `${total} readings buffered`, 60_000)
  gw.child.kill('SIGTERM')
  t.equal((await gw.exited).code, 0)

  // Drain it into the file in small batches, killing the gateway each time right after the file grew.
  const batch = 20
  const env = { ...base, FERRY_SINKS: 'file', FERRY_FILE_PATH: file, FERRY_FILE_BATCH_SIZE: String(batch) }
  const delivered = () =>
    dbGet<{ n: number }>(base.FERRY_DB!, "SELECT count(*) AS n FROM readings WHERE id <= (SELECT cursor FROM sink_state WHERE name = 'file')").n
  let rounds = 0
  let hits = 0 // kills that left the file ahead of the committed cursor: the replay case
  const restarts: FerryProcess[] = []
  // With two batches left past the cursor the file is sure to grow in the next round (a batch
  // written before the kill is at most one of them), so no round waits for a write that never comes.
  while (rounds < 30 && hits < 3 && delivered() < total - 2 * batch) {
    rounds++
    gw = spawnFerry(t, ['gateway'], env)
    restarts.push(gw)
    await killWhenFileGrows(gw, file, sizeOf(file))
    if (completeLines(file).length > delivered()) hits++
  }
  t.ok(hits >= 1, `${hits} of ${rounds} kills landed after a file write and before its cursor commit`)

  // A last run drains the rest and stops cleanly.
  gw = spawnFerry(t, ['gateway'], env)
  await gw.waitFor(/connected to the broker/) // its SIGTERM handler is installed by then
  await waitUntil(() => delivered() === total, 'the file sink to deliver everything', 60_000)
  gw.child.kill('SIGTERM')
  t.equal((await gw.exited).code, 0)
  const skips = [...restarts, gw].filter((p) => p.lines.some((l) => /file already holds these readings/.test(l))).length
  t.ok(skips >= 1, `${skips} restarted gateways recognised a batch the file already held`)

  const text = readFileSync(file, 'utf8')
  t.ok(text.endsWith('\n'), 'no torn last line')
  const lines = text.split('\n').filter(Boolean)
  const parsed = lines.map((l) => /^telemetry,device=(\S+) pot=(\d+)i,switch=(\d)i,seq=(\d+)i,boot=(\d+)i,led=(\d+)i (\d+)$/.exec(l))
  t.equal(parsed.filter((m) => !m).length, 0, 'every line is a whole line-protocol line')
  t.equal(lines.length, total, `exactly ${total} lines (${lines.length - new Set(lines).size} duplicates)`)
  for (const device of devices) {
    const mine = parsed.filter((m) => m?.[1] === device).map((m) => ({ seq: Number(m![4]), pot: Number(m![2]), ts: BigInt(m![7]!) }))
    t.same(mine.map((r) => r.seq), Array.from({ length: perDevice }, (_, i) => i + 1), `${device}: seq 1..${perDevice} in order, each once`)
    t.ok(mine.every((r) => r.pot === r.seq % 4096), `${device}: values match what was published`)
    t.ok(mine.every((r, i) => i === 0 || r.ts > mine[i - 1]!.ts), `${device}: timestamps strictly increasing`)
  }
})
