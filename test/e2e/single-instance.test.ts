// One gateway per buffer database, with real processes: a second `ferry gateway` on the same FERRY_DB
// is refused (exit 1) naming the first, which keeps its broker session; `ferry status` still reads the
// database; after the first is SIGKILLed a new one starts at once (the OS let go of the lock). And a
// FERRY_DB on a read-only file system stops the gateway with a message naming the setting and the path.
import t from 'tap'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { startTestBroker } from '../helpers/mosquitto.js'
import { mountTmpfs, tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, publishReadings, spawnFerry } from '../helpers/gateway.js'
import { ferryStatusText } from '../helpers/status.js'
import { waitUntil } from '../helpers/wait.js'

/** `ferry status` (a process of its own, read-only) once it shows `rows` buffered readings. */
const statusShows = (db: string, rows: number) => waitUntil(() => new RegExp(`buffered: +${rows} readings`).test(ferryStatusText(db)), `ferry status to show ${rows} readings`, 30_000, 200)

t.test('a second gateway on the same database is refused naming the first; after a SIGKILL a new one starts', async (t) => {
  const broker = await startTestBroker(t)
  const env = gatewayEnv(broker, tempDir(t))
  const first = spawnFerry(t, ['gateway'], env)
  await first.waitFor(/connected to the broker/)

  const second = spawnFerry(t, ['gateway'], env)
  const exit = await second.exited
  t.equal(exit.code, 1, 'refused: a run-time failure (exit 1)')
  const said = second.lines.join('\n')
  t.match(said, `ferry gateway: the buffer database ${env.FERRY_DB} (FERRY_DB) is in use by another ferry gateway (pid ${first.pid} on host ${hostname()}, started `)
  t.match(said, /Stop the other gateway first, or give this one its own FERRY_DB/)
  t.notMatch(said, /connected to the broker/, 'the second one never connected')

  // The first one goes on undisturbed, and the read-only status command works beside it.
  const dev = await deviceClient(t, broker, 'dev1')
  await publishReadings(dev, 'dev1', 1, 20)
  t.ok(await statusShows(env.FERRY_DB!, 20), 'ferry status reads the database while the gateway runs')
  t.ok(first.alive(), 'the first gateway still runs')
  t.notOk(first.lines.some((l) => /broker connection lost/.test(l)), 'and was never knocked off the broker')

  first.child.kill('SIGKILL')
  await first.exited
  const third = spawnFerry(t, ['gateway'], env)
  await third.waitFor(/connected to the broker/)
  t.pass('after a SIGKILL of the holder a new gateway starts: no stale lock')
  await publishReadings(dev, 'dev1', 21, 30)
  t.ok(await statusShows(env.FERRY_DB!, 30), 'and it stores readings')
  third.child.kill('SIGTERM')
  t.equal((await third.exited).code, 0)
})

t.test('a FERRY_DB on a read-only file system stops the gateway (exit 2) naming the setting, the path and what to do', async (t) => {
  if (process.getuid?.() !== 0) throw new Error('this test mounts a read-only tmpfs and needs root (root ignores permission bits, not a read-only mount)')
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const mnt = mountTmpfs(t, dir, 'ro', 'ro,size=1m')
  const db = join(mnt, 'buffer.db')
  const gw = spawnFerry(t, ['gateway'], gatewayEnv(broker, dir, { FERRY_DB: db }))
  const exit = await gw.exited
  t.equal(exit.code, 2, 'a configuration error: exit 2')
  const said = gw.lines.join('\n')
  t.match(said, `ferry gateway: FERRY_DB=${db}: cannot create or write the buffer database: ${mnt} is on a read-only file system (`)
  t.match(said, `Check the folder's owner and permissions (ls -ld ${mnt}) and that its file system is not mounted read-only`)
  t.match(said, /the non-root uid 1000/)
})
