import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './procs.js'

/**
 * Runs `bench/run.ts <args>` as its own process (what `npm run bench -- <args>` runs) and collects
 * its exit code and output; for the harness's own tests, which stop it before any timed sample.
 */
export async function runBenchCli(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import=tsx', join(ROOT, 'bench', 'run.ts'), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (b: Buffer) => (out += b))
  child.stderr.on('data', (b: Buffer) => (err += b))
  const code = await new Promise<number | null>((r) => child.on('exit', r))
  return { code, out, err }
}
