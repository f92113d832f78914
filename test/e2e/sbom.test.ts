// `npm run sbom` produces the CycloneDX SBOM that SECURITY.md promises: every production package of
// package-lock.json at its locked version, and no development tool. The script's own --output-file
// is overridden (the last one wins) so nothing is written into the checkout.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers/tmp.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

interface Component {
  name: string
  group?: string
  version: string
  purl?: string
  components?: Component[]
}
interface LockEntry {
  version?: string
  dev?: boolean
  devOptional?: boolean
  link?: boolean
}

function flatten(cs: Component[] = []): Component[] {
  return cs.flatMap((c) => [c, ...flatten(c.components)])
}

/** `name@version` of a lock entry such as `node_modules/@scope/pkg/node_modules/dep`. */
function lockId(path: string, e: LockEntry): string {
  return `${path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)}@${e.version}`
}

t.test('npm run sbom lists the locked production dependencies and no dev tools', async (t) => {
  const out = join(tempDir(t, 'ferry-sbom-'), 'sbom.cdx.json')
  const child = spawn('npm', ['run', '--silent', 'sbom', '--', '--output-file', out], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d))
  const [code] = (await once(child, 'exit')) as [number]
  t.equal(code, 0, stderr)

  const bom = JSON.parse(readFileSync(out, 'utf8')) as { bomFormat: string; specVersion: string; metadata: { component: Component }; components: Component[] }
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string> }
  t.equal(bom.bomFormat, 'CycloneDX')
  t.match(bom.specVersion, /^1\.\d+$/)
  t.match(bom.metadata.component, { name: pkg.name, version: pkg.version })

  const inBom = new Set(flatten(bom.components).map((c) => `${c.group ? `${c.group}/` : ''}${c.name}@${c.version}`))
  t.ok(flatten(bom.components).every((c) => c.purl?.startsWith('pkg:npm/')), 'every component has an npm package URL')

  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }
  const entries = Object.entries(lock.packages).filter(([path, e]) => path.includes('node_modules/') && !e.link)
  const prod = new Set(entries.filter(([, e]) => !e.dev && !e.devOptional).map(([p, e]) => lockId(p, e)))
  const devOnly = new Set(entries.filter(([, e]) => e.dev).map(([p, e]) => lockId(p, e)).filter((id) => !prod.has(id)))

  t.ok(prod.size > 50, `${prod.size} production packages in the lock file`)
  t.same([...prod].filter((id) => !inBom.has(id)), [], 'every production package of the lock file is listed at its locked version')
  t.same([...devOnly].filter((id) => inBom.has(id)), [], 'no development-only package is listed')
  for (const dep of Object.keys(pkg.dependencies)) t.ok([...inBom].some((id) => id.startsWith(`${dep}@`)), `direct dependency ${dep}`)
  for (const tool of ['typescript', 'tap', 'eslint', 'tsx']) t.notOk([...inBom].some((id) => id.startsWith(`${tool}@`)), `dev tool ${tool} left out`)
})
