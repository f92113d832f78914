// `ferry gateway` as a real process with its HTTP API and TalkBack settings from the environment:
// it refuses a state-changing API without a token before touching the buffer, and with a token it
// serves /healthz, relays a TalkBack command to a device, and takes LED commands over HTTP.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { startTestBroker } from '../helpers/mosquitto.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, spawnFerry } from '../helpers/gateway.js'
import { freePort } from '../helpers/ports.js'
import { waitUntil } from '../helpers/wait.js'
import { FakeTalkBack } from '../fakes/talkback.js'

const TOKEN = 'process-test-token-0123456789'

t.test('without FERRY_API_TOKEN the gateway exits 2 naming the variable, before opening the buffer', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const env = gatewayEnv(broker, dir, { FERRY_HTTP_PORT: String(await freePort()) })
  const gw = spawnFerry(t, ['gateway'], env)
  const { code } = await gw.exited
  t.equal(code, 2)
  t.match(gw.lines.join('\n'), /FERRY_API_TOKEN is not set.*FERRY_API_READ_ONLY=true/)
  t.notOk(existsSync(join(dir, 'buffer.db')), 'the buffer was not created')

  const half = spawnFerry(t, ['gateway'], { ...env, FERRY_API_TOKEN: TOKEN, FERRY_THINGSPEAK_TALKBACK_ID: '5' })
  t.equal((await half.exited).code, 2)
  t.match(half.lines.join('\n'), /FERRY_THINGSPEAK_TALKBACK_KEY is not set/)
})

t.test('with a token the process serves the API and relays TalkBack and HTTP commands to the device', async (t) => {
  const broker = await startTestBroker(t)
  const fake = new FakeTalkBack({ talkbackId: '12', apiKey: 'TALKBACKKEY12345' })
  const tbUrl = await fake.start()
  t.teardown(() => fake.close())
  fake.add('LED=35')
  const port = await freePort()
  const env = gatewayEnv(broker, tempDir(t), {
    FERRY_HTTP_PORT: String(port),
    FERRY_HTTP_HOST: '127.0.0.1',
    FERRY_API_TOKEN: TOKEN,
    FERRY_THINGSPEAK_URL: tbUrl,
    FERRY_THINGSPEAK_TALKBACK_ID: '12',
    FERRY_THINGSPEAK_TALKBACK_KEY: 'TALKBACKKEY12345',
    FERRY_TALKBACK_POLL_MS: '1000',
    FERRY_TALKBACK_DEFAULT_DEVICE: 'dev1',
  })
  const dev = await deviceClient(t, broker, 'dev1')
  const got: Array<{ cmd: string; brightness: number }> = []
  dev.on('message', (_t, p) => p.length && got.push(JSON.parse(p.toString())))
  await dev.subscribeAsync('sensors/dev1/led/set', { qos: 1 })
  await dev.publishAsync('sensors/dev1/status', 'online', { qos: 1, retain: true })

  const gw = spawnFerry(t, ['gateway'], env)
  await gw.waitFor(/HTTP API and dashboard listening/)
  const base = `http://127.0.0.1:${port}`
  await waitUntil(async () => (await fetch(`${base}/healthz`)).status === 200, '/healthz to be ok')
  await waitUntil(() => got.length === 1, 'the TalkBack command at the device')
  t.equal(got[0]!.brightness, 35)

  const res = await fetch(`${base}/api/devices/dev1/led`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ brightness: 90 }) })
  t.equal(res.status, 202)
  await waitUntil(() => got.length === 2, 'the HTTP command at the device')
  t.equal(got[1]!.brightness, 90)
  const status = (await (await fetch(`${base}/api/status`)).json()) as { commands: { talkback: { commands: number; state: string } } }
  t.match(status.commands.talkback, { commands: 1, state: 'polling' })

  gw.child.kill('SIGTERM')
  t.equal((await gw.exited).code, 0, 'stops cleanly with the poller and API running')
})
