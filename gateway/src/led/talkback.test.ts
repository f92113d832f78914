// The TalkBack poller against the fake TalkBack server (shapes and errors of
// docs/cloud-apis.md#thingspeak-talkback), with the real relay and SQLite and a recording publisher
// in place of the broker.
import t from 'tap'
import pino from 'pino'
import { Writable } from 'node:stream'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import { openBuffer } from '../buffer/index.js'
import { tempDir } from '../../../test/helpers/tmp.js'
import { silentLogger, type Logger } from '../../../common/src/logger.js'
import { hasCode } from '../../../common/src/errors.js'
import { CommandStore } from './store.js'
import { LedRelay, type LedPublisher } from './relay.js'
import { FakeTalkBack, type FakeTalkBackOptions } from '../../../test/fakes/talkback.js'
import { TalkBackPoller } from './talkback.js'
import { talkbackSettings } from './config.js'

interface TT {
  teardown(fn: () => unknown): void
}

const TB = { talkbackId: '77', apiKey: 'ABCDEFGHIJKLMNOP' }
const INTERVAL = 1000

interface RigOptions {
  fake?: Partial<FakeTalkBackOptions>
  apiKey?: string
  talkbackId?: string
  ready?: () => boolean
  log?: Logger
  defaultDevice?: string | null
  /** The buffer database (default: in memory). */
  db?: Database.Database
  /** Stands in for the broker (default: records and acknowledges at once, into `sent`). */
  publisher?: LedPublisher
}

/** A publisher that records and acknowledges at once. */
function recorder() {
  const sent: Array<{ topic: string; payload: string }> = []
  const publisher: LedPublisher = { publish: async (topic, payload) => void sent.push({ topic, payload }) }
  return { sent, publisher }
}

async function rig(t: TT, opts: RigOptions = {}) {
  const fake = new FakeTalkBack({ ...TB, ...opts.fake })
  const baseUrl = await fake.start()
  t.teardown(() => fake.close())
  const { sent, publisher } = recorder()
  const relay = new LedRelay({ store: new CommandStore(opts.db ?? openBuffer(':memory:').db), publisher: opts.publisher ?? publisher, log: opts.log ?? silentLogger })
  t.teardown(() => relay.stop())
  const poller = new TalkBackPoller({
    baseUrl,
    talkbackId: opts.talkbackId ?? TB.talkbackId,
    apiKey: opts.apiKey ?? TB.apiKey,
    intervalMs: INTERVAL,
    ...(opts.defaultDevice === null ? {} : { defaultDevice: opts.defaultDevice ?? 'dev1' }),
    ttlMs: 60_000,
    relay,
    log: opts.log ?? silentLogger,
    ready: opts.ready ?? (() => true),
  })
  t.teardown(() => poller.stop())
  return { fake, relay, poller, sent }
}

t.test('each poll executes the next queued command (FIFO) with the api_key in a form body', async (t) => {
  const { fake, poller, sent, relay } = await rig(t)
  fake.add('80')
  fake.add('{"device":"dev2","brightness":15}')
  t.same(await poller.pollOnce(), { outcome: 'command', delayMs: INTERVAL })
  t.same(await poller.pollOnce(), { outcome: 'command', delayMs: INTERVAL })
  t.same(await poller.pollOnce(), { outcome: 'empty', delayMs: INTERVAL })
  t.same(sent.map((s) => [s.topic, JSON.parse(s.payload).brightness]), [['sensors/dev1/led/set', 80], ['sensors/dev2/led/set', 15]])
  t.same(fake.executeCalls().map((r) => [r.method, r.path, r.apiKey]), Array(3).fill(['POST', '/talkbacks/77/commands/execute.json', TB.apiKey]))
  t.match(relay.list()[1], { source: 'talkback', sourceRef: '1', raw: '80' })
  t.match(poller.status(), { state: 'polling', polls: 3, commands: 2, lastError: null })
})

t.test('an empty queue is read from {} and from an empty body alike', async (t) => {
  for (const emptyJson of ['{}', ''] as const) {
    const { poller, sent } = await rig(t, { fake: { emptyJson } })
    t.same(await poller.pollOnce(), { outcome: 'empty', delayMs: INTERVAL }, JSON.stringify(emptyJson))
    t.same(sent, [])
  }
})

t.test('unreadable commands and commands without a device are recorded as rejected, never published', async (t) => {
  const { fake, poller, sent, relay } = await rig(t, { defaultDevice: null })
  fake.add('TURN_ON')
  fake.add('LED=50')
  await poller.pollOnce()
  await poller.pollOnce()
  t.same(sent, [])
  const [noDevice, junk] = relay.list()
  t.match(junk, { state: 'rejected', raw: 'TURN_ON', reason: /cannot read/ })
  t.match(noDevice, { state: 'rejected', raw: 'LED=50', reason: /FERRY_TALKBACK_DEFAULT_DEVICE/ })
})

t.test('a wrong key (401) is logged at ERROR once and retried at the longest pause', async (t) => {
  const lines: Array<{ level: number; msg: string }> = []
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }))
  const { poller, fake } = await rig(t, { apiKey: 'WRONGKEY00000000', log })
  fake.add('80')
  t.same(await poller.pollOnce(), { outcome: 'error', delayMs: INTERVAL * 16 })
  t.same(await poller.pollOnce(), { outcome: 'error', delayMs: INTERVAL * 16 })
  t.equal(lines.filter((l) => l.level === 50).length, 1, 'one ERROR for the streak')
  t.match(lines.find((l) => l.level === 50)!.msg, /set FERRY_THINGSPEAK_TALKBACK_KEY/)
  t.match(poller.status(), { state: 'auth-failed', lastError: { status: 401 } })
  t.equal(fake.pending().length, 1, 'the command stays queued')
})

t.test('an unknown TalkBack id (404) names the setting to fix', async (t) => {
  const { poller } = await rig(t, { talkbackId: '999' })
  t.same(await poller.pollOnce(), { outcome: 'error', delayMs: INTERVAL * 16 })
  t.match(poller.status().lastError, { status: 404, message: /not found/ })
})

t.test('429 and 5xx back off (doubling, Retry-After honoured) and recover', async (t) => {
  const { poller, fake, sent } = await rig(t)
  fake.failNext(429, 1, { retryAfter: '30' })
  fake.failNext(500, 2)
  t.same(await poller.pollOnce(), { outcome: 'error', delayMs: 30_000 }, 'Retry-After wins over the backoff')
  t.same(await poller.pollOnce(), { outcome: 'error', delayMs: INTERVAL * 4 })
  t.same(await poller.pollOnce(), { outcome: 'error', delayMs: INTERVAL * 8 })
  fake.add('LED=3')
  t.same(await poller.pollOnce(), { outcome: 'command', delayMs: INTERVAL })
  t.equal(sent.length, 1)
  t.equal(poller.status().lastError, null)
})

t.test('too-frequent calls get 429 from a TalkBack with a rate limit', async (t) => {
  const { poller } = await rig(t, { fake: { minIntervalMs: 60_000 } })
  t.equal((await poller.pollOnce()).outcome, 'empty')
  const second = await poller.pollOnce()
  t.equal(second.outcome, 'error')
  t.ok(second.delayMs > INTERVAL)
  t.match(poller.status().lastError, { status: 429, message: /Too Many Requests/ })
})

t.test('while the broker is down the queue is not touched', async (t) => {
  const { poller, fake } = await rig(t, { ready: () => false })
  fake.add('80')
  t.same(await poller.pollOnce(), { outcome: 'skipped', delayMs: INTERVAL })
  t.equal(fake.executeCalls().length, 0)
  t.equal(poller.status().state, 'waiting-for-broker')
})

t.test('an unreachable TalkBack is a retried error, not a crash', async (t) => {
  const { poller, fake } = await rig(t)
  await fake.close()
  const r = await poller.pollOnce()
  t.equal(r.outcome, 'error')
  t.match(poller.status().lastError, { status: null, message: /request failed/ })
})

t.test('the loop polls at the interval and stops promptly', async (t) => {
  const { fake, poller, sent } = await rig(t)
  fake.add('11')
  const first = fake.nextExecute()
  poller.start()
  await first
  const started = Date.now()
  await poller.stop()
  t.ok(Date.now() - started < 500, 'stop does not wait for the next poll')
  t.equal(sent.length, 1, 'the command dequeued before stop was still delivered')
  t.equal(fake.executeCalls().length, 1)
  t.equal(poller.status().state, 'stopped')
})

/** Pino lines, parsed. */
function capture() {
  const lines: Array<{ level: number; msg: string; [k: string]: unknown }> = []
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }))
  return { lines, log }
}

/** The gateway started again on the same buffer file: its relay, started, and what it published. */
async function restart(t: TT, path: string) {
  const { sent, publisher } = recorder()
  const { db } = openBuffer(path)
  const relay = new LedRelay({ store: new CommandStore(db), publisher, log: silentLogger })
  t.teardown(async () => {
    await relay.stop()
    db.close()
  })
  relay.start()
  await new Promise((r) => setImmediate(r))
  return { relay, sent }
}

t.test('a dequeued command is committed before anything else happens to it; killed before the broker acknowledged, the next start publishes it', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  const { db } = openBuffer(path)
  const atPublish: unknown[] = []
  // The broker never acknowledges: the gateway dies first. When the relay hands the command to MQTT,
  // another connection (another process, as far as SQLite is concerned) already sees it committed.
  const publisher: LedPublisher = {
    publish: (_topic, payload) => {
      const other = openBuffer(path, { readonly: true }).db
      atPublish.push(other.prepare('SELECT cmd, state, raw, source_ref AS sourceRef FROM commands WHERE cmd = ?').get((JSON.parse(payload) as { cmd: string }).cmd))
      other.close()
      return new Promise<void>(() => {})
    },
  }
  const { fake, poller } = await rig(t, { db, publisher })
  const queued = fake.add('LED=42')
  t.same(await poller.pollOnce(), { outcome: 'command', delayMs: INTERVAL })
  t.same(fake.pending(), [], 'TalkBack has taken it off its queue')
  t.match(atPublish, [{ state: 'pending', raw: 'LED=42', sourceRef: String(queued.id) }], 'committed before it was handed to MQTT')

  // The process is killed here: nothing is stopped or closed. A new gateway on the same file:
  const { sent, relay } = await restart(t, path)
  const [cmd] = atPublish as Array<{ cmd: string }>
  t.same(sent.map((s) => [s.topic, JSON.parse(s.payload).cmd, JSON.parse(s.payload).brightness]), [['sensors/dev1/led/set', cmd!.cmd, 42]], 'published at the next start, with its id')
  t.match(relay.store.get(cmd!.cmd), { state: 'published', source: 'talkback', sourceRef: String(queued.id) })
})

t.test('a dequeued command whose publish throws stays recorded as pending and is published after a restart', async (t) => {
  const path = join(tempDir(t), 'buffer.db')
  const { db } = openBuffer(path)
  const publisher: LedPublisher = { publish: async () => Promise.reject(new Error('client disconnecting')) }
  const { fake, poller, relay } = await rig(t, { db, publisher })
  fake.add('{"device":"dev2","brightness":7}')
  t.equal((await poller.pollOnce()).outcome, 'command')
  const [rec] = relay.list()
  t.match(rec, { state: 'pending', device: 'dev2', brightness: 7, reason: null }, 'not failed: the broker never refused it')
  const { sent } = await restart(t, path)
  t.same(sent.map((s) => JSON.parse(s.payload).cmd), [rec!.cmd])
})

t.test('a command TalkBack handed over that cannot be committed is logged at ERROR with what it was', async (t) => {
  const { lines, log } = capture()
  const { db } = openBuffer(':memory:')
  const { fake, poller, sent } = await rig(t, { db, log })
  fake.add('LED=7')
  db.close() // every commit now fails
  t.same(await poller.pollOnce(), { outcome: 'error', delayMs: INTERVAL * 16 })
  t.same(sent, [], 'never published unrecorded')
  const err = lines.find((l) => l.level === 50)
  t.match(err, { command: 'LED=7', commandId: 1, msg: /taken off the TalkBack queue failed; unless the commands table has it .* it is lost: queue it again/ })
})

t.test('stop waits for a poll in flight, then abandons a request TalkBack does not answer: the window that remains', async (t) => {
  const { lines, log } = capture()
  const { fake, poller, relay, sent } = await rig(t, { log })
  fake.add('55')
  fake.stallNext() // takes the command off the queue, and the answer never arrives
  const executed = fake.nextExecute()
  poller.start()
  await executed
  const started = Date.now()
  await poller.stop()
  const took = Date.now() - started
  t.ok(took >= 1900 && took < 3000, `bounded (${took} ms)`)
  t.match(lines.find((l) => l.level === 40), { msg: /abandoned the request. If TalkBack had already taken a command off its queue for it, that command is lost/ })
  t.same([fake.pending(), relay.list(), sent], [[], [], []], 'gone from the cloud queue, never recorded: documented in docs/cloud-apis.md#thingspeak-talkback')
  t.equal(poller.status().state, 'stopped')
})

t.test('settings: both TalkBack variables or neither; the URL comes from FERRY_THINGSPEAK_URL', async (t) => {
  const base = { FERRY_TALKBACK_POLL_MS: 15_000, FERRY_LED_COMMAND_TTL_MS: 300_000 }
  t.equal(talkbackSettings(base), undefined)
  t.throws(() => talkbackSettings({ ...base, FERRY_THINGSPEAK_TALKBACK_ID: '1' }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_THINGSPEAK_TALKBACK_KEY is not set/ })
  try {
    talkbackSettings({ ...base, FERRY_THINGSPEAK_TALKBACK_KEY: 'k' })
    t.fail('a key without an id must be refused')
  } catch (err) {
    t.ok(hasCode(err, 'FERRY_ERR_CONFIG'))
  }
  t.match(talkbackSettings({ ...base, FERRY_THINGSPEAK_TALKBACK_ID: '1', FERRY_THINGSPEAK_TALKBACK_KEY: 'k' }), { baseUrl: 'https://api.thingspeak.com', intervalMs: 15_000 })
  t.match(talkbackSettings({ ...base, FERRY_THINGSPEAK_TALKBACK_ID: '1', FERRY_THINGSPEAK_TALKBACK_KEY: 'k', FERRY_THINGSPEAK_URL: 'http://127.0.0.1:9/' }), { baseUrl: 'http://127.0.0.1:9' })
})
