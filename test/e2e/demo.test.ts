// `npm run demo -- --duration N` must exit 0 and report every published reading as delivered, with
// InfluxDB (installed here) and with the file sink (the fallback on machines without influxd), and
// also from a private folder (a clone in /root, mode 0700) when run as root.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.js'

const ROOT = join(import.meta.dirname, '..', '..')

/** Runs `ferry demo` to its end; asserts exit 0 and published = stored = delivered; returns its output. */
async function runDemo(t: Test, args: string[]): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'demo', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const [code] = await once(child, 'exit')
  if (code !== 0) t.comment(out)
  t.equal(code, 0, 'exits 0')
  const total = /^total +(\d+) +(\d+) +(\d+)$/m.exec(out)
  t.ok(total, 'prints the summary')
  const [published, stored, delivered] = (total?.slice(1) ?? []).map(Number)
  t.ok(published! > 0, `${published} readings published`)
  t.equal(stored, published, 'every published reading stored')
  t.equal(delivered, published, 'every published reading delivered')
  return out
}

for (const sink of ['influxdb', 'file']) {
  t.test(`the demo with the ${sink} sink delivers every published reading and exits 0`, async (t) => {
    const out = await runDemo(t, ['--duration', '8', '--dir', join(tempDir(t), 'demo'), '--sink', sink])
    t.match(out, /dashboard +http:\/\/127\.0\.0\.1:\d+\//)
    t.match(out, /every published reading was delivered to the local sink/)
    t.match(out, /firmware after OTA: demo-1 1\.1\.0, demo-2 1\.1\.0, demo-3 1\.1\.0/)
  })
}

t.test('the demo in a 0700 folder (a clone in /root) works as root: the broker data goes to a temp folder', async (t) => {
  const home = join(tempDir(t), 'home')
  mkdirSync(home, { mode: 0o700 })
  const dir = join(home, 'ferry', '.ferry-demo')
  const out = await runDemo(t, ['--duration', '5', '--dir', dir, '--sink', 'file'])
  const staged = /^broker data in (\S+) \(removed at the end\): mosquitto's user (\S+) cannot enter (\S+) \(mode 0700\)$/m.exec(out)
  // Root's mosquitto drops to user mosquitto, which cannot enter `home`; any other user's mosquitto keeps that user.
  if (process.getuid?.() === 0 && /^mosquitto:/m.test(readFileSync('/etc/passwd', 'utf8'))) {
    t.ok(staged, 'says that the broker data went to a temp folder, and why')
    t.equal(staged?.[2], 'mosquitto')
    t.equal(staged?.[3], home, 'names the folder mosquitto cannot enter')
    t.notOk(existsSync(staged![1]!), 'the temp folder is removed at the end')
    t.notOk(existsSync(join(dir, 'broker')), 'no broker data in the demo folder')
  } else {
    t.notOk(staged, 'mosquitto keeps our user and reaches the demo folder: nothing is moved')
  }
  t.ok(existsSync(join(dir, 'logs', 'broker.log')), 'everything else stays in the demo folder')
  t.ok(existsSync(join(dir, 'pki', 'ca.crt')))
})
