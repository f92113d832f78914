import t from 'tap'
import { Batcher } from './batcher.js'
import type { IngestItem, IngestOutcome, RingBuffer } from '../buffer/index.js'

const OUTCOME: IngestOutcome = { stored: 0, duplicates: 0, dead: 0, events: 0, dropped: 0 }

/** A buffer that records each commit in the shared journal; `fail` makes the next commit throw. */
function fakeBuffer(journal: string[]) {
  const fake = {
    commits: [] as IngestItem[][],
    fail: undefined as Error | undefined,
    ingest(items: IngestItem[]): IngestOutcome {
      if (fake.fail) {
        const err = fake.fail
        fake.fail = undefined
        journal.push(`failed ${items.length}`)
        throw err
      }
      fake.commits.push(items)
      journal.push(`commit ${items.map((i) => i.topic).join(',')}`)
      return { ...OUTCOME, stored: items.length }
    },
  }
  return fake
}

const msg = (n: number): IngestItem => ({ type: 'dead', topic: `m${n}`, device: null, reason: 'test', payload: Buffer.alloc(0), receivedAt: 0 })

function setup(opts: { maxItems?: number; maxDelayMs?: number } = {}) {
  const journal: string[] = []
  const buffer = fakeBuffer(journal)
  const errors: Array<{ err: Error; items: number }> = []
  const batcher = new Batcher({
    buffer: buffer as unknown as RingBuffer,
    maxItems: opts.maxItems ?? 3,
    maxDelayMs: opts.maxDelayMs ?? 60_000,
    onCommit: ({ items }) => journal.push(`onCommit ${items}`),
    onError: (err, items) => errors.push({ err, items }),
  })
  const add = (n: number) => batcher.add(msg(n), () => journal.push(`ack m${n}`))
  return { journal, buffer, errors, batcher, add }
}

t.test('acknowledgements are released only after the commit holding them, in arrival order', async (t) => {
  const { journal, add } = setup({ maxItems: 3 })
  add(1)
  add(2)
  t.same(journal, [], 'nothing committed or acknowledged while the batch is open')
  add(3)
  t.same(journal, ['commit m1,m2,m3', 'ack m1', 'ack m2', 'ack m3', 'onCommit 3'])
})

/**
 * Runs `fn` with the global setTimeout/clearTimeout replaced by a virtual clock that `advance` moves,
 * synchronously (no await inside), so the timer tests do not depend on the machine's load.
 */
function withVirtualTimers(fn: (advance: (ms: number) => void) => void): void {
  const real = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout }
  let now = 0
  let nextId = 0
  const timers = new Map<number, { at: number; run: () => void }>()
  globalThis.setTimeout = ((run: () => void, ms: number) => {
    timers.set(++nextId, { at: now + ms, run })
    return nextId
  }) as unknown as typeof setTimeout
  globalThis.clearTimeout = ((id: number | undefined) => void timers.delete(id as number)) as unknown as typeof clearTimeout
  const advance = (ms: number) => {
    now += ms
    for (;;) {
      const due = [...timers].filter(([, x]) => x.at <= now).sort((a, b) => a[1].at - b[1].at)[0]
      if (!due) return
      timers.delete(due[0])
      due[1].run()
    }
  }
  try {
    fn(advance)
  } finally {
    Object.assign(globalThis, real)
  }
}

t.test('a partial batch commits when the oldest message has waited maxDelayMs', async (t) => {
  const { journal, add, batcher } = setup({ maxItems: 100, maxDelayMs: 20 })
  withVirtualTimers((advance) => {
    add(1)
    add(2)
    advance(19)
    t.equal(batcher.pending, 2, 'still waiting at 19 ms')
    t.same(journal, [])
    advance(1)
  })
  t.same(journal, ['commit m1,m2', 'ack m1', 'ack m2', 'onCommit 2'])
  t.equal(batcher.pending, 0)
})

t.test('the delay counts from the oldest message: later messages do not push the commit back', async (t) => {
  const { journal, add } = setup({ maxItems: 100, maxDelayMs: 40 })
  withVirtualTimers((advance) => {
    add(1)
    advance(25)
    add(2)
    advance(15)
  })
  t.same(journal, ['commit m1,m2', 'ack m1', 'ack m2', 'onCommit 2'], 'committed 40 ms after the first message')
})

t.test('a commit at maxItems cancels the timer; the next message starts a new one', async (t) => {
  const { journal, add } = setup({ maxItems: 2, maxDelayMs: 40 })
  withVirtualTimers((advance) => {
    add(1)
    advance(30)
    add(2) // full: commits now
    add(3)
    advance(39)
    t.same(journal, ['commit m1,m2', 'ack m1', 'ack m2', 'onCommit 2'], 'm3 waits its own 40 ms')
    advance(1)
  })
  t.same(journal.slice(4), ['commit m3', 'ack m3', 'onCommit 1'])
})

t.test('a failed commit acknowledges nothing and reports the error; the next batch is committed normally', async (t) => {
  const { journal, add, buffer, errors, batcher } = setup({ maxItems: 2 })
  const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
  buffer.fail = full
  add(1)
  add(2)
  t.same(journal, ['failed 2'], 'no ack, no onCommit')
  t.same(errors, [{ err: full, items: 2 }])
  t.equal(batcher.pending, 0, 'the failed messages are not kept: the broker redelivers them')
  add(3)
  add(4)
  t.same(journal.slice(1), ['commit m3,m4', 'ack m3', 'ack m4', 'onCommit 2'])
})

t.test('flush commits what is pending now and says whether it worked', async (t) => {
  const { journal, add, buffer, batcher } = setup({ maxItems: 100 })
  t.equal(batcher.flush(), true, 'nothing pending is a success')
  t.same(buffer.commits, [], 'and commits nothing')
  add(1)
  t.equal(batcher.flush(), true)
  t.same(journal, ['commit m1', 'ack m1', 'onCommit 1'])
  buffer.fail = new Error('I/O error')
  add(2)
  t.equal(batcher.flush(), false)
  t.notOk(journal.includes('ack m2'))
})

t.test('discard forgets pending messages without acknowledging them, and cancels the timer', async (t) => {
  const { journal, add, batcher } = setup({ maxItems: 100, maxDelayMs: 10 })
  withVirtualTimers((advance) => {
    add(1)
    add(2)
    t.equal(batcher.discard(), 2)
    advance(100)
  })
  t.same(journal, [], 'no commit, no ack')
})
