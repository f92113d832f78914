// `ferry gateway` as a real process with its HTTP API and TalkBack settings from the environment:
// it refuses a state-changing API without a token, and plain HTTP beyond loopback, before touching the
// buffer; with a token it serves /healthz, relays a TalkBack command to a device, and takes LED
// commands over HTTP on loopback and over HTTPS (issue 19: real curl with the Ferry CA, client
// certificates for machine clients, the token never in the log).
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { connect } from 'node:tls'
import { once } from 'node:events'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { MqttClient } from 'mqtt'
import { issueDevice, revokeDevice } from '../../common/src/pki/pki.js'
import { startTestBroker } from '../helpers/mosquitto.js'
import { tempDir } from '../helpers/tmp.js'
import { gatewayEnv, deviceClient, spawnFerry } from '../helpers/gateway.js'
import { freePort } from '../helpers/ports.js'
import { waitUntil } from '../helpers/wait.js'
import { FakeTalkBack } from '../fakes/talkback.js'

const TOKEN = 'process-test-token-0123456789'
const exec = promisify(execFile)

interface Curl {
  /** curl's exit code: 0, or e.g. 60 (certificate not verified), 35/56 (TLS refused), 52 (empty reply). */
  exit: number
  status: number
  body: string
  stderr: string
}

/** The real curl; never rejects, so refusals can be asserted. */
async function curl(args: string[]): Promise<Curl> {
  try {
    const { stdout, stderr } = await exec('curl', ['-sS', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', ...args])
    const nl = stdout.lastIndexOf('\n')
    return { exit: 0, status: Number(stdout.slice(nl + 1)), body: stdout.slice(0, nl), stderr }
  } catch (err) {
    const e = err as { code?: number; stderr?: string }
    return { exit: typeof e.code === 'number' ? e.code : -1, status: 0, body: '', stderr: e.stderr ?? '' }
  }
}

/** A device that is online and records the LED commands it receives. */
async function ledDevice(t: Parameters<typeof deviceClient>[0], broker: Parameters<typeof deviceClient>[1], id: string): Promise<{ dev: MqttClient; got: Array<{ cmd: string; brightness: number }> }> {
  const dev = await deviceClient(t, broker, id)
  const got: Array<{ cmd: string; brightness: number }> = []
  dev.on('message', (_t, p) => p.length && got.push(JSON.parse(p.toString())))
  await dev.subscribeAsync(`sensors/${id}/led/set`, { qos: 1 })
  await dev.publishAsync(`sensors/${id}/status`, 'online', { qos: 1, retain: true })
  return { dev, got }
}

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

t.test('plain HTTP beyond loopback exits 2 saying what to set, before opening the buffer; FERRY_HTTP_INSECURE=true starts it with a warning', async (t) => {
  const broker = await startTestBroker(t)
  const dir = tempDir(t)
  const port = await freePort()
  const env = gatewayEnv(broker, dir, { FERRY_HTTP_PORT: String(port), FERRY_HTTP_HOST: '0.0.0.0', FERRY_API_TOKEN: TOKEN })
  const refused = spawnFerry(t, ['gateway'], env)
  t.equal((await refused.exited).code, 2)
  t.match(refused.lines.join('\n'), /FERRY_HTTP_HOST=0\.0\.0\.0 serves the API beyond this host over plain HTTP.*Set FERRY_HTTP_TLS_CERT and FERRY_HTTP_TLS_KEY/)
  t.notOk(existsSync(join(dir, 'buffer.db')), 'the buffer was not created')

  const halfPair = spawnFerry(t, ['gateway'], { ...env, FERRY_HTTP_TLS_CERT: broker.pki.files.serverCert })
  t.equal((await halfPair.exited).code, 2)
  t.match(halfPair.lines.join('\n'), /FERRY_HTTP_TLS_CERT is set but FERRY_HTTP_TLS_KEY is not/)
  t.notOk(existsSync(join(dir, 'buffer.db')), 'still no buffer')

  const insecure = spawnFerry(t, ['gateway'], { ...env, FERRY_HTTP_INSECURE: 'true' })
  const warning = await insecure.waitFor(/FERRY_HTTP_INSECURE=true/)
  t.match(JSON.parse(warning), { level: 40, host: '0.0.0.0', msg: /WITHOUT TLS.*in clear/ }, 'a WARN line on start')
  await insecure.waitFor(/HTTP API and dashboard listening/)
  t.equal((await curl([`http://127.0.0.1:${port}/healthz`])).exit, 0, 'served over plain HTTP')
  insecure.child.kill('SIGTERM')
  t.equal((await insecure.exited).code, 0)
})

t.test('over HTTPS with the Ferry CA: curl gets 401, 400 and 202, listed client certificates stand in for the token, and the token stays out of the log', async (t) => {
  const broker = await startTestBroker(t)
  const pki = broker.pki
  const f = pki.files
  // Machine clients: "automation" is listed; "retired" is listed but revoked; dev2 is a device, not listed.
  await issueDevice(pki.dir, 'automation')
  await issueDevice(pki.dir, 'retired')
  await revokeDevice(pki.dir, 'retired')
  const port = await freePort()
  const dir = tempDir(t)
  const env = gatewayEnv(broker, dir, {
    FERRY_HTTP_PORT: String(port),
    FERRY_HTTP_HOST: '127.0.0.1',
    FERRY_API_TOKEN: TOKEN,
    FERRY_HTTP_TLS_CERT: f.serverCert,
    FERRY_HTTP_TLS_KEY: f.serverKey,
    FERRY_HTTP_TLS_CLIENT_CA: f.caCert,
    FERRY_HTTP_TLS_CLIENT_NAMES: 'automation,retired',
    FERRY_HTTP_TLS_CRL: f.crl,
    // The most verbose level: the token must not appear even there.
    FERRY_LOG_LEVEL: 'trace',
  })
  const { got } = await ledDevice(t, broker, 'dev1')
  const gw = spawnFerry(t, ['gateway'], env)
  const listening = await gw.waitFor(/HTTP API and dashboard listening/)
  t.match(JSON.parse(listening), { scheme: 'https', clientCerts: ['automation', 'retired'] })

  // The server certificate names 127.0.0.1 and localhost (test/helpers/pki.ts), as `ferry pki server --ip … --host …`.
  const base = `https://127.0.0.1:${port}`
  const ca = ['--cacert', f.caCert]
  const as = (id: string) => ['--cert', f.deviceCert(id), '--key', f.deviceKey(id)]
  const led = (brightness: unknown, extra: string[]) => curl([...ca, ...extra, '-X', 'POST', '-H', 'content-type: application/json', '-d', JSON.stringify({ brightness }), `${base}/api/devices/dev1/led`])
  const bearer = (token: string) => ['-H', `Authorization: Bearer ${token}`]

  await waitUntil(async () => (await curl([...ca, `${base}/healthz`])).status === 200, '/healthz to be ok over HTTPS')

  const none = await led(10, [])
  t.equal(none.status, 401, 'no token: 401')
  t.equal(JSON.parse(none.body).code, 'FERRY_ERR_API_UNAUTHORIZED')
  t.equal((await led(10, bearer('wrong-token-0123456789abcdef'))).status, 401, 'wrong token: 401')
  const bad = await led(101, bearer(TOKEN))
  t.equal(bad.status, 400, 'brightness 101: 400')
  t.equal(JSON.parse(bad.body).code, 'FERRY_ERR_API_BAD_REQUEST')
  t.same(got, [], 'nothing reached the device yet')

  const ok = await led(42, bearer(TOKEN))
  t.equal(ok.status, 202, 'the token: 202')
  await waitUntil(() => got.length === 1, 'the command at the device')
  t.equal(got[0]!.brightness, 42)

  const machine = await led(43, as('automation'))
  t.equal(machine.status, 202, 'a listed client certificate without a token: 202')
  await waitUntil(() => got.length === 2, 'the machine client\'s command at the device')
  t.equal(got[1]!.brightness, 43)
  t.equal((await led(44, as('dev2'))).status, 401, 'a device certificate (not listed): 401')
  t.equal((await led(44, as('retired'))).status, 401, 'a listed but revoked certificate: 401')

  // Only the Ferry CA vouches for the server; plain HTTP and old TLS get nothing.
  const untrusted = await curl([`${base}/healthz`])
  t.equal(untrusted.exit, 60, `without --cacert curl cannot verify the server (${untrusted.stderr.trim()})`)
  const plain = await curl([`http://127.0.0.1:${port}/healthz`])
  t.not(plain.exit, 0, `plain HTTP on the HTTPS port gets no answer (curl exit ${plain.exit})`)
  t.equal((await curl([...ca, '--tlsv1.2', '--tls-max', '1.2', `${base}/healthz`])).status, 200, 'TLS 1.2 is accepted')
  const tls11 = connect({ host: '127.0.0.1', port, ca: readFileSync(f.caCert), minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })
  const [err] = (await once(tls11, 'error')) as [Error]
  t.match(err.message, /protocol version|unsupported protocol/i, 'TLS 1.1 is refused')

  // `ferry status` reads the buffer itself, so it works whatever the API's transport.
  const status = spawnFerry(t, ['status', '--db', join(dir, 'buffer.db')], {})
  t.equal((await status.exited).code, 0)
  t.match(status.lines.join('\n'), /^buffered: /m)

  gw.child.kill('SIGTERM')
  t.equal((await gw.exited).code, 0)
  t.ok(gw.lines.length > 10, `the gateway logged (${gw.lines.length} lines)`)
  t.same(gw.lines.filter((l) => l.includes(TOKEN) || l.includes('wrong-token-0123456789abcdef')), [], 'no token in the log')
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
  const { got } = await ledDevice(t, broker, 'dev1')

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
