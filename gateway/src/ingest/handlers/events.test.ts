import t from 'tap'
import { handleEvent } from './events.js'
import type { EventIn } from '../../buffer/index.js'

const handle = (kind: EventIn['kind'], body: unknown, maxBytes = 4096) =>
  handleEvent(`sensors/dev1/${kind}`, 'dev1', kind, Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), 1000, maxBytes)

t.test('status: online and offline are events; anything else a dead letter', async (t) => {
  t.match(handle('status', 'online'), { type: 'event', kind: 'status', device: 'dev1', receivedAt: 1000 })
  t.match(handle('status', 'offline'), { type: 'event', kind: 'status' })
  t.match(handle('status', 'ONLINE'), { type: 'dead', reason: 'status must be "online" or "offline"' })
  t.match(handle('status', ''), { type: 'dead' })
})

t.test('led/state: brightness 0..100 and an optional short cmd', async (t) => {
  t.match(handle('led_state', { cmd: 'c1', brightness: 40 }), { type: 'event', kind: 'led_state' })
  t.match(handle('led_state', { brightness: 0 }), { type: 'event' })
  t.match(handle('led_state', { brightness: 101 }), { type: 'dead', reason: '"brightness" must be an integer 0..100' })
  t.match(handle('led_state', { brightness: 50, cmd: 'x'.repeat(65) }), { type: 'dead', reason: /"cmd" must be a string/ })
  t.match(handle('led_state', '[]'), { type: 'dead', reason: 'led_state must be a JSON object' })
  t.match(handle('led_state', 'nope'), { type: 'dead', reason: /^not JSON/ })
})

t.test('ota/status: checked with the OTA server schema (the same as POST /ota/report)', async (t) => {
  const ok = { deployment: 'esp32dev-1.4.0', state: 'installed', version: '1.4.0' }
  t.match(handle('ota_status', ok), { type: 'event', kind: 'ota_status' })
  t.match(handle('ota_status', { ...ok, state: 'failed', reason: 'bad_signature' }), { type: 'event' })
  const cases: Array<[unknown, string | RegExp]> = [
    [{ ...ok, state: 'exploded' }, '"state" must be one of downloading|verified|installed|failed|rolled-back'],
    [{ ...ok, version: '1' }, '"version" must be a semantic version such as 1.4.0'],
    [{ ...ok, deployment: 'has space' }, /^"deployment" must be the manifest's deployment id/],
    [{ ...ok, reason: 'x'.repeat(513) }, '"reason" must be a string of at most 512 characters'],
    [{ state: 'installed', version: '1.4.0' }, /deployment/],
    [{ ...ok, extra: 1 }, /additional propert|unknown field "extra"/],
  ]
  for (const [body, reason] of cases) t.match(handle('ota_status', body), { type: 'dead', device: 'dev1', reason }, JSON.stringify(body))
})

t.test('a payload over the limit is a dead letter, whatever the kind', async (t) => {
  for (const kind of ['status', 'led_state', 'ota_status'] as const) {
    t.match(handle(kind, 'online', 3), { type: 'dead', reason: /more than FERRY_INGEST_MAX_PAYLOAD_BYTES=3/ }, kind)
  }
})
