import t from 'tap'
import { SlotCounter } from './download-slots.js'

t.test('a key gets at most max slots, other keys are not affected', async (t) => {
  const slots = new SlotCounter(2)
  const a1 = slots.take('dev1')
  const a2 = slots.take('dev1')
  t.ok(a1 && a2)
  t.equal(slots.take('dev1'), undefined, 'a third slot is refused')
  t.ok(slots.take('dev2'), 'another device still gets one')
  t.equal(slots.holding('dev1'), 2)
})

t.test('a release gives the slot back once, however often it is called', async (t) => {
  const slots = new SlotCounter(1)
  const release = slots.take('dev1')!
  release()
  release()
  t.equal(slots.holding('dev1'), 0)
  const again = slots.take('dev1')
  t.ok(again, 'the slot is free again')
  release()
  t.equal(slots.take('dev1'), undefined, 'a stale release does not free the new holder\'s slot')
  again!()
  t.equal(slots.holding('dev1'), 0)
})
