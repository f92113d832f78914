import t from 'tap'
import { backoffDelayMs, Reconnector } from './backoff.js'

t.test('full jitter stays within min(cap, base * 2^attempt)', async (t) => {
  t.equal(backoffDelayMs(0, 500, 60_000, 0.999999), 500)
  t.equal(backoffDelayMs(3, 500, 60_000, 0.999999), 4000)
  t.equal(backoffDelayMs(3, 500, 60_000, 0), 0)
  t.ok(backoffDelayMs(30, 500, 60_000, 0.999999) <= 60_000, 'no overflow past the cap (docs/firmware-notes.md#reconnect-backoff)')
  t.ok(backoffDelayMs(1e6, 500, 60_000, 0.999999) <= 60_000)
})

t.test('the attempt counter resets only after a stable connection', async (t) => {
  let now = 0
  const r = new Reconnector({ baseMs: 100, capMs: 10_000, stableMs: 5000, random: () => 0.999999, now: () => now })
  t.equal(r.next(), 100)
  t.equal(r.next(), 200)
  r.connected()
  now += 1000
  t.equal(r.next(), 400, 'a short-lived connection keeps backing off')
  r.connected()
  now += 5000
  t.equal(r.next(), 100, 'a stable one starts over')
})
