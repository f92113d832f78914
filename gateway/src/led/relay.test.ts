// The LED relay's bookkeeping against real SQLite (the buffer schema) and a recording publisher; the
// broker side is covered by test/e2e/command-relay.test.ts.
import t from 'tap'
import { once, EventEmitter } from 'node:events'
import { openBuffer } from '../buffer/index.js'
import { silentLogger } from '../../../common/src/logger.js'
import { CommandStore } from './store.js'
import { LedRelay, type LedPublisher } from './relay.js'

interface Sent {
  topic: string
  payload: string
  expirySeconds?: number
}

/** Records publishes; `fail` makes the next ones reject, `hold` keeps them unacknowledged. */
class Recorder extends EventEmitter implements LedPublisher {
  sent: Sent[] = []
  fail: Error | null = null
  hold = false
  private held: Array<() => void> = []
  async publish(topic: string, payload: string, opts: { expirySeconds?: number }): Promise<void> {
    this.sent.push({ topic, payload, ...(opts.expirySeconds ? { expirySeconds: opts.expirySeconds } : {}) })
    this.emit('publish', this.sent.at(-1))
    if (this.fail) throw this.fail
    if (this.hold) await new Promise<void>((r) => this.held.push(r))
  }
  release(): void {
    for (const r of this.held.splice(0)) r()
  }
}

function rig(t: { teardown(fn: () => unknown): void }, db = openBuffer(':memory:').db) {
  const pub = new Recorder()
  const relay = new LedRelay({ store: new CommandStore(db), publisher: pub, log: silentLogger })
  t.teardown(() => relay.stop())
  // The relay's expiry timers are unref'd (they must not keep a stopping gateway alive); keep the
  // test process alive while it waits for them.
  const keepAlive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(keepAlive))
  return { db, pub, relay }
}

const soon = (ms = 60_000) => Date.now() + ms

t.test('publishes {cmd, brightness, expires} on the device led/set with MQTT expiry, then records it published', async (t) => {
  const { pub, relay } = rig(t)
  const expiresAt = soon(90_000)
  const rec = await relay.send({ device: 'dev1', brightness: 42, expiresAt, source: 'api' })
  t.equal(rec.state, 'published')
  t.equal(pub.sent.length, 1)
  t.equal(pub.sent[0]!.topic, 'sensors/dev1/led/set')
  t.same(JSON.parse(pub.sent[0]!.payload), { cmd: rec.cmd, brightness: 42, expires: expiresAt })
  t.ok(pub.sent[0]!.expirySeconds! >= 89 && pub.sent[0]!.expirySeconds! <= 90)
  t.ok(rec.cmd.length <= 64, 'fits the device limit on command ids')
})

t.test('never publishes a command whose expiry has passed', async (t) => {
  const { pub, relay } = rig(t)
  const rec = await relay.send({ device: 'dev1', brightness: 1, expiresAt: Date.now() - 1, source: 'talkback', raw: '1' })
  t.match(rec, { state: 'expired', reason: /expired before delivery/, publishedAt: null })
  t.same(pub.sent, [])
})

t.test('answers pending when the broker has not acknowledged in time, published once it has', async (t) => {
  const { pub, relay } = rig(t)
  pub.hold = true
  const rec = await relay.send({ device: 'dev1', brightness: 9, expiresAt: soon(), source: 'api' }, { waitMs: 20 })
  t.equal(rec.state, 'pending')
  pub.release()
  await new Promise((r) => setImmediate(r))
  t.equal(relay.store.get(rec.cmd)!.state, 'published')
})

t.test('a publish the broker refuses is recorded as failed with the reason', async (t) => {
  const { pub, relay } = rig(t)
  // What MQTT.js rejects with for a PUBACK reason code of 0x80 or more (ErrorWithReasonCode).
  pub.fail = Object.assign(new Error('Publish error: Not authorized'), { code: 0x87 })
  const rec = await relay.send({ device: 'dev1', brightness: 9, expiresAt: soon(), source: 'api' })
  t.match(rec, { state: 'failed', reason: /Not authorized/ })
})

t.test('a publish that fails without a broker answer stays pending, and the next start publishes it', async (t) => {
  const db = openBuffer(':memory:').db
  const first = rig(t, db)
  first.pub.fail = new Error('client disconnecting')
  const rec = await first.relay.send({ device: 'dev1', brightness: 9, expiresAt: soon(), source: 'api' })
  t.match(rec, { state: 'pending', reason: null })
  await first.relay.stop()
  const second = rig(t, db)
  second.relay.start()
  await new Promise((r) => setImmediate(r))
  t.same(second.pub.sent.map((s) => JSON.parse(s.payload).cmd), [rec.cmd])
  t.equal(second.relay.store.get(rec.cmd)!.state, 'published')
})

t.test('a command that reaches a stopped relay is recorded, not lost: pending until the next start', async (t) => {
  const { pub, relay } = rig(t)
  await relay.stop()
  const rec = await relay.send({ device: 'dev1', brightness: 3, expiresAt: soon(), source: 'talkback', raw: '3' })
  t.match(rec, { state: 'pending', raw: '3' })
  t.same(pub.sent, [], 'nothing published after stop')
  t.match(relay.store.retained(), [{ cmd: rec.cmd, state: 'pending' }], 'what start() publishes')
})

t.test('a newer command supersedes the older unconfirmed one; only the newest is cleared at its expiry', async (t) => {
  const { pub, relay } = rig(t)
  const a = await relay.send({ device: 'dev1', brightness: 10, expiresAt: soon(150), source: 'api' })
  const b = await relay.send({ device: 'dev1', brightness: 20, expiresAt: soon(300), source: 'api' })
  t.match(relay.store.get(a.cmd), { state: 'superseded', reason: `replaced by ${b.cmd}` })
  const [clear] = (await once(pub, 'publish')) as [Sent]
  t.same(clear, { topic: 'sensors/dev1/led/set', payload: '' }, 'an empty retained payload removes it')
  await new Promise((r) => setImmediate(r))
  t.equal(pub.sent.filter((s) => s.payload === '').length, 1, "a's timer was replaced by b's")
  t.match(relay.store.get(b.cmd), { state: 'expired', reason: /not confirmed/ })
  t.ok(relay.store.get(b.cmd)!.clearedAt)
  t.equal(relay.store.get(a.cmd)!.clearedAt, null)
})

t.test('the echo confirms only a command of that device; a confirmed command stays confirmed at expiry', async (t) => {
  const { pub, relay } = rig(t)
  const rec = await relay.send({ device: 'dev1', brightness: 30, expiresAt: soon(200), source: 'api' })
  relay.observeLedState('dev2', JSON.stringify({ cmd: rec.cmd, brightness: 30 }))
  t.equal(relay.store.get(rec.cmd)!.state, 'published', 'another device cannot confirm it')
  relay.observeLedState('dev1', '{"brightness":30}')
  relay.observeLedState('dev1', 'not json')
  t.equal(relay.store.get(rec.cmd)!.state, 'published')
  relay.observeLedState('dev1', Buffer.from(JSON.stringify({ cmd: rec.cmd, brightness: 31 })))
  t.match(relay.store.get(rec.cmd), { state: 'confirmed', confirmedBrightness: 31 })
  await once(pub, 'publish')
  await new Promise((r) => setImmediate(r))
  t.match(relay.store.get(rec.cmd), { state: 'confirmed' })
  t.ok(relay.store.get(rec.cmd)!.clearedAt, 'still removed from the broker: the device has applied it')
})

t.test('after a restart: expired retained commands are cleared, unsent ones are published again', async (t) => {
  const db = openBuffer(':memory:').db
  const first = rig(t, db)
  first.pub.hold = true
  const pending = await first.relay.send({ device: 'dev1', brightness: 5, expiresAt: soon(), source: 'api' }, { waitMs: 1 })
  first.pub.hold = false
  first.pub.fail = null
  const published = await first.relay.send({ device: 'dev2', brightness: 6, expiresAt: soon(100), source: 'api' })
  t.equal(pending.state, 'pending')
  await first.relay.stop()
  await new Promise((r) => setTimeout(r, 150)) // dev2's command expires while the gateway is down

  const second = rig(t, db)
  second.relay.start()
  await new Promise((r) => setImmediate(r))
  const byTopic = Object.fromEntries(second.pub.sent.map((s) => [s.topic, s.payload]))
  t.equal(JSON.parse(byTopic['sensors/dev1/led/set']!).cmd, pending.cmd, 'the pending command is sent again with its id')
  t.equal(byTopic['sensors/dev2/led/set'], '', 'the expired one is cleared')
  t.match(second.relay.store.get(published.cmd), { state: 'expired' })
})

t.test('keeps the commands table bounded and counts by state', async (t) => {
  const { relay } = rig(t)
  for (let i = 0; i < 3; i++) relay.reject('talkback', `junk ${i}`, 'cannot read')
  t.equal(relay.counts().rejected, 3)
  t.equal(relay.list({ limit: 2 }).length, 2)
  t.equal(relay.list()[0]!.raw, 'junk 2', 'newest first')
})
