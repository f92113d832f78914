// The outbox's rules (docs/delivery.md, "The device's side"), with the time passed in by hand: no
// timers, no broker. Each test names the rule it checks.
import t from 'tap'
import { DeviceOutbox, parseConfirmation, type OutboxOptions, type Send } from './ring.js'

interface Item {
  seq: number
}

const NEVER = 1e12

function outbox(opts: Partial<OutboxOptions> = {}): DeviceOutbox<Item> {
  // No reorder window unless a test sets one: most tests confirm at the moment of the PUBACK.
  return new DeviceOutbox<Item>({ capacity: 100, boot: 7, ackTimeoutMs: NEVER, ackTimeoutMaxMs: NEVER, ackFallbackMs: NEVER, ackReorderMs: 0, ...opts })
}

function pushSeqs(o: DeviceOutbox<Item>, from: number, to: number): void {
  for (let seq = from; seq <= to; seq++) o.push({ seq })
}

/** Takes every publish the outbox offers now (up to its window). */
function sendAll(o: DeviceOutbox<Item>, now = 0): Array<Send<Item>> {
  const out: Array<Send<Item>> = []
  for (let s = o.next(now); s; s = o.next(now)) out.push(s)
  return out
}

/** PUBACKs every publish; returns the seqs released by them. */
function pubackAll(o: DeviceOutbox<Item>, sends: Array<Send<Item>>, now = 0): number[] {
  return sends.flatMap((s) => o.puback(s.send, now)).map((i) => i.seq)
}

const seqsOf = (xs: Array<Item | Send<Item>>): number[] => xs.map((x) => ('item' in x ? x.item.seq : x.seq))

t.test('rule 1: a full outbox drops the oldest reading that is not in flight, and counts it', async (t) => {
  const o = outbox({ capacity: 3, window: 1 })
  pushSeqs(o, 1, 3)
  t.same(seqsOf(sendAll(o)), [1], 'one in flight (window 1)')
  t.same(seqsOf(o.push({ seq: 4 })), [], 'room: 1 is in flight and does not count')
  t.same(seqsOf(o.push({ seq: 5 })), [2], 'the oldest not in flight goes, not the in-flight one')
  t.same(seqsOf(o.push({ seq: 6 })), [3])
  t.same(seqsOf(o.items()), [1, 4, 5, 6])
  t.match(o.counts, { dropped: 2 })
  o.puback(1, 0)
  t.same(seqsOf(o.push({ seq: 7 })), [1, 4], 'once PUBACKed (and still unconfirmed) it counts again, and the oldest go')
  t.match(o.counts, { dropped: 4 })
  t.same(seqsOf(o.items()), [5, 6, 7])
  t.same(seqsOf(sendAll(o)), [5], 'what is sent next is the oldest left')
})

t.test('rule 2: readings go out in order, each with a new send number, at most `window` awaiting PUBACK', async (t) => {
  const o = outbox({ window: 3 })
  pushSeqs(o, 1, 5)
  const first = sendAll(o)
  t.same(seqsOf(first), [1, 2, 3])
  t.same(first.map((s) => s.send), [1, 2, 3])
  t.equal(o.inflight, 3)
  t.equal(o.next(0), undefined, 'the window is full')
  o.puback(first[0]!.send, 0)
  t.same(seqsOf(sendAll(o)), [4], 'one PUBACK frees one place')
  t.match(o.counts, { published: 4, resent: 0 })
})

t.test('rule 3: a reading stays until a confirmation covers it; the PUBACK alone releases nothing', async (t) => {
  const o = outbox()
  pushSeqs(o, 1, 4)
  const sends = sendAll(o)
  t.same(pubackAll(o, sends), [], 'PUBACKs release nothing while the gateway confirms')
  t.equal(o.held, 4)
  t.equal(o.inflight, 0)
  t.same(sendAll(o), [], 'and nothing is sent again')
  const r = o.confirm({ boot: 7, seqs: [[1, 2]] }, 0)
  t.same(seqsOf(r.released), [1, 2])
  t.equal(r.remarked, 0)
  t.same(seqsOf(o.items()), [3, 4])
  t.match(o.counts, { released: 2, confirmed: 2 })
  t.equal(o.mode, 'gateway')
})

t.test('rule 3: held readings sent before a released one are sent again, in order; later ones and those in flight are not', async (t) => {
  const o = outbox({ window: 10 })
  pushSeqs(o, 1, 8)
  const sends = sendAll(o)
  pubackAll(o, sends.slice(0, 6))
  // The broker lost 3 and 4 on the way to the gateway; 7 and 8 are still in flight.
  const r = o.confirm({ boot: 7, seqs: [[1, 2], [5, 5]] }, 0)
  t.same(seqsOf(r.released), [1, 2, 5])
  t.equal(r.remarked, 2)
  t.same(seqsOf(o.items()), [3, 4, 6, 7, 8])
  t.equal(o.unsent, 2)
  const again = sendAll(o)
  t.same(seqsOf(again), [3, 4], 'the gap goes again, oldest first; 6 (sent after 5) waits for its confirmation')
  t.ok(again.every((s) => s.resend), 'as resends')
  t.match(o.counts, { resent: 2 })
  t.ok(again.every((s) => s.send > sends[sends.length - 1]!.send), 'with new send numbers')

  pubackAll(o, again)
  t.same(seqsOf(o.confirm({ boot: 7, seqs: [[3, 4], [6, 6]] }, 0).released), [3, 4, 6])
  t.same(sendAll(o), [], 'nothing was sent before 3 and 4 that is still held')
})

t.test('rule 3: out-of-order confirmations within the reorder window mark nothing; a real gap is resent after it', async (t) => {
  // Gateway replicas confirm independently (docs/scale-out.md): 5..9 may be confirmed before 1..4.
  const o = outbox({ ackReorderMs: 1000 })
  pushSeqs(o, 1, 12)
  pubackAll(o, sendAll(o, 0), 0)
  let r = o.confirm({ boot: 7, seqs: [[5, 9]] }, 999)
  t.same(seqsOf(r.released), [5, 6, 7, 8, 9])
  t.equal(r.remarked, 0, '1..4 were PUBACKed 999 ms ago: inside the window')
  r = o.confirm({ boot: 7, seqs: [[1, 4]] }, 1200)
  t.equal(r.remarked, 0)
  r = o.confirm({ boot: 7, seqs: [[11, 11]] }, 1500)
  t.equal(r.remarked, 1, '10 is older than the window now: lost, sent again')
  t.same(seqsOf(sendAll(o, 1500)), [10])
})

t.test('rule 3: the reorder window defaults to 1 s', async (t) => {
  const o = new DeviceOutbox<Item>({ capacity: 10, boot: 7 })
  pushSeqs(o, 1, 2)
  pubackAll(o, sendAll(o, 0), 0)
  t.equal(o.confirm({ boot: 7, seqs: [[2, 2]] }, 999).remarked, 0)
  t.equal(o.confirm({ boot: 7, seqs: [[2, 2]] }, 1000).remarked, 0, 'a duplicate releases nothing, so it marks nothing')
  o.push({ seq: 3 })
  pubackAll(o, sendAll(o, 1000), 1000)
  t.equal(o.confirm({ boot: 7, seqs: [[3, 3]] }, 1000).remarked, 1)
})

t.test('rule 3: a confirmation of a reading in flight (an older copy) marks nothing for sending again', async (t) => {
  const o = outbox()
  pushSeqs(o, 1, 3)
  const before = sendAll(o)
  pubackAll(o, before)
  o.connected()
  const after = sendAll(o) // 1, 2, 3 again; 1 and 2 PUBACKed, 3 still in flight
  pubackAll(o, after.slice(0, 2))
  const r = o.confirm({ boot: 7, seqs: [[3, 3]] }, 0)
  t.same(seqsOf(r.released), [3])
  t.equal(r.remarked, 0, '1 and 2 are not lost just because an older copy of 3 got through')
  t.equal(o.inflight, 0, 'the released reading is no longer in flight')
  t.same(o.puback(after[2]!.send, 0), [], 'and its late PUBACK is ignored')
  t.same(seqsOf(o.items()), [1, 2])
})

t.test('rule 3: overlapping and duplicate confirmations release each reading once', async (t) => {
  const o = outbox()
  pushSeqs(o, 1, 6)
  pubackAll(o, sendAll(o))
  t.same(seqsOf(o.confirm({ boot: 7, seqs: [[1, 3]] }, 0).released), [1, 2, 3])
  const dup = o.confirm({ boot: 7, seqs: [[1, 3]] }, 0)
  t.same(dup.released, [], 'the same confirmation again releases nothing')
  t.equal(dup.remarked, 0)
  t.same(seqsOf(o.confirm({ boot: 7, seqs: [[2, 5]] }, 0).released), [4, 5], 'an overlapping one releases only what is still held')
  t.same(seqsOf(o.confirm({ boot: 7, seqs: [[0, 0], [6, 100]] }, 0).released), [6], 'ranges beyond what is held are harmless')
  t.match(o.counts, { released: 6, confirmed: 6 })
  t.equal(o.held, 0)
})

t.test('rule 3: confirmations of another boot release nothing, but show that the gateway confirms', async (t) => {
  const o = outbox({ ackFallbackMs: 1000 })
  pushSeqs(o, 1, 3)
  pubackAll(o, sendAll(o, 0), 0)
  const r = o.confirm({ boot: 6, seqs: [[1, 3]] }, 0)
  t.equal(r.currentBoot, false)
  t.same(r.released, [])
  t.equal(o.held, 3, 'boot 6 seq 1..3 are not boot 7 seq 1..3')
  t.same(o.poll(5000), { fellBack: false, released: [], probe: undefined }, 'no fallback: a confirmation (a stale retained one) was heard on this connection')
  t.equal(o.mode, 'gateway')
})

t.test('rule 4: after a reconnect every unconfirmed reading is sent again, in order', async (t) => {
  const o = outbox({ window: 3 })
  pushSeqs(o, 1, 6)
  const first = sendAll(o) // 1, 2, 3
  pubackAll(o, first.slice(0, 2))
  o.confirm({ boot: 7, seqs: [[1, 1]] }, 0)
  // 2 PUBACKed but unconfirmed, 3 in flight, 4..6 never sent; the connection drops.
  o.connected()
  t.equal(o.inflight, 0, 'nothing in flight on a new connection')
  t.equal(o.unsent, 5)
  const again = sendAll(o)
  t.same(seqsOf(again), [2, 3, 4], 'oldest first, up to the window')
  t.same(again.map((s) => s.resend), [true, true, false])
  t.same(o.puback(first[2]!.send, 0), [], 'a PUBACK for the old connection\'s send of 3 is ignored')
  t.equal(o.inflight, 3)
  pubackAll(o, again)
  t.same(seqsOf(sendAll(o)), [5, 6])
  t.match(o.counts, { published: 6, resent: 2 })
})

t.test('rule 4: a publish the MQTT client gave up on is sent again first', async (t) => {
  const o = outbox()
  pushSeqs(o, 1, 3)
  const sends = sendAll(o)
  o.publishFailed(sends[1]!.send)
  o.publishFailed(sends[1]!.send)
  t.equal(o.unsent, 1, 'a second failure report for the same send changes nothing')
  t.same(seqsOf(sendAll(o)), [2])
})

t.test('rule 5: the oldest unconfirmed reading is probed after ackTimeout, the period doubling up to its cap; a confirmation resets it', async (t) => {
  const o = outbox({ ackTimeoutMs: 1000, ackTimeoutMaxMs: 4000 })
  pushSeqs(o, 1, 2)
  const sends = sendAll(o, 0)
  t.equal(o.nextDeadline(), undefined, 'no probe while the oldest is in flight')
  t.equal(o.poll(5000).probe, undefined, 'its PUBACK is still to come')
  pubackAll(o, sends, 10)
  t.equal(o.nextDeadline(), 1000, 'due ackTimeout after the oldest was sent')
  t.equal(o.poll(999).probe, undefined)

  const probeAt = (now: number): number[] => {
    t.equal(o.poll(now).probe?.seq, 1, `probe at ${now}`)
    const s = sendAll(o, now)
    t.same(seqsOf(s), [1], 'only the oldest goes again')
    t.ok(s[0]!.resend)
    pubackAll(o, s, now)
    return [o.ackTimeoutMs, o.nextDeadline()!]
  }
  t.same(probeAt(1000), [2000, 3000], 'then 2 s after the probe')
  t.equal(o.poll(2999).probe, undefined)
  t.same(probeAt(3000), [4000, 7000], 'then 4 s')
  t.same(probeAt(7000), [4000, 11000], 'capped at 4 s')
  t.match(o.counts, { probes: 3, resent: 3 })

  // The gateway is back and confirms the probe only: 2, sent before the probe, was lost (rule 3).
  const r = o.confirm({ boot: 7, seqs: [[1, 1]] }, 12_000)
  t.same(seqsOf(r.released), [1])
  t.equal(r.remarked, 1, 'the probe\'s confirmation shows that 2 was lost')
  t.equal(o.ackTimeoutMs, 1000, 'the period starts again at ackTimeout')
  t.equal(o.nextDeadline(), undefined, 'nothing to probe while 2 waits to be sent')
  pubackAll(o, sendAll(o, 12_500), 12_500)
  t.equal(o.nextDeadline(), 13_500, 'counted from its new send')
  t.equal(o.poll(13_500).probe?.seq, 2)
})

t.test('rule 5: a confirmation of another boot neither resets nor delays the probe', async (t) => {
  const o = outbox({ ackTimeoutMs: 1000 })
  o.push({ seq: 1 })
  pubackAll(o, sendAll(o, 0), 0)
  o.confirm({ boot: 1, seqs: [[1, 1]] }, 900)
  t.equal(o.nextDeadline(), 1000)
  t.equal(o.poll(1000).probe?.seq, 1)
})

t.test('rule 6: without any confirmation within ackFallback of the first PUBACK, readings are released on PUBACK; the first confirmation switches back', async (t) => {
  const o = outbox({ window: 4, ackFallbackMs: 5000 })
  pushSeqs(o, 1, 5)
  const sends = sendAll(o, 0) // 1..4
  t.equal(o.nextDeadline(), undefined, 'the watch starts with the first PUBACK')
  pubackAll(o, sends.slice(0, 3), 100)
  t.equal(o.nextDeadline(), 5100)
  t.same(o.poll(5099), { fellBack: false, released: [], probe: undefined })
  const fell = o.poll(5100)
  t.ok(fell.fellBack)
  t.same(seqsOf(fell.released), [1, 2, 3], 'what the broker acknowledged is released; 4 is still in flight')
  t.equal(o.mode, 'broker')
  t.same(o.poll(99_999), { fellBack: false, released: [], probe: undefined }, 'switching happens once')
  t.equal(o.nextDeadline(), undefined, 'no probes in broker mode')
  t.same(seqsOf(o.puback(sends[3]!.send, 6000)), [4], 'from now on a PUBACK releases')
  t.same(pubackAll(o, sendAll(o, 6000)), [5])
  t.match(o.counts, { released: 5, confirmed: 0 })

  o.connected()
  pushSeqs(o, 6, 7)
  const s = sendAll(o, 7000)
  t.same(pubackAll(o, s.slice(0, 1), 7000), [6], 'broker mode is kept across a reconnect')
  const back = o.confirm({ boot: 7, seqs: [[7, 7]] }, 7100)
  t.ok(back.backToGateway, 'the first confirmation switches back')
  t.equal(o.mode, 'gateway')
  t.same(seqsOf(back.released), [7])
  o.push({ seq: 8 })
  t.same(pubackAll(o, sendAll(o, 7200), 7200), [], 'and a PUBACK releases nothing again')
  t.equal(o.held, 1)
})

t.test('rule 6: the watch is per connection; a confirmation heard on an earlier one does not count', async (t) => {
  const o = outbox({ ackFallbackMs: 5000 })
  o.push({ seq: 1 })
  pubackAll(o, sendAll(o, 0), 0)
  o.confirm({ boot: 7, seqs: [] }, 10)
  t.notOk(o.poll(6000).fellBack, 'heard on this connection')
  o.connected()
  pubackAll(o, sendAll(o, 10_000), 10_000)
  t.equal(o.nextDeadline(), 15_000)
  t.ok(o.poll(15_000).fellBack, 'nothing heard on the new one')
  t.equal(o.held, 0)
})

t.test('parseConfirmation accepts the contract\'s payloads', async (t) => {
  t.same(parseConfirmation('{"boot":7,"seqs":[[1,100],[200,204]]}'), { ok: true, confirmation: { boot: 7, seqs: [[1, 100], [200, 204]] } })
  t.same(parseConfirmation(Buffer.from('{"seqs":[],"boot":0,"later":"ignored"}')), { ok: true, confirmation: { boot: 0, seqs: [] } }, 'empty seqs, other members ignored')
  t.same(parseConfirmation('{"boot":4294967295,"seqs":[[4294967295,4294967295]]}'), { ok: true, confirmation: { boot: 4294967295, seqs: [[4294967295, 4294967295]] } })
  const many = JSON.stringify({ boot: 1, seqs: Array.from({ length: 32 }, (_, i) => [i * 2, i * 2]) })
  t.ok(parseConfirmation(many).ok, '32 ranges')
})

t.test('parseConfirmation refuses malformed payloads, naming why', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['', /not JSON/],
    ['nope', /not JSON/],
    ['{"boot":1,"seqs":[[1,2]]', /not JSON/],
    ['[1,2]', /expected/],
    ['null', /expected/],
    ['7', /expected/],
    ['{"seqs":[[1,2]]}', /boot/],
    ['{"boot":-1,"seqs":[]}', /boot/],
    ['{"boot":1.5,"seqs":[]}', /boot/],
    ['{"boot":"1","seqs":[]}', /boot/],
    ['{"boot":4294967296,"seqs":[]}', /boot/],
    ['{"boot":1}', /seqs/],
    ['{"boot":1,"seqs":{"1":2}}', /seqs/],
    ['{"boot":1,"seqs":[1,2]}', /range/],
    ['{"boot":1,"seqs":[[1]]}', /range/],
    ['{"boot":1,"seqs":[[1,2,3]]}', /range/],
    ['{"boot":1,"seqs":[[1,"2"]]}', /range/],
    ['{"boot":1,"seqs":[[-1,2]]}', /range/],
    ['{"boot":1,"seqs":[[3,2]]}', /from > to/],
    ['{"boot":1,"seqs":[[1,5],[5,9]]}', /ascending and disjoint/],
    ['{"boot":1,"seqs":[[6,9],[1,2]]}', /ascending and disjoint/],
    [JSON.stringify({ boot: 1, seqs: Array.from({ length: 33 }, (_, i) => [i * 2, i * 2]) }), /more than 32/],
    [JSON.stringify({ boot: 1, seqs: [], pad: 'x'.repeat(2100) }), /larger than 2048/],
  ]
  for (const [payload, why] of cases) {
    const r = parseConfirmation(payload)
    t.equal(r.ok, false, `refused: ${payload.slice(0, 60)}`)
    if (!r.ok) t.match(r.reason, why)
  }
})

t.test('refuses options it cannot work with', async (t) => {
  t.throws(() => outbox({ capacity: 0 }), RangeError)
  t.throws(() => outbox({ capacity: 1.5 }), RangeError)
  t.throws(() => outbox({ ackTimeoutMs: 0 }), RangeError)
  t.throws(() => outbox({ ackFallbackMs: Number.NaN }), RangeError)
})
