// npm run docs:config: writes docs/configuration.md and .env.example from the config schemas.
// scripts/config-docs.test.ts fails when the committed files are stale.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderConfigMarkdown, renderEnvExample } from '../common/src/config/docs.js'
import { configSections } from './config-sections.js'

const root = join(import.meta.dirname, '..')
writeFileSync(join(root, 'docs', 'configuration.md'), renderConfigMarkdown(configSections))
writeFileSync(join(root, '.env.example'), renderEnvExample(configSections))
process.stdout.write('wrote docs/configuration.md and .env.example\n')
