/**
 * Child processes for tests and benchmarks: spawned with their output kept line by line (a line split
 * across two chunks is joined first), a `waitFor(regexp)` that resolves on the first matching line,
 * and a stop (SIGTERM, then SIGKILL) registered with the caller's teardown (tap's `t`, or the bench's
 * `Scope`). A command that cannot be started (e.g. `spawn nginx ENOENT`) or that exits before the line
 * it is waited for rejects at once with an error naming it, instead of hanging until the timeout or
 * crashing the process with an unhandled 'error' event.
 *
 * bench/lib/procs.ts `start` is this one plus the bench runner's own cleanup (`track`, `hint`).
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'

interface Scope {
  teardown(fn: () => unknown): void
}

export interface Proc {
  child: ChildProcess
  /** -1 when the command could not be started. */
  pid: number
  /** `cmd args…`, for messages. */
  command: string
  lines: string[]
  /**
   * Resolves when the process exits; rejects with a `SpawnError` when it could not be started at
   * all. Never an unhandled rejection when nobody awaits it.
   */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Started and not exited yet. */
  alive(): boolean
  /**
   * Resolves with the first output line (stdout or stderr) matching `re`; rejects when the process
   * could not be started, exits first, or `timeoutMs` passes.
   */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>
}

/** The error of a command that could not be started at all; `hint` is added to the not-found message. */
export class SpawnError extends Error {
  readonly code: string | undefined
  constructor(readonly cmd: string, cause: NodeJS.ErrnoException, hint?: string) {
    super(cause.code === 'ENOENT'
      ? `could not start ${cmd}: not found on PATH (${cause.message})${hint ? `; ${hint}` : ''}`
      : `could not start ${cmd}: ${cause.message}`, { cause })
    this.code = cause.code
  }
}

export interface StartOptions extends SpawnOptions {
  /** How many output lines to keep (oldest dropped); 5000 unless told. */
  keepLines?: number
  /** Consumes stdout instead of the line keeper (only stderr lines are kept then). */
  onStdout?: (b: Buffer) => void
  /**
   * Called once the process has a pid, with its command line; the function it returns (if any) is
   * called when the process exits. The bench registers its children for its own cleanup here.
   */
  track?: (pid: number, command: string) => (() => void) | void
  /** Added to the message of a `SpawnError` for a command not found on PATH. */
  hint?: string
}

/**
 * Spawns `cmd` and keeps its output lines (up to `keepLines`, oldest dropped) unless a custom
 * `onStdout` consumes stdout. Stopped (SIGTERM, then SIGKILL) at scope close.
 */
export function start(scope: Scope, cmd: string, args: string[], opts: StartOptions = {}): Proc {
  const { keepLines, onStdout, track, hint, ...spawnOpts } = opts
  const command = [cmd, ...args].join(' ')
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...spawnOpts })
  const pid = child.pid ?? -1
  const untrack = pid > 0 ? track?.(pid, command) : undefined
  const lines: string[] = []
  const keep = keepLines ?? 5000
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
  child.stdout?.on('data', onStdout ?? onText)
  child.stderr?.on('data', onText)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      untrack?.()
      resolve({ code, signal })
    })
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Not started at all (no pid): there will be no 'exit'. Otherwise e.g. a failed kill(); the
      // process is still there and 'exit' follows.
      if (pid < 0) reject(new SpawnError(cmd, err, hint))
      else lines.push(`${cmd}: ${err.message}`)
    })
  })
  exited.catch(() => {})
  const alive = () => pid > 0 && child.exitCode === null && child.signalCode === null
  const stop = async (graceMs = 5000) => {
    if (!alive()) return
    child.kill('SIGTERM')
    const killer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    await exited.catch(() => {})
    clearTimeout(killer)
  }
  scope.teardown(() => stop(3000))
  return {
    child,
    pid,
    command,
    lines,
    exited,
    alive,
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
        const gone = (err?: unknown) => {
          if (!waiters.includes(w)) return
          waiters.splice(waiters.indexOf(w), 1)
          clearTimeout(timer)
          reject(err instanceof Error ? err : new Error(`${cmd} exited while waiting for ${re}; last lines:\n${lines.slice(-10).join('\n')}`))
        }
        exited.then(() => gone(), gone)
      })
    },
  }
}
