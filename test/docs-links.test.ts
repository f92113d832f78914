// Pointers from code and docs must be followable in a clone of this repository (docs/README.md).
// Two static checks over every text file in the tree (pure file reading, no subprocess), each also
// run against deliberately broken input to prove it can fail:
//
// 1. Nothing points at the reference sheets that live outside the repository (cloud-apis.md,
//    design.md, firmware.md, mqtt-and-compliance.md, style.md, or a shared/reference/ folder). A
//    mention of one of those names passes only when it resolves to a file inside docs/.
// 2. Every `<path>.md#<anchor>` pointer (repo-relative, as code comments write them, or relative to
//    the file, as Markdown links do) names a file that exists and a heading with that GitHub anchor;
//    in-page Markdown links `](#anchor)` name a heading of their own file.
import t from 'tap'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
/** This file: its broken examples are deliberate. */
const SELF = 'test/docs-links.test.ts'

/** Folders never scanned: dependencies, build output, local state, test results. */
const SKIP_NAMES = new Set(['node_modules', '.git', '.tap', '.ferry-demo', 'test-artifacts', 'ferry-data'])
const SKIP_PATHS = new Set(['dist', 'firmware/build', 'firmware/.pio', 'pki', 'ota'])
const TEXT_EXT = /\.(ts|js|mjs|cjs|json|md|h|hpp|c|cc|cpp|ini|conf|ya?ml|sh|txt|example)$/
const TEXT_NAMES = new Set(['Dockerfile', 'Makefile', 'acl', 'run', '.dockerignore', '.gitignore'])

/** Repo-relative paths (posix) of the text files to check. */
function textFiles(dir = ''): string[] {
  const out: string[] = []
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name
    if (e.isDirectory()) {
      if (!SKIP_NAMES.has(e.name) && !SKIP_PATHS.has(rel)) out.push(...textFiles(rel))
    } else if (e.isFile() && (TEXT_EXT.test(e.name) || TEXT_NAMES.has(e.name)) && statSync(join(root, rel)).size < 2_000_000) {
      out.push(rel)
    }
  }
  return out
}

/**
 * GitHub's anchor for a heading: lower case, Markdown links reduced to their text, punctuation
 * dropped (letters, digits, `_`, `-` and spaces stay), each space turned into `-`.
 */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]*>/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
    .replace(/\s/g, '-')
}

/** The anchors of a Markdown text's ATX headings, outside fenced code; repeats get -1, -2, … */
export function anchors(markdown: string): Set<string> {
  const out = new Set<string>()
  const seen = new Map<string, number>()
  let fence: string | undefined
  for (const line of markdown.split('\n')) {
    const f = /^\s{0,3}(`{3,}|~{3,})/.exec(line)
    if (f) {
      if (fence === undefined) fence = f[1]![0]
      else if (f[1]![0] === fence) fence = undefined
      continue
    }
    if (fence !== undefined) continue
    const h = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (!h) continue
    const base = slug(h[1]!)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

/** What the checks need from the file system, so they can also run on made-up input. */
export interface Tree {
  exists(path: string): boolean
  read(path: string): string
}

const OUTSIDE_NAMES = /(?<![\w-])((?:[\w.-]+\/)*)(cloud-apis|design|firmware|mqtt-and-compliance|style)\.md\b/g
const OUTSIDE_FOLDER = /shared\/reference\b|\/work\/shared\b/g
const POINTER = /(?<![\w:/.-])([\w.-][\w./-]*\.md)#([\w-]+)/g
const IN_PAGE = /\]\(#([\w-]+)\)/g

/** The targets a path written in `file` may mean: repo-relative first, then relative to the file. */
function resolve(file: string, target: string, tree: Tree): string | undefined {
  const candidates = [posix.normalize(target), posix.normalize(posix.join(posix.dirname(file), target))]
  return candidates.find((c) => !c.startsWith('../') && tree.exists(c))
}

/** Every broken pointer in one file, as `file:line: problem`. */
export function problemsIn(file: string, text: string, tree: Tree): string[] {
  const problems: string[] = []
  const anchorCache = new Map<string, Set<string>>()
  const anchorsOf = (p: string) => {
    let a = anchorCache.get(p)
    if (!a) anchorCache.set(p, (a = anchors(tree.read(p))))
    return a
  }
  text.split('\n').forEach((line, i) => {
    const at = `${file}:${i + 1}`
    for (const m of line.matchAll(OUTSIDE_NAMES)) {
      const written = `${m[1]}${m[2]}.md`
      const target = resolve(file, written, tree)
      if (!target || !target.startsWith('docs/')) {
        problems.push(`${at}: "${written}" is not in the repository; point to the docs/ file that holds the fact`)
      }
    }
    for (const m of line.matchAll(OUTSIDE_FOLDER)) {
      problems.push(`${at}: "${m[0]}" is outside the repository; point to docs/ instead`)
    }
    for (const m of line.matchAll(POINTER)) {
      const [, written, anchor] = m as unknown as [string, string, string]
      const target = resolve(file, written, tree)
      if (!target) problems.push(`${at}: ${written}#${anchor}: no such file`)
      else if (!anchorsOf(target).has(anchor)) problems.push(`${at}: ${written}#${anchor}: ${target} has no heading with that anchor`)
    }
    if (file.endsWith('.md')) {
      for (const m of line.matchAll(IN_PAGE)) {
        if (!anchorsOf(file).has(m[1]!)) problems.push(`${at}: #${m[1]}: no heading with that anchor in this file`)
      }
    }
  })
  return problems
}

const repoTree: Tree = {
  exists: (p) => existsSync(join(root, p)) && statSync(join(root, p)).isFile(),
  read: (p) => readFileSync(join(root, p), 'utf8'),
}

t.test('GitHub anchors', async (t) => {
  t.equal(slug('Guarantees, and where they end'), 'guarantees-and-where-they-end')
  t.equal(slug('InfluxDB 1.x write'), 'influxdb-1x-write')
  t.equal(slug('When MQTT.js sends the PUBACK'), 'when-mqttjs-sends-the-puback')
  t.equal(slug('$SYS topics'), 'sys-topics')
  t.equal(slug('The `ferry` command'), 'the-ferry-command')
  t.equal(slug('See [the API](api.md)'), 'see-the-api')
  t.same([...anchors('# A\n```\n# not a heading\n```\n## A\n### B c #\n')], ['a', 'a-1', 'b-c'])
})

t.test('no comment or doc points outside the repository, and every docs anchor exists', async (t) => {
  const files = textFiles().filter((f) => f !== SELF)
  t.ok(files.includes('docs/cloud-apis.md') && files.length > 100, `scanned ${files.length} files`)
  const problems = files.flatMap((f) => problemsIn(f, repoTree.read(f), repoTree))
  t.same(problems, [], 'fix each pointer: name a docs/ file and an existing heading (docs/README.md)')
})

t.test('the checks catch what they are for', async (t) => {
  const docs: Record<string, string> = {
    'docs/cloud-apis.md': '# Cloud\n\n## ThingSpeak rate limits\n\nSee [below](#thingspeak-rate-limits).\n',
    'README.md': '# Ferry\n\n## Topics and payloads\n',
  }
  const tree: Tree = { exists: (p) => p in docs, read: (p) => docs[p] ?? '' }
  const check = (file: string, text: string) => problemsIn(file, text, tree)
  /** Exactly one problem per pattern, in order. */
  const expect = (got: string[], patterns: RegExp[], what: string) => {
    t.equal(got.length, patterns.length, `${what}: ${JSON.stringify(got)}`)
    patterns.forEach((p, i) => t.match(got[i], p, what))
  }

  t.same(check('gateway/src/a.ts', '// limits (docs/cloud-apis.md#thingspeak-rate-limits)'), [], 'a good pointer passes')
  t.same(check('gateway/src/a.ts', '// topics (README.md#topics-and-payloads)'), [], 'any repo .md may be named')
  t.same(check('device-sim/README.md', '[x](../docs/cloud-apis.md#thingspeak-rate-limits)'), [], 'file-relative Markdown links resolve')
  t.same(check('docs/README.md', '[cloud-apis.md](cloud-apis.md)'), [], 'a sibling inside docs/ is fine')
  t.same(check('docs/cloud-apis.md', docs['docs/cloud-apis.md']!), [], 'in-page links to existing headings pass')
  t.same(check('gateway/src/a.ts', '// see https://example.com/docs/api.md#x'), [], 'URLs are not repository pointers')

  expect(check('gateway/src/a.ts', '// limits (cloud-apis.md §1.3)'), [/"cloud-apis\.md" is not in the repository/], 'a bare reference-sheet name')
  expect(check('gateway/src/a.ts', ' * `shared/reference/cloud-apis.md` §7'), [/not in the repository/, /outside the repository/], 'the shared folder')
  expect(check('firmware/src/a.cpp', '// Order (design.md "OTA")'), [/"design\.md" is not in the repository/], 'design.md')
  expect(check('firmware/src/a.cpp', '// (firmware.md §3.2) and (style.md "Firmware")'), [/firmware\.md/, /style\.md/], 'two names on one line')
  expect(check('x.md', 'see mqtt-and-compliance.md'), [/mqtt-and-compliance\.md/], 'in a Markdown file')
  expect(check('gateway/src/a.ts', '// (docs/cloud-apis.md#thingspeak-limits)'), [/has no heading with that anchor/], 'a wrong anchor')
  expect(check('gateway/src/a.ts', '// (docs/mqtt.md#sessions)'), [/docs\/mqtt\.md#sessions: no such file/], 'a missing file')
  expect(check('docs/cloud-apis.md', 'See [x](#no-such-heading).'), [/#no-such-heading: no heading/], 'a wrong in-page link')
})
