/**
 * Child processes for tests and benchmarks: spawned with their output kept line by line (a line split
 * across two chunks is joined first), a `waitFor(regexp)` that resolves on the first matching line,
 * and a stop (SIGTERM, then SIGKILL) registered with the caller's teardown.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'

interface Scope {
  teardown(fn: () => unknown): void
}

export interface Proc {
  child: ChildProcess
  pid: number
  lines: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves with the first output line (stdout or stderr) matching `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>
}

/**
 * Spawns `cmd` and keeps its output lines (up to `keepLines`, oldest dropped) unless `stdout` is
 * 'ignore' or a custom handler consumes it. Killed at scope close.
 */
export function start(scope: Scope, cmd: string, args: string[], opts: SpawnOptions & { keepLines?: number; onStdout?: (b: Buffer) => void } = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  const lines: string[] = []
  const keep = opts.keepLines ?? 5000
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = []
  let partial = ''
  const onText = (buf: Buffer) => {
    const text = partial + buf.toString('utf8')
    const parts = text.split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) {
      if (!line) continue
      lines.push(line)
      if (lines.length > keep) lines.shift()
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve(line)
        }
      }
    }
  }
  if (opts.onStdout) child.stdout?.on('data', opts.onStdout)
  else child.stdout?.on('data', onText)
  child.stderr?.on('data', onText)
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }))
  const alive = () => child.exitCode === null && child.signalCode === null
  const stop = async (graceMs = 5000) => {
    if (!alive()) return
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    await exited
    clearTimeout(killer)
  }
  scope.teardown(() => stop(3000))
  return {
    child,
    pid: child.pid ?? -1,
    lines,
    exited,
    stop,
    waitFor(re: RegExp, timeoutMs = 30_000) {
      const hit = lines.find((l) => re.test(l))
      if (hit) return Promise.resolve(hit)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${cmd}: timed out waiting for ${re}; last lines:\n${lines.slice(-10).join('\n')}`)), timeoutMs)
        const w = {
          re,
          resolve: (l: string) => {
            clearTimeout(timer)
            resolve(l)
          },
        }
        waiters.push(w)
        void exited.then(() => {
          if (waiters.includes(w)) {
            clearTimeout(timer)
            reject(new Error(`${cmd} exited while waiting for ${re}; last lines:\n${lines.slice(-10).join('\n')}`))
          }
        })
      })
    },
  }
}

