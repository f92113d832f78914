import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadOtaServerConfig, otaServerConfigSchema } from './config.js'

t.test('the README documents every FERRY_OTA_* variable of the schema', async (t) => {
  const readme = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8')
  for (const name of Object.keys(otaServerConfigSchema.properties)) t.match(readme, `| \`${name}\` |`, name)
})

t.test('a bad value stops start-up with a message naming the variable', async (t) => {
  const base = { FERRY_ENV_FILE: '/nonexistent.env', FERRY_OTA_DIR: '/d', FERRY_OTA_CERT: 'c', FERRY_OTA_KEY: 'k', FERRY_OTA_CA: 'a' }
  t.match(loadOtaServerConfig(base), { FERRY_OTA_PORT: 8443, FERRY_OTA_MAX_DOWNLOADS: 16 })
  t.throws(() => loadOtaServerConfig({ ...base, FERRY_OTA_PORT: '70000' }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_OTA_PORT/ })
  t.throws(() => loadOtaServerConfig({ ...base, FERRY_OTA_DIR: undefined }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_OTA_DIR/ })
  t.throws(() => loadOtaServerConfig({ ...base, FERRY_API_TOKEN: 'short' }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_API_TOKEN/ })
})
