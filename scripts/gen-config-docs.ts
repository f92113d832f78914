// npm run docs:config: writes docs/configuration.md, .env.example, the README's table and
// common/src/config/setting-names.ts (each service's FERRY_ names) from the config schemas.
// scripts/config-docs.test.ts fails when the committed files are stale.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderConfigMarkdown, renderEnvExample, renderSettingNames, spliceReadmeTable } from '../common/src/config/docs.js'
import { configSections } from './config-sections.js'

const root = join(import.meta.dirname, '..')
writeFileSync(join(root, 'docs', 'configuration.md'), renderConfigMarkdown(configSections))
writeFileSync(join(root, '.env.example'), renderEnvExample(configSections))
const readme = join(root, 'README.md')
writeFileSync(readme, spliceReadmeTable(readFileSync(readme, 'utf8'), configSections[0]!))
writeFileSync(join(root, 'common', 'src', 'config', 'setting-names.ts'), renderSettingNames(configSections))
process.stdout.write('wrote docs/configuration.md, .env.example, the README table and common/src/config/setting-names.ts\n')
