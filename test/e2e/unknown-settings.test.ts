// A misspelt FERRY_ name as a user meets it: `ferry gateway` and `ferry ota-server` warn about it at
// start with the closest known name (through the logger, or on stderr when start-up stops first), and
// never about the names the other service or docker-compose reads from the same .env.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.js'

const ROOT = join(import.meta.dirname, '..', '..')
const ferry = (args: string[], env: Record<string, string>) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), ...args], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } })

/** The `msg` of every WARN line the gateway logged (pino JSON on stdout). */
const warnings = (stdout: string) =>
  stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40).map((l) => l.msg)

t.test('ferry gateway logs each unknown setting with the closest known name, from the environment and the dotenv file', async (t) => {
  const dir = tempDir(t)
  const envFile = join(dir, 'gateway.env')
  // The OTA server's and docker-compose's names sit in the same .env under Compose: not reported.
  writeFileSync(envFile, 'FERRY_INFLUX_TOKN=secret\nFERRY_OTA_PORT=8443\nFERRY_PUBLISH_HTTP=127.0.0.1:8080\nFERRY_HOST_PKI_DIR=./pki\n')
  const db = join(dir, 'buffer.db')
  // Readable settings, unreadable certificates: the logger exists and then start-up stops (exit 2)
  // before the buffer is opened or the broker is dialled.
  const r = ferry(['gateway'], {
    FERRY_ENV_FILE: envFile,
    FERRY_SINKZ: 'influxdb',
    FERRY_MQTT_CA: join(dir, 'missing-ca.crt'),
    FERRY_MQTT_CERT: join(dir, 'missing-gw.crt'),
    FERRY_MQTT_KEY: join(dir, 'missing-gw.key'),
    FERRY_DB: db,
    FERRY_FILE_PATH: join(dir, 'out', 'telemetry.lp'),
    FERRY_HTTP_PORT: '0',
  })
  t.equal(r.status, 2, r.stderr)
  t.match(r.stderr, /FERRY_MQTT_CA: cannot read .*missing-ca\.crt \(ENOENT\)/)
  t.same(warnings(r.stdout), [
    'unknown setting FERRY_SINKZ (from the environment) ignored; did you mean FERRY_SINKS?',
    `unknown setting FERRY_INFLUX_TOKN (from ${envFile}) ignored; did you mean FERRY_INFLUX_TOKEN?`,
  ])
  t.notMatch(r.stderr, /warning/, 'the logger took the warnings')
  t.notOk(existsSync(db), 'the buffer was not touched')
})

t.test('ferry gateway with a required setting missing names its misspelt look-alike, and warns on stderr', async (t) => {
  const dir = tempDir(t)
  const db = join(dir, 'buffer.db')
  const r = ferry(['gateway'], { FERRY_ENV_FILE: join(dir, 'none.env'), FERRY_MQTT_CAA: 'ca.crt', FERRY_MQTT_CERT: 'gw.crt', FERRY_MQTT_KEY: 'gw.key', FERRY_DB: db, FERRY_HTTP_PORT: '0' })
  t.equal(r.status, 2)
  t.equal(r.stderr, [
    'ferry gateway: warning: unknown setting FERRY_MQTT_CAA (from the environment) ignored; did you mean FERRY_MQTT_CA?',
    'ferry gateway: invalid configuration; fix these and start again:',
    '  FERRY_MQTT_CA: is required (not set). Path to the CA certificate (PEM) that signed the broker certificate (the PKI ca.crt). Did you mean it as FERRY_MQTT_CAA, which is set but unknown?',
    '',
  ].join('\n'))
  t.notOk(existsSync(db))
})

t.test("ferry ota-server warns about its own typos but not about the gateway's or docker-compose's names", async (t) => {
  const dir = tempDir(t)
  const r = ferry(['ota-server'], {
    FERRY_ENV_FILE: join(dir, 'none.env'),
    FERRY_OTA_PRT: '9443',
    FERRY_SINKS: 'influxdb',
    FERRY_MQTT_CA: 'ca.crt',
    FERRY_PUBLISH_OTA: '8443',
  })
  t.equal(r.status, 2, 'required settings are missing')
  t.same(r.stderr.split('\n').filter((l) => l.includes('warning')), [
    'ferry ota-server: warning: unknown setting FERRY_OTA_PRT (from the environment) ignored; did you mean FERRY_OTA_PORT?',
  ])
  t.match(r.stderr, /FERRY_OTA_DIR: is required \(not set\)/)
})
