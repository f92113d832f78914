// `ferry pki gateway <n>` as a user runs it: the replica certificate, the listing, and the refusals
// with their exit codes (issue 17).
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../../../test/helpers/tmp.js'

const ROOT = join(import.meta.dirname, '..', '..', '..')
const ferry = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME } })

t.test('ferry pki gateway <n>: a replica certificate, listed as a gateway; other numbers are usage errors', async (t) => {
  const dir = join(tempDir(t), 'pki')
  t.equal(ferry(['pki', 'init', '--dir', dir]).status, 0)
  const ok = ferry(['pki', 'gateway', '3', '--dir', dir])
  t.equal(ok.status, 0, ok.stderr)
  t.match(ok.stdout, /gateway-3\.crt \(CN=ferry-gateway-3, serial [0-9a-f]+\); give that replica FERRY_MQTT_CERT=.*gateway-3\.crt and FERRY_MQTT_KEY=.*gateway-3\.key/)
  t.equal(statSync(join(dir, 'gateway-3.key')).mode & 0o777, 0o600)
  t.match(ferry(['pki', 'list', '--dir', dir]).stdout, /^gateway +CN=ferry-gateway-3, O=Ferry +serial/m)

  for (const bad of ['0', '10', '01', '1.0', 'x', '0x1']) {
    const r = ferry(['pki', 'gateway', bad, '--dir', dir])
    t.equal(r.status, 2, `${bad}: a usage error`)
    t.match(r.stderr, new RegExp(`needs a replica number 1-9, got "${bad.replace('.', '\\.')}".*ferry-gateway-1 … ferry-gateway-9`), bad)
  }
  const missing = ferry(['pki', 'gateway', '--dir', dir])
  t.equal(missing.status, 2)
  t.match(missing.stderr, /needs a replica number 1-9:/)
  t.same(readdirSync(dir).filter((n) => /^gateway-/.test(n)).sort(), ['gateway-3.crt', 'gateway-3.key'], 'nothing written for a refused number')

  const again = ferry(['pki', 'gateway', '3', '--dir', dir])
  t.equal(again.status, 1, 'an existing replica certificate is not overwritten')
  t.match(again.stderr, /--force/)
  t.match(ferry(['pki', '--help']).stdout, /gateway <n> +gateway replica n \(1-9\)/)
  t.ok(existsSync(join(dir, 'gateway.crt')), 'the main gateway certificate is untouched')
})
