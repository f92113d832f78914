// Test code stays out of the product (test/README.md), and one service's code out of the other. Four
// static checks, each also run against a deliberately broken input to prove it can fail:
//
// 1. Every file `npm run build` compiles is reachable from the `ferry` command (cli/main.ts; bin/ferry.js
//    runs the compiled cli/ferry.ts it imports), following static imports, re-exports and `import()`
//    of relative paths. A file only tests import (a fake server, a shared suite) fails here.
// 2. What `npm run build` emits (the files of the TypeScript program for tsconfig.build.json, listed
//    without emitting) holds nothing from test/, no *.test.ts and nothing named like a fake or a suite.
// 3. The Docker build context (.dockerignore, an allow-list) admits nothing from test/.
// 4. The OTA server loads no gateway code, and the gateway not the OTA server's config: each knows the
//    other's setting names from common/src/config/setting-names.ts.
import t from 'tap'
import ts from 'typescript'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, posix, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const repoPath = (abs: string) => relative(root, abs).split(sep).join('/')
const readRepo = (p: string) => (existsSync(join(root, p)) ? readFileSync(join(root, p), 'utf8') : undefined)

/** The product's entry point. */
const ENTRY = 'cli/main.ts'
/** Non-test code that is not the product but may import it: `npm run docs:config`, `npm run bench`. */
const TOOLING_DIRS = ['scripts', 'bench']
/**
 * Compiled into dist/ although the `ferry` command never loads them; only the config docs generator
 * (scripts/gen-config-docs.ts, `npm run docs:config`) and its test use them. Listed so the check
 * stays strict: a new file here is a decision, and an entry that becomes reachable must be removed.
 */
const TOOLING_ONLY = ['common/src/config/docs.ts', 'scripts/config-sections.ts']

const isTest = (p: string) => p.endsWith('.test.ts')
const TEST_NAME = /(^|[-_.])(fakes?|contract|mocks?|stubs?)([-_.]|$)/i

function listTs(dir: string): string[] {
  const abs = join(root, dir)
  if (!existsSync(abs)) return []
  return readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .map((f) => posix.join(dir, f.split(sep).join('/')))
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts') && !f.split('/').includes('node_modules'))
}

/** Relative imports of one file, resolved to repo paths (`./x.js` → `x.ts`); the unresolvable apart. */
function imports(file: string, source: string, exists: (p: string) => boolean): { files: string[]; unresolved: string[] } {
  const files: string[] = []
  const unresolved: string[] = []
  for (const { fileName: spec } of ts.preProcessFile(source, true, true).importedFiles) {
    if (!spec.startsWith('.')) continue // a package or node: builtin
    const target = posix.normalize(posix.join(posix.dirname(file), spec))
    const asTs = target.replace(/\.js$/, '.ts')
    if (asTs.endsWith('.ts') && exists(asTs)) files.push(asTs)
    else if (!exists(target)) unresolved.push(`${file} → ${spec}`)
    // else: a non-TypeScript file (JSON); not a module of the graph
  }
  return { files, unresolved }
}

/** Every file reachable from `roots` through relative imports. */
function reach(roots: string[], read: (p: string) => string | undefined) {
  const exists = (p: string) => read(p) !== undefined || existsSync(join(root, p))
  const seen = new Set<string>()
  const unresolved: string[] = []
  const queue = [...roots]
  while (queue.length) {
    const f = queue.pop()!
    if (seen.has(f)) continue
    seen.add(f)
    const r = imports(f, read(f) ?? '', exists)
    queue.push(...r.files)
    unresolved.push(...r.unresolved)
  }
  return { seen, unresolved }
}

/** Check 1 over the compiled files `built`, reading sources through `read`. */
function reachability(built: string[], read: (p: string) => string | undefined) {
  const product = reach([ENTRY], read)
  // The tools' own entry points: what they compile into the build must be justified by the product.
  const tooling = reach(
    TOOLING_DIRS.flatMap(listTs).filter((f) => !isTest(f) && !built.includes(f)),
    read,
  )
  const unreachable = built.filter((f) => !product.seen.has(f))
  return {
    unresolved: [...product.unresolved, ...tooling.unresolved],
    /** Imported by tests only, or by nothing. */
    testOnly: unreachable.filter((f) => !tooling.seen.has(f)),
    toolingOnly: unreachable.filter((f) => tooling.seen.has(f)),
    /** Test code the product loads (it would be compiled into dist/ with it). */
    testCodeInProduct: [...product.seen].filter((f) => f.startsWith('test/') || isTest(f)),
  }
}

/** Check 2: the emitted files that are test code. */
const testCodeIn = (emitted: string[]) =>
  emitted.filter((f) => f.startsWith('test/') || isTest(f) || TEST_NAME.test(posix.basename(f, '.ts')))

/** Check 3: paths the .dockerignore allow-list lets back in from test/. */
function testInDockerContext(dockerignore: string): string[] {
  return dockerignore
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('!'))
    .map((l) => l.slice(1).replace(/^\/+/, ''))
    .filter((p) => p === 'test' || p.startsWith('test/') || p.startsWith('**') || p.startsWith('*'))
}

// The build exactly as `npm run build` sees it: tsconfig.build.json's include/exclude expanded, plus
// everything those files import (tsc emits both), listed without emitting.
const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.build.json'), {}, {
  ...ts.sys,
  onUnRecoverableConfigFileDiagnostic: (d) => {
    throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'))
  },
})!
const host = ts.createCompilerHost(config.options)
const program = ts.createProgram(config.fileNames, config.options, host)
const emittedBy = (p: ts.Program) =>
  p
    .getSourceFiles()
    .filter((s) => !s.isDeclarationFile && !s.fileName.includes('/node_modules/'))
    .map((s) => repoPath(s.fileName))
    .sort()
const built = emittedBy(program)

t.test('every compiled file is reachable from the ferry command', async (t) => {
  t.same(config.errors, [], 'tsconfig.build.json parses')
  t.ok(built.includes(ENTRY) && built.length > 50, `the build compiles ${ENTRY} and the rest (${built.length} files)`)
  const r = reachability(built, readRepo)
  t.same(r.unresolved, [], 'every relative import resolves (a missed one would hide an edge)')
  t.same(r.testOnly, [], 'no compiled file is imported only by tests (test code belongs under test/)')
  t.same(r.testCodeInProduct, [], 'the product imports nothing from test/ and no *.test.ts')
  t.same(r.toolingOnly, [...TOOLING_ONLY].sort(), 'compiled but used only by dev tools: exactly the known list')
})

t.test('reachability: catches a fake beside its sink that only its test imports', async (t) => {
  const fake = 'gateway/src/sinks/influxdb/fake-server.ts'
  const extra: Record<string, string> = {
    [fake]: "import { createServer } from 'node:http'\nexport const start = () => createServer()\n",
    'gateway/src/sinks/influxdb/influxdb-fake.test.ts': "import { start } from './fake-server.js'\nstart()\n",
  }
  const read = (p: string) => extra[p] ?? readRepo(p)
  const r = reachability([...built, fake], read)
  t.same(r.testOnly, [fake])
})

t.test('reachability: catches product code that imports a test fake', async (t) => {
  const registry = 'gateway/src/sinks/registry.ts'
  const source = readRepo(registry)!
  const read = (p: string) => (p === registry ? `import '../../../test/fakes/influxdb.js'\n${source}` : readRepo(p))
  const r = reachability(built, read)
  t.same(r.testCodeInProduct, ['test/fakes/influxdb.ts'])
})

t.test('the build emits no test code', async (t) => {
  t.same(testCodeIn(built), [], 'nothing from test/, no *.test.ts, nothing named fake/contract/mock/stub')
  const include = config.raw.include as string[]
  t.same(include.filter((p) => p === 'test' || p.startsWith('test/')), [], 'tsconfig.build.json includes nothing from test/')
})

t.test('dist/ holds exactly what the build emits: no leftover of a moved or deleted file (e.g. an old fake)', async (t) => {
  const build = (JSON.parse(readRepo('package.json')!) as { scripts: Record<string, string> }).scripts.build!
  t.match(build, /^node -e .*rmSync\('dist'.*&& tsc -p tsconfig\.build\.json$/, 'npm run build empties dist/ first')
  if (!existsSync(join(root, 'dist'))) {
    t.comment('no dist/ yet (npm test builds it before the suite)')
    return
  }
  const walk = (dir: string): string[] =>
    readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(`${dir}/${e.name}`) : e.name.endsWith('.js') ? [`${dir}/${e.name}`] : []))
  const expected = built.filter((p) => p.endsWith('.ts')).map((p) => `dist/${p.replace(/\.ts$/, '.js')}`).sort()
  t.same(walk('dist').sort(), expected)
})

t.test('the build check: catches test code pulled in by a product import, and test-like names', async (t) => {
  // A product file (virtual, so the tree is untouched) that imports a fake: tsc would emit the fake too.
  const virtual = join(root, 'gateway/src/__layout-check__.ts')
  const mutated: ts.CompilerHost = {
    ...host,
    fileExists: (f) => f === virtual || host.fileExists(f),
    readFile: (f) => (f === virtual ? "import '../../test/fakes/influxdb.js'\n" : host.readFile(f)),
    getSourceFile: (f, lang, ...rest) =>
      f === virtual
        ? ts.createSourceFile(f, "import '../../test/fakes/influxdb.js'\n", lang)
        : host.getSourceFile(f, lang, ...rest),
  }
  const bad = emittedBy(ts.createProgram([...config.fileNames, virtual], config.options, mutated, program))
  t.same(testCodeIn(bad), ['test/fakes/influxdb.ts'])
  t.same(
    testCodeIn(['gateway/src/sinks/influxdb/fake-server.ts', 'gateway/src/sinks/sink-contract.ts', 'gateway/src/commands/fake-talkback.ts', 'gateway/src/sinks/influxdb/influxdb.ts']),
    ['gateway/src/sinks/influxdb/fake-server.ts', 'gateway/src/sinks/sink-contract.ts', 'gateway/src/commands/fake-talkback.ts'],
  )
})

/** Check 4 over sources read through `read`: what each service loads of the other's code that it must not. */
function crossServiceImports(read: (p: string) => string | undefined) {
  return {
    otaServer: [...reach(['ota-server/src/cli.ts'], read).seen].filter((f) => f.startsWith('gateway/')),
    gateway: [...reach(['gateway/src/cli.ts'], read).seen].filter((f) => f === 'ota-server/src/config.ts'),
  }
}

t.test('the OTA server loads no gateway code, and the gateway not the OTA server\'s config', async (t) => {
  t.same(crossServiceImports(readRepo), { otaServer: [], gateway: [] }, 'setting names come from common/src/config/setting-names.ts')
  const cli = 'ota-server/src/cli.ts'
  const read = (p: string) => (p === cli ? `import '../../gateway/src/config.js'\n${readRepo(cli)}` : readRepo(p))
  t.ok(crossServiceImports(read).otaServer.includes('gateway/src/config.ts'), 'catches the OTA server importing the gateway\'s config')
})

t.test('the Docker build context admits nothing from test/', async (t) => {
  const dockerignore = readRepo('.dockerignore')!
  t.same(testInDockerContext(dockerignore), [])
  t.same(testInDockerContext(`${dockerignore}\n!test/\n`), ['test/'], 'catches an allow line for test/')
  t.same(testInDockerContext(`${dockerignore}\n!test/fakes/influxdb.ts\n`), ['test/fakes/influxdb.ts'], 'catches a single test file')
})
