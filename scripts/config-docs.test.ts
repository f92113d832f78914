import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderConfigMarkdown, renderEnvExample, renderSettingNames, spliceReadmeTable } from '../common/src/config/docs.js'
import { configSections } from './config-sections.js'
import { loadEnv } from '../common/src/config/env.js'
import { gatewayConfigSchema } from '../gateway/src/config.js'

const root = join(import.meta.dirname, '..')

t.test('docs/configuration.md, .env.example and setting-names.ts match the schemas', async (t) => {
  t.equal(readFileSync(join(root, 'docs', 'configuration.md'), 'utf8'), renderConfigMarkdown(configSections), 'stale: run npm run docs:config')
  t.equal(readFileSync(join(root, '.env.example'), 'utf8'), renderEnvExample(configSections), 'stale: run npm run docs:config')
  t.equal(readFileSync(join(root, 'common', 'src', 'config', 'setting-names.ts'), 'utf8'), renderSettingNames(configSections), 'stale: run npm run docs:config')
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  t.equal(readme, spliceReadmeTable(readme, configSections[0]!), 'README table stale: run npm run docs:config')
})

t.test('every variable has a description and the FERRY_ prefix', async (t) => {
  for (const s of configSections) {
    for (const [name, field] of Object.entries(s.schema.properties as Record<string, { description?: string }>)) {
      t.match(name, /^FERRY_[A-Z0-9_]+$/)
      t.ok(field.description && field.description.length > 10, `${name} has a description`)
    }
  }
})

t.test('a bad value names the variable and what is wanted, without touching anything', async (t) => {
  const base = { FERRY_MQTT_CA: 'ca', FERRY_MQTT_CERT: 'c', FERRY_MQTT_KEY: 'k', FERRY_ENV_FILE: '/nonexistent' }
  t.throws(() => loadEnv(gatewayConfigSchema, { env: { ...base, FERRY_BUFFER_MAX_ROWS: 'lots' } }), {
    code: 'FERRY_ERR_CONFIG',
    message: /FERRY_BUFFER_MAX_ROWS: must be integer \(got "lots"\)\. Most readings kept/,
  })
  t.throws(() => loadEnv(gatewayConfigSchema, { env: { ...base, FERRY_MQTT_URL: 'mqtt://plain:1883' } }), { message: /FERRY_MQTT_URL: must match pattern/ })
  t.throws(() => loadEnv(gatewayConfigSchema, { env: { FERRY_ENV_FILE: '/nonexistent' } }), { message: /FERRY_MQTT_CA.*not set/ })
  t.throws(() => loadEnv(gatewayConfigSchema, { env: { ...base, FERRY_SINKS: 'influxdb,s3' } }), { message: /FERRY_SINKS/ })
  const ok = loadEnv<{ FERRY_BUFFER_MAX_ROWS: number; FERRY_DB_SYNCHRONOUS: string }>(gatewayConfigSchema, { env: { ...base, FERRY_BUFFER_MAX_ROWS: '500' } })
  t.equal(ok.FERRY_BUFFER_MAX_ROWS, 500, 'coerced to a number')
  t.equal(ok.FERRY_DB_SYNCHRONOUS, 'FULL', 'default applied')
})
