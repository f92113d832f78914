// `npm run demo -- --duration N` must exit 0 and report every published reading as delivered, with
// InfluxDB (installed here) and with the file sink (the fallback on machines without influxd).
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { tempDir } from '../helpers/tmp.js'

const ROOT = join(import.meta.dirname, '..', '..')

for (const sink of ['influxdb', 'file']) {
  t.test(`the demo with the ${sink} sink delivers every published reading and exits 0`, async (t) => {
    const dir = join(tempDir(t), 'demo')
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'demo', '--duration', '8', '--dir', dir, '--sink', sink], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    const [code] = await once(child, 'exit')
    if (code !== 0) t.comment(out)
    t.equal(code, 0, 'exits 0')
    t.match(out, /dashboard +http:\/\/127\.0\.0\.1:\d+\//)
    const total = /^total +(\d+) +(\d+) +(\d+)$/m.exec(out)
    t.ok(total, 'prints the summary')
    const [published, stored, delivered] = total!.slice(1).map(Number)
    t.ok(published! > 0, `${published} readings published`)
    t.equal(stored, published)
    t.equal(delivered, published)
    t.match(out, /every published reading was delivered to the local sink/)
    t.match(out, /firmware after OTA: demo-1 1\.1\.0, demo-2 1\.1\.0, demo-3 1\.1\.0/)
  })
}
