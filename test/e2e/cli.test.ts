// The `ferry` command as a user runs it: exit codes, messages that say what to do, and `ferry broker`
// forwarding signals to a real mosquitto.
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.js'
import { freePort } from '../helpers/ports.js'
import { spawnFerry } from '../helpers/gateway.js'
import { connectOnce } from '../helpers/mqtt.js'
import { makePki } from '../helpers/pki.js'

const ROOT = join(import.meta.dirname, '..', '..')
const ferry = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } })

t.test('ferry pki: the happy path, list warnings, and refusals with exit codes', async (t) => {
  const dir = join(tempDir(t), 'pki')
  t.equal(ferry(['pki', 'init', '--dir', dir]).status, 0)
  t.equal(ferry(['pki', 'server', '--dir', dir, '--host', 'broker.local', '--ip', '10.0.0.2']).status, 0)
  t.equal(ferry(['pki', 'device', 'node-01', '--dir', dir]).status, 0)
  t.equal(ferry(['pki', 'device', 'short', '--dir', dir, '--days', '5']).status, 0)
  const again = ferry(['pki', 'init', '--dir', dir])
  t.equal(again.status, 1, 'an existing CA is not overwritten')
  t.match(again.stderr, /--force/)
  const bad = ferry(['pki', 'device', 'Node_01', '--dir', dir])
  t.equal(bad.status, 2, 'a bad device id is a usage error')
  t.match(bad.stderr, /invalid device id "Node_01": use 1-63 characters/)
  const list = ferry(['pki', 'list', '--dir', dir])
  t.equal(list.status, 0)
  t.match(list.stdout, /device +CN=node-01, O=Ferry +serial [0-9a-f]+ +expires \S+ +ok/)
  t.match(list.stdout, /CN=short.*WARNING: expires in [45] days/)
  t.match(list.stderr, /warning: .*short\.crt: expires in/)
  t.equal(ferry(['pki', 'revoke', 'node-01', '--dir', dir]).status, 0)
  t.match(ferry(['pki', 'list', '--dir', dir]).stdout, /CN=node-01.*REVOKED/)
  t.equal(ferry(['pki', 'frobnicate', '--dir', dir]).status, 2)
  t.equal(ferry(['nonsense']).status, 2)
  t.match(ferry(['--help']).stdout, /usage: ferry <command>/)
})

t.test('ferry broker runs mosquitto, applies a revocation on SIGHUP and exits with its status', async (t) => {
  const pki = await makePki(t, ['dev1', 'dev2'])
  const port = await freePort()
  const data = join(tempDir(t), 'data')
  const broker = spawnFerry(t, ['broker', '--pki', pki.dir, '--data', data, '--port', String(port), '--bind', '127.0.0.1'], {})
  await broker.waitFor(/accepting connections on port/)
  const url = `mqtts://localhost:${port}`
  t.ok((await connectOnce(t, url, pki.tls('dev1'))).connected, 'a device connects')

  // TLS 1.1 is refused; TLS 1.2 with a client certificate is accepted.
  const s11 = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_1', '-CAfile', pki.files.caCert, '-cert', pki.files.deviceCert('dev2'), '-key', pki.files.deviceKey('dev2')], { input: '', encoding: 'utf8', timeout: 10_000 })
  t.not(s11.status, 0, 'TLS 1.1 handshake fails')
  const s12 = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-CAfile', pki.files.caCert, '-cert', pki.files.deviceCert('dev2'), '-key', pki.files.deviceKey('dev2')], { input: '', encoding: 'utf8', timeout: 10_000 })
  t.match(s12.stdout, /Protocol *: TLSv1\.2/, 'TLS 1.2 handshake succeeds')

  execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'pki', 'revoke', 'dev1', '--dir', pki.dir])
  broker.child.kill('SIGHUP')
  await broker.waitFor(/Reloading config/)
  await t.rejects(connectOnce(t, url, pki.tls('dev1')), 'the revoked device is refused after SIGHUP')
  t.ok((await connectOnce(t, url, pki.tls('dev2'))).connected, 'others still connect')

  broker.child.kill('SIGTERM')
  const exit = await broker.exited
  t.equal(exit.code, 0, "exits with mosquitto's status after a clean stop")
  t.ok(existsSync(join(data, 'persist', 'mosquitto.db')), 'the broker saved its persistence on the way out')
})

t.test('ferry broker as root with --data inside a 0700 folder names the folder and the fix, and starts nothing', async (t) => {
  const pki = await makePki(t, ['dev1'])
  const port = await freePort()
  const home = join(tempDir(t), 'home')
  mkdirSync(home, { mode: 0o700 })
  const data = join(home, 'x')
  // Root's mosquitto drops to user mosquitto, which cannot enter `home`; any other user's mosquitto keeps that user.
  const drops = process.getuid?.() === 0 && /^mosquitto:/m.test(readFileSync('/etc/passwd', 'utf8'))
  if (drops) {
    const r = ferry(['broker', '--pki', pki.dir, '--data', data, '--port', String(port), '--bind', '127.0.0.1'])
    t.equal(r.status, 1, 'a broker that cannot start is a run-time failure (exit 1)')
    t.match(r.stderr, `cannot enter ${home} (mode 0700)`, 'names the folder')
    t.match(r.stderr, `chmod o+x ${home}`, 'and the fix')
    t.match(r.stderr, /choose a --data folder it can reach/)
    t.notMatch(r.stderr, /process exited before port/, 'refused before mosquitto was started')
    t.notOk(existsSync(data), 'the data folder was not created')
  } else {
    const broker = spawnFerry(t, ['broker', '--pki', pki.dir, '--data', data, '--port', String(port), '--bind', '127.0.0.1'], {})
    await broker.waitFor(/accepting connections on port/)
    t.pass('mosquitto does not change user, so a private folder of ours is fine')
    broker.child.kill('SIGTERM')
    t.equal((await broker.exited).code, 0)
  }
})

t.test('ferry gateway with a bad setting exits 2, names the variable, and never creates the buffer', async (t) => {
  const dir = tempDir(t)
  const db = join(dir, 'buffer.db')
  const r = ferry(['gateway'], {
    FERRY_MQTT_CA: '/nonexistent/ca.crt',
    FERRY_MQTT_CERT: '/nonexistent/gw.crt',
    FERRY_MQTT_KEY: '/nonexistent/gw.key',
    FERRY_DB: db,
    FERRY_BUFFER_MAX_ROWS: 'many',
    FERRY_HTTP_PORT: '0',
    FERRY_ENV_FILE: join(dir, 'none.env'),
  })
  t.equal(r.status, 2)
  t.match(r.stderr, /FERRY_BUFFER_MAX_ROWS: must be integer \(got "many"\)/)
  t.notOk(existsSync(db), 'the buffer was not touched')
  const missing = ferry(['gateway'], { FERRY_DB: db, FERRY_HTTP_PORT: '0', FERRY_ENV_FILE: join(dir, 'none.env'), FERRY_MQTT_CA: 'x', FERRY_MQTT_CERT: 'y', FERRY_MQTT_KEY: 'z' })
  t.equal(missing.status, 2, 'unreadable certificate paths stop the gateway as a configuration error')
  t.match(missing.stderr, /FERRY_MQTT_CA: cannot read x \(ENOENT\)/)
  t.notOk(existsSync(db), 'still no buffer: certificates are read before the buffer is opened')
})

t.test('ferry gateway reads its settings from a dotenv file', async (t) => {
  const dir = tempDir(t)
  const envFile = join(dir, 'gw.env')
  execFileSync('sh', ['-c', `printf 'FERRY_BUFFER_MAX_ROWS=nope\\n' > ${envFile}`])
  const r = ferry(['gateway'], { FERRY_ENV_FILE: envFile, FERRY_MQTT_CA: 'a', FERRY_MQTT_CERT: 'b', FERRY_MQTT_KEY: 'c', FERRY_HTTP_PORT: '0' })
  t.equal(r.status, 2)
  t.match(r.stderr, /FERRY_BUFFER_MAX_ROWS: must be integer \(got "nope"\)/, 'the value came from the dotenv file')
})
