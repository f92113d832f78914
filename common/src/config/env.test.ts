// loadEnv's unknown-name check: misspelt FERRY_ names are reported with the closest known name instead
// of being ignored without a word, and a missing required setting names its set-but-unknown look-alike.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadEnv } from './env.js'
import { knownSettingNames } from './known-names.js'
import type { UnknownSetting } from './unknown.js'
import { gatewayConfigSchema, type GatewayConfig } from '../../../gateway/src/config.js'
import { otaServerConfigSchema } from '../../../ota-server/src/config.js'
import { tempDir } from '../../../test/helpers/tmp.js'

const certs = { FERRY_MQTT_CA: 'ca.crt', FERRY_MQTT_CERT: 'gw.crt', FERRY_MQTT_KEY: 'gw.key' }
const known = knownSettingNames()

/** Loads the gateway's settings with the check on; returns the config (or the error) and every report. */
function gateway(env: Record<string, string>, dotenvPath = '/nonexistent/.env') {
  const found: UnknownSetting[] = []
  try {
    const config = loadEnv<GatewayConfig>(gatewayConfigSchema, { env, dotenvPath, unknown: { known, report: (u) => found.push(u) } })
    return { config, found }
  } catch (err) {
    return { err: err as Error & { code?: string }, found }
  }
}

t.test('a misspelt name is reported with the closest known name, and the default still applies', async (t) => {
  const r = gateway({ ...certs, FERRY_SINKZ: 'influxdb' })
  t.same(r.found, [{
    name: 'FERRY_SINKZ',
    sources: ['the environment'],
    suggestions: ['FERRY_SINKS'],
    message: 'unknown setting FERRY_SINKZ (from the environment) ignored; did you mean FERRY_SINKS?',
  }])
  t.equal(r.config?.FERRY_SINKS, 'file', 'the misspelt value is not used')
})

t.test('a name far from every known one says so and points at the settings list', async (t) => {
  const r = gateway({ ...certs, FERRY_FROBNICATE: '1' })
  t.same(r.found.map((u) => [u.suggestions, u.message]), [[[], 'unknown setting FERRY_FROBNICATE (from the environment) ignored; "ferry config" lists the known settings']])
})

t.test('names read by the OTA server, by docker-compose or by the tooling are not reported', async (t) => {
  const others = {
    FERRY_OTA_PORT: '8443', FERRY_OTA_DIR: '/srv/ota', FERRY_OTA_PUB: 'release.pub', FERRY_ENV_FILE: '/nonexistent/.env',
    FERRY_HOST_PKI_DIR: './pki', FERRY_HOST_OTA_DIR: './ota', FERRY_PUBLISH_HTTP: '127.0.0.1:8080', FERRY_PUBLISH_OTA: '8443',
    FERRY_PUBLISH_MQTT: '8883', FERRY_PUBLISH_GRAFANA: '127.0.0.1:3000', FERRY_GRAFANA_ADMIN_PASSWORD: 'secret', FERRY_IMAGE_TAG: 'local',
    FERRY_SKIP_APT: '1', FERRY_BENCH_TRACE: '1', FERRY_CHROMIUM: '/usr/bin/chromium',
  }
  const r = gateway({ ...certs, ...others })
  t.same(r.found, [], 'the gateway reports none of them')
  t.ok(r.config, 'and starts')

  const found: UnknownSetting[] = []
  loadEnv(otaServerConfigSchema, {
    env: { ...others, FERRY_OTA_CERT: 's.crt', FERRY_OTA_KEY: 's.key', FERRY_OTA_CA: 'ca.crt', FERRY_SINKS: 'influxdb', FERRY_INFLUX_TOKEN: 'tok', ...certs },
    dotenvPath: '/nonexistent/.env',
    unknown: { known, report: (u) => found.push(u) },
  })
  t.same(found, [], "nor does the OTA server report the gateway's names")
})

t.test('an unknown name in the dotenv file is reported with the file name', async (t) => {
  const dotenv = join(tempDir(t), 'gw.env')
  writeFileSync(dotenv, 'FERRY_INFLUX_TOKN=abc\nFERRY_PUBLISH_HTTP=8080\nFERRY_SINKZ=influxdb\nFERRY_EMPTY=\n')
  const r = gateway({ ...certs, FERRY_SINKZ: 'file' }, dotenv)
  t.same(r.found.map((u) => u.message), [
    `unknown setting FERRY_SINKZ (from the environment and ${dotenv}) ignored; did you mean FERRY_SINKS?`,
    `unknown setting FERRY_INFLUX_TOKN (from ${dotenv}) ignored; did you mean FERRY_INFLUX_TOKEN?`,
  ], 'one report per name, naming every place it was set; empty values count as not set')
})

t.test('a missing required setting names its set-but-unknown look-alike', async (t) => {
  const r = gateway({ FERRY_MQTT_CAA: 'ca.crt', FERRY_MQTT_CERT: 'gw.crt', FERRY_MQTT_KEY: 'gw.key' })
  t.equal(r.err?.code, 'FERRY_ERR_CONFIG')
  t.equal(r.err?.message, [
    'invalid configuration; fix these and start again:',
    '  FERRY_MQTT_CA: is required (not set). Path to the CA certificate (PEM) that signed the broker certificate (the PKI ca.crt). Did you mean it as FERRY_MQTT_CAA, which is set but unknown?',
  ].join('\n'))
  t.same(r.found.map((u) => u.name), ['FERRY_MQTT_CAA'], 'and the warning is reported before the error')

  const plain = gateway({ FERRY_MQTT_CERT: 'gw.crt', FERRY_MQTT_KEY: 'gw.key', FERRY_FROBNICATE: 'x' })
  t.notMatch(plain.err?.message, /Did you mean/, 'no look-alike, no hint')
})

t.test('without the unknown option nothing is checked', async (t) => {
  t.equal(loadEnv<GatewayConfig>(gatewayConfigSchema, { env: { ...certs, FERRY_SINKZ: 'influxdb' }, dotenvPath: '/nonexistent/.env' }).FERRY_SINKS, 'file')
  t.throws(() => loadEnv(gatewayConfigSchema, { env: { FERRY_MQTT_CAA: 'x', FERRY_MQTT_CERT: 'c', FERRY_MQTT_KEY: 'k' }, dotenvPath: '/nonexistent/.env' }), {
    message: /FERRY_MQTT_CA: is required \(not set\)\. Path to the CA certificate \(PEM\) that signed the broker certificate \(the PKI ca\.crt\)\.$/,
  })
})
