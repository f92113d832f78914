import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ErrorCodes, FerryError, hasCode } from './errors.js'

t.test('docs/errors.md lists exactly the exported error codes', async (t) => {
  const doc = readFileSync(join(import.meta.dirname, '../../docs/errors.md'), 'utf8')
  const documented = [...doc.matchAll(/^\| `(FERRY_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]).sort()
  t.same(documented, Object.keys(ErrorCodes).sort(), 'add the missing rows to docs/errors.md (or remove stale ones)')
})

t.test('errors are matched by code', async (t) => {
  const e = new FerryError('FERRY_ERR_PKI', 'x')
  t.ok(hasCode(e, 'FERRY_ERR_PKI'))
  t.notOk(hasCode(e, 'FERRY_ERR_CONFIG'))
  t.notOk(hasCode(null, 'FERRY_ERR_PKI'))
  t.equal(e.name, 'FerryError')
})
