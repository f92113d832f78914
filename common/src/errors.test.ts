import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, FerryError, hasCode } from './errors.js'

const root = join(import.meta.dirname, '../..')
/** Where product code lives (not tests, fakes, benchmarks or scripts). */
const PRODUCT_DIRS = ['common/src', 'gateway/src', 'ota-server/src', 'device-sim/src', 'cli']
const CODE_RE = /\bFERRY_ERR_[A-Z0-9]+(?:_[A-Z0-9]+)*\b/g

/** Every `FERRY_ERR_*` code named in product source: thrown, declared, or answered over HTTP. */
function codesInSource(): Map<string, string> {
  const where = new Map<string, string>()
  for (const dir of PRODUCT_DIRS) {
    for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !/\.(ts|js)$/.test(entry.name) || /\.test\.ts$/.test(entry.name)) continue
      const file = join(entry.parentPath, entry.name)
      for (const [code] of readFileSync(file, 'utf8').matchAll(CODE_RE)) if (!where.has(code)) where.set(code, file.slice(root.length + 1))
    }
  }
  return where
}

/** Codes of the table rows (`| \`FERRY_ERR_…\` | …`) in a Markdown file. */
function documentedIn(file: string): Set<string> {
  return new Set([...readFileSync(join(root, file), 'utf8').matchAll(/^\| `(FERRY_ERR_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]!))
}

t.test('docs/errors.md documents every error code the product source uses, and no other', async (t) => {
  const used = codesInSource()
  const documented = documentedIn('docs/errors.md')
  // The scan must see all three kinds of code, or a moved folder would make this test pass vacuously.
  for (const code of ['FERRY_ERR_CONFIG', 'FERRY_ERR_API_TOO_LARGE', 'FERRY_ERR_OTA_INTERNAL']) t.ok(used.has(code), `the source scan finds ${code}`)
  const missing = [...used].filter(([code]) => !documented.has(code)).map(([code, file]) => `${code} (used in ${file})`)
  t.same(missing, [], 'add a row for each to docs/errors.md: what happened and what to do')
  t.same([...documented].filter((c) => !used.has(c)), [], 'remove rows for codes nothing uses any more from docs/errors.md')
  t.same(Object.keys(ErrorCodes).filter((c) => !documented.has(c)), [], 'every code of common/src/errors.ts has a row in docs/errors.md')
})

t.test('the API and OTA server error tables list every code their service answers with', async (t) => {
  const used = [...codesInSource().keys()]
  const api = documentedIn('docs/api.md')
  const ota = documentedIn('ota-server/README.md')
  t.same(used.filter((c) => c.startsWith('FERRY_ERR_API_') && !api.has(c)), [], 'add the rows to the table in docs/api.md')
  t.same(used.filter((c) => c.startsWith('FERRY_ERR_OTA_') && !ota.has(c)), [], 'add the rows to the table in ota-server/README.md')
})

t.test('errors are matched by code', async (t) => {
  const e = new FerryError('FERRY_ERR_PKI', 'x')
  t.ok(hasCode(e, 'FERRY_ERR_PKI'))
  t.notOk(hasCode(e, 'FERRY_ERR_CONFIG'))
  t.notOk(hasCode(null, 'FERRY_ERR_PKI'))
  t.equal(e.name, 'FerryError')
})
