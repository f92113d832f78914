import t from 'tap'
import { toIngestItem } from './index.js'

const item = (topic: string, body: string) => toIngestItem(topic, Buffer.from(body), 1000, 1024)

t.test('each topic kind goes to its handler', async (t) => {
  t.match(item('sensors/dev1/telemetry', '{"seq":1,"boot":1,"pot":1,"switch":0}'), { type: 'reading', device: 'dev1', seq: 1 })
  t.match(item('sensors/dev1/status', 'online'), { type: 'event', kind: 'status' })
  t.match(item('sensors/dev1/led/state', '{"brightness":5}'), { type: 'event', kind: 'led_state' })
  t.match(item('sensors/dev1/ota/status', '{"deployment":"d1","state":"verified","version":"1.0.0"}'), { type: 'event', kind: 'ota_status' })
})

t.test('a topic that does not parse is a dead letter with the parser\'s reason', async (t) => {
  t.same(item('sensors/dev1/led/set', '{}'), { type: 'dead', topic: 'sensors/dev1/led/set', device: 'dev1', reason: 'unknown topic kind "led/set"', payload: Buffer.from('{}'), receivedAt: 1000 })
  t.match(item('sensors/BAD/telemetry', '{}'), { type: 'dead', device: null, reason: /not allowed/ })
})

t.test('a handler that throws (a bug) still gives a dead letter, never an exception', async (t) => {
  // A payload whose decoding throws stands in for a bug inside a handler.
  const payload = { length: 2, toString: () => { throw new TypeError('boom') } } as unknown as Buffer
  t.same(toIngestItem('sensors/dev1/status', payload, 1000, 1024), {
    type: 'dead',
    topic: 'sensors/dev1/status',
    device: null,
    reason: 'internal error while parsing: boom',
    payload,
    receivedAt: 1000,
  })
})
