// Secret settings: their values never appear in a configuration error, and a token the operator makes
// up (FERRY_API_TOKEN) must look random.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Type } from 'typebox'
import { describeSchema, loadEnv } from './env.js'
import { isSecret, randomTokenProblem } from './secrets.js'
import { gatewayConfigSchema } from '../../../gateway/src/config.js'
import { otaServerConfigSchema } from '../../../ota-server/src/config.js'

const NO_DOTENV = '/nonexistent/.env'
const gatewayBase = { FERRY_MQTT_CA: 'ca.crt', FERRY_MQTT_CERT: 'gw.crt', FERRY_MQTT_KEY: 'gw.key' }
const otaBase = { FERRY_OTA_DIR: '/srv/ota', FERRY_OTA_CERT: 's.crt', FERRY_OTA_KEY: 's.key', FERRY_OTA_CA: 'ca.crt' }

/** The ConfigError loadEnv throws for `env` (fails the test when it throws none). */
function configError(t: { fail(message: string): void }, schema: Parameters<typeof loadEnv>[0], env: Record<string, string>): Error & { code?: string } {
  try {
    loadEnv(schema, { env, dotenvPath: NO_DOTENV })
  } catch (err) {
    return err as Error & { code?: string }
  }
  t.fail(`no error for ${Object.keys(env).join(', ')}`)
  return Object.assign(new Error(''), { code: 'none' })
}

t.test('a refused FERRY_API_TOKEN is named, with what is wrong and how to make one, but never repeated', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['sh0rtSecret', /must NOT have fewer than 16 characters/],
    [' '.repeat(20), /is blank \(only whitespace\)/],
    ['half of it  spaces', /contains whitespace/],
    ['\u00e9t\u00e9-secret-token-2026', /characters other than visible ASCII/],
    ['zzzzzzzzzzzzzzzzzzzz', /has only 1 different character,/],
    ['abcabcabcabcabcabcab', /has only 3 different characters/],
    ['passwordpassword', /is only lower-case letters/],
    ['CHANGEMECHANGEMENOW', /is only upper-case letters/],
    ['31415926535897932384', /is only digits/],
    ['0123456789abcdefghij', /runs of equal or neighbouring characters/],
    ['Ab3$Cd5%Ab3$Cd5%Ab3$Cd5%', /is a shorter string repeated/],
  ]
  for (const [token, why] of cases) {
    for (const [service, schema, base] of [['gateway', gatewayConfigSchema, gatewayBase], ['ota-server', otaServerConfigSchema, otaBase]] as const) {
      const err = configError(t, schema, { ...base, FERRY_API_TOKEN: token })
      t.equal(err.code, 'FERRY_ERR_CONFIG', `${service}: ${JSON.stringify(token)} is refused`)
      t.match(err.message, /FERRY_API_TOKEN: /)
      t.match(err.message, why, `${service}: says what is wrong (${why.source})`)
      t.match(err.message, '(set; the value is secret and not shown)')
      t.match(err.message, 'Make a random one with: openssl rand -hex 24')
      if (token.trim()) t.notOk(err.message.includes(token.trim()), `${service}: does not repeat the token`)
    }
  }
})

t.test('tokens made by a generator pass', async (t) => {
  for (let i = 0; i < 2000; i++) {
    const token = randomBytes(24).toString(i % 2 ? 'hex' : 'base64')
    if (randomTokenProblem(token)) t.fail(`${token}: ${randomTokenProblem(token)}`)
  }
  for (const token of ['process-test-token-0123456789', 'a-long-enough-token', randomBytes(24).toString('base64url')]) {
    t.equal(randomTokenProblem(token), undefined, token)
    t.equal(loadEnv<{ FERRY_API_TOKEN: string }>(gatewayConfigSchema, { env: { ...gatewayBase, FERRY_API_TOKEN: token }, dotenvPath: NO_DOTENV }).FERRY_API_TOKEN, token)
  }
})

t.test('no secret setting has its value in an error, whatever the rule it breaks', async (t) => {
  const schema = Type.Object({
    FERRY_X_KEY: Type.String({ pattern: '^[A-Z0-9]{16}$', secret: true, description: 'A key.' }),
    FERRY_X_NAME: Type.String({ pattern: '^[a-z]+$', description: 'A name.' }),
  })
  const err = configError(t, schema, { FERRY_X_KEY: 'hunter2-hunter2', FERRY_X_NAME: 'Not A Name' })
  t.match(err.message, 'FERRY_X_KEY: must match pattern "^[A-Z0-9]{16}$" (set; the value is secret and not shown). A key.')
  t.match(err.message, 'FERRY_X_NAME: must match pattern "^[a-z]+$" (got "Not A Name"). A name.', 'other values are still shown')
  t.notMatch(err.message, 'hunter2')

  const channels = configError(t, gatewayConfigSchema, { ...gatewayBase, FERRY_THINGSPEAK_CHANNELS: 'dev1=12:WRITEKEY0123456:READKEY:extra' })
  t.match(channels.message, /FERRY_THINGSPEAK_CHANNELS: must match pattern/)
  t.notMatch(channels.message, /WRITEKEY|READKEY/, 'FERRY_THINGSPEAK_CHANNELS holds keys')

  const url = configError(t, gatewayConfigSchema, { ...gatewayBase, FERRY_INFLUX_URL: 'ftp://ferry:hunter2@influx.local:8086' })
  t.match(url.message, '(got "ftp://ferry:***@influx.local:8086")', 'a password in a URL is masked')
  t.notMatch(url.message, 'hunter2')
})

t.test('every token, key and password setting is marked secret; the docs say so', async (t) => {
  const fields = { ...gatewayConfigSchema.properties, ...otaServerConfigSchema.properties } as Record<string, { secret?: boolean; random?: boolean; description?: string }>
  const secret = Object.keys(fields).filter((name) => isSecret(fields[name])).sort()
  t.same(secret, [
    'FERRY_API_TOKEN',
    'FERRY_INFLUX_PASSWORD',
    'FERRY_INFLUX_TOKEN',
    'FERRY_THINGSPEAK_CHANNELS',
    'FERRY_THINGSPEAK_READ_KEY',
    'FERRY_THINGSPEAK_TALKBACK_KEY',
    'FERRY_THINGSPEAK_WRITE_KEY',
  ])
  // Names that look secret but hold a path to a key file, which may be named in an error.
  const paths = ['FERRY_MQTT_KEY', 'FERRY_OTA_KEY', 'FERRY_HTTP_TLS_KEY']
  for (const name of Object.keys(fields)) {
    if (/(TOKEN|PASSWORD|SECRET|_KEY)$/.test(name) && !paths.includes(name)) t.ok(isSecret(fields[name]), `${name} is marked secret: true in its schema`)
  }
  for (const name of paths) t.match(fields[name]?.description, /^(Path to|Server private key \(PEM\))/, `${name} is a path`)
  t.same(Object.keys(fields).filter((name) => fields[name]?.random), ['FERRY_API_TOKEN'], 'only the tokens the operator makes up must look random')
  const rows = describeSchema(gatewayConfigSchema)
  t.equal(rows.find((r) => r.name === 'FERRY_INFLUX_TOKEN')?.type, 'secret string')
  t.equal(rows.find((r) => r.name === 'FERRY_INFLUX_URL')?.type, 'string')
})
