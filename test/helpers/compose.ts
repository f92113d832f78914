import { spawnSync } from 'node:child_process'

/** A Compose service, as far as the deployment tests read it. */
export interface ComposeService {
  image?: string
  build?: { context: string; dockerfile?: string }
  hostname?: string
  user?: string
  restart?: string
  read_only?: boolean
  cap_drop?: string[]
  security_opt?: string[]
  ports?: (string | { published?: number | string; target: number; host_ip?: string })[]
  expose?: (string | number)[]
  volumes?: (string | { type: string; source?: string; target: string; read_only?: boolean })[]
  environment?: Record<string, string | null>
  healthcheck?: { test?: string | string[]; disable?: boolean }
  networks?: Record<string, { aliases?: string[] } | null>
  depends_on?: Record<string, { condition?: string }>
  profiles?: string[]
}

/** The model `docker-compose config` resolves from a file. */
export interface ComposeModel {
  services: Record<string, ComposeService>
  volumes?: Record<string, unknown>
  networks?: Record<string, unknown>
}

/** What `docker-compose … config` printed and how it ended. */
export interface ComposeRun {
  status: number | null
  stdout: string
  stderr: string
}

/**
 * Runs Debian's docker-compose 1.29 (`-f <file> config <args>`) in `cwd` with only PATH, HOME and
 * `env`, so neither the developer's shell nor their own .env files change what is checked. Throws,
 * naming the fix, when docker-compose is not installed: a deployment test must not pass by skipping.
 */
export function runComposeConfig(cwd: string, file: string, args: string[], env: Record<string, string> = {}): ComposeRun {
  const r = spawnSync('docker-compose', ['-f', file, 'config', ...args], { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd, ...env }, encoding: 'utf8' })
  if (r.error) throw new Error(`docker-compose could not be run (${r.error.message}); run scripts/bootstrap.sh to install docker-compose`)
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** The resolved Compose model of `file`, as JSON (YAML read by python3-yaml, a dependency of Debian's docker-compose). */
export function composeModel(cwd: string, file: string, env: Record<string, string> = {}): ComposeModel {
  const r = runComposeConfig(cwd, file, [], env)
  if (r.status !== 0) throw new Error(`docker-compose -f ${file} config failed (exit ${r.status}): ${r.stderr.trim()}`)
  const json = spawnSync('python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], { input: r.stdout, encoding: 'utf8' })
  if (json.status !== 0) throw new Error(`python3-yaml could not read the Compose output: ${json.stderr}`)
  return JSON.parse(json.stdout) as ComposeModel
}
