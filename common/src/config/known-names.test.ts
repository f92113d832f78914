// The FERRY_ names a Ferry program knows: both services' schema names (setting-names.ts, generated) and
// the list of names that are not in a config schema but that some Ferry program reads. A name read but
// missing would be reported at start as an unknown setting.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { knownSettingNames, OTHER_KNOWN_NAMES } from './known-names.js'
import { SERVICE_SETTING_NAMES } from './setting-names.js'
import { gatewayConfigSchema } from '../../../gateway/src/config.js'
import { otaServerConfigSchema } from '../../../ota-server/src/config.js'

const ROOT = join(import.meta.dirname, '..', '..', '..')
const schemaNames = new Set([...Object.keys(gatewayConfigSchema.properties), ...Object.keys(otaServerConfigSchema.properties)])
const known = knownSettingNames()

/** The FERRY_ names a Compose file interpolates (`${FERRY_X}`, `${FERRY_X:-default}`, `$FERRY_X`), comments left out. */
function composeNames(text: string): string[] {
  const code = text.split('\n').filter((line) => !/^\s*#/.test(line)).join('\n')
  return [...new Set([...code.matchAll(/(?<!\$)\$\{?(FERRY_[A-Za-z0-9_]+)/g)].map((m) => m[1]!))].sort()
}

t.test('setting-names.ts, which the services read instead of each other\'s schema, holds exactly the schemas\' names', async (t) => {
  t.same([...new Set(Object.values(SERVICE_SETTING_NAMES).flat())].sort(), [...schemaNames].sort(), 'stale: run npm run docs:config')
})

t.test('composeNames finds interpolations and skips comments and escaped dollars', async (t) => {
  t.same(composeNames([
    '# ${FERRY_IN_A_COMMENT}',
    '  image: ferry:${FERRY_IMAGE_TAG:-local}',
    '  - "${FERRY_PUBLISH_HTTP:-8080}:8080"',
    '  - $FERRY_BARE/x:/y',
    "  - '[ -n \"$$FERRY_ESCAPED\" ]'",
    '  FERRY_MQTT_URL: mqtts://mosquitto:8883',
  ].join('\n')), ['FERRY_BARE', 'FERRY_IMAGE_TAG', 'FERRY_PUBLISH_HTTP'])
})

t.test('every FERRY_ name docker-compose.yml reads from .env is known', async (t) => {
  const names = composeNames(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'))
  t.ok(names.includes('FERRY_HOST_PKI_DIR'), `the compose file was parsed (${names.join(', ')})`)
  for (const name of names) t.ok(known.has(name), `${name}: add it to OTHER_KNOWN_NAMES.compose in common/src/config/known-names.ts`)
})

/** Source files of the programs, tools and tests, without dependencies, build output and firmware. */
function* sourceFiles(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (!['node_modules', 'dist', 'firmware', '.git', '.tap', '.ferry-demo', 'test-artifacts'].includes(e.name)) yield* sourceFiles(join(dir, e.name))
    } else if (/\.(ts|js|mjs|sh|ya?ml)$|^Dockerfile/.test(e.name)) {
      yield join(dir, e.name)
    }
  }
}

t.test('every FERRY_ name a program in this repository reads from its environment is known', async (t) => {
  const reads = new Map<string, string>()
  for (const file of sourceFiles(ROOT)) {
    const text = readFileSync(file, 'utf8')
    // TypeScript/JavaScript: env.FERRY_<name>, env['FERRY_<name>']; shell, Compose, Dockerfile: $FERRY_<name>, ${FERRY_<name>}.
    const re = /\.(ts|js|mjs)$/.test(file) ? /\benv(?:\.|\[['"])(FERRY_[A-Za-z0-9_]+)/g : /(?<!\$)\$\{?(FERRY_[A-Za-z0-9_]+)/g
    for (const m of text.matchAll(re)) if (!reads.has(m[1]!)) reads.set(m[1]!, relative(ROOT, file))
  }
  t.ok(reads.has('FERRY_ENV_FILE') && reads.has('FERRY_SKIP_APT'), 'the scan finds the reads it should')
  for (const [name, file] of reads) t.ok(known.has(name), `${name} (read in ${file}): add it to OTHER_KNOWN_NAMES in common/src/config/known-names.ts`)
})

t.test('the list holds FERRY_ names that no schema has', async (t) => {
  for (const [group, names] of Object.entries(OTHER_KNOWN_NAMES)) {
    for (const name of names) {
      t.match(name, /^FERRY_[A-Z0-9_]+$/, `${group}: ${name}`)
      t.notOk(schemaNames.has(name), `${name} is in a schema already; drop it from OTHER_KNOWN_NAMES.${group}`)
    }
  }
  t.ok(known.has('FERRY_SINKS') && known.has('FERRY_OTA_PORT') && known.has('FERRY_PUBLISH_MQTT'), 'both schemas and the list')
})
