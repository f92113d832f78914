/**
 * The check bench/run.ts makes before any benchmark starts: every external command the selected
 * benchmarks spawn must be there. When some are missing and this is root on Debian, the Debian
 * packages are installed with apt-get, as scripts/bootstrap.sh does for the test suite's packages
 * (nginx is needed only here, so only this check installs it; the others are in bootstrap's list
 * too), and the services the packages start are stopped again. Otherwise the run stops before
 * starting anything, with one message naming the missing commands and the apt-get command that
 * installs them (bench/run.ts exits 2).
 *
 * `FERRY_SKIP_BENCH_INSTALL=1` (or `FERRY_SKIP_APT=1`, bootstrap's switch) never runs apt-get.
 */
import { spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'

/** An external command a benchmark spawns, and the Debian package that provides it. */
export interface Tool {
  command: string
  pkg: string
  /**
   * Absolute paths tried before PATH, exactly as the code that starts the command does
   * (common/src/broker/broker.ts looks for mosquitto in the sbin folders first).
   */
  alsoAt?: string[]
  /** Why a benchmark needs it, for the message. */
  role: string
}

/** Every command a benchmark spawns (besides `node` itself and `sh`, which Debian always has). */
export const TOOLS = {
  mosquitto: { command: 'mosquitto', pkg: 'mosquitto', alsoAt: ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto'], role: 'the MQTT broker' },
  mosquitto_pub: { command: 'mosquitto_pub', pkg: 'mosquitto-clients', role: 'the MQTT load generator' },
  mosquitto_sub: { command: 'mosquitto_sub', pkg: 'mosquitto-clients', role: 'the MQTT baseline subscriber' },
  influxd: { command: 'influxd', pkg: 'influxdb', role: 'InfluxDB 1.6, the drain target' },
  curl: { command: 'curl', pkg: 'curl', role: 'the HTTP client of the baselines and downloads' },
  nginx: { command: 'nginx', pkg: 'nginx', role: 'the web server the OTA server is compared with' },
  // Essential on Debian (util-linux), so only ever missing elsewhere; needed only for `--cpus`.
  taskset: { command: 'taskset', pkg: 'util-linux', alsoAt: ['/usr/bin/taskset', '/bin/taskset'], role: 'pins processes to cores for --cpus' },
} satisfies Record<string, Tool>

export type ToolName = keyof typeof TOOLS

/** Debian services the packages start on install that would hold ports (bootstrap stops mosquitto and influxdb the same way). */
const SERVICES: Record<string, string> = { nginx: 'nginx', mosquitto: 'mosquitto', influxdb: 'influxdb' }

/** Folders where Debian keeps administrator commands, often not on a normal user's PATH. */
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin']

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

/** Where `tool` would be found by the code that starts it (its `alsoAt` paths, then PATH), or undefined. */
export function findTool(tool: Pick<Tool, 'command' | 'alsoAt'>, pathVar = process.env.PATH ?? ''): string | undefined {
  for (const p of tool.alsoAt ?? []) if (executable(p)) return p
  for (const dir of pathVar.split(delimiter)) {
    if (dir && executable(join(dir, tool.command))) return join(dir, tool.command)
  }
  return undefined
}

export interface Missing {
  tool: Tool
  /** Benchmarks that need it. */
  benches: string[]
  /** Present but not on PATH (e.g. /usr/sbin/nginx for a normal user): apt-get would not help. */
  notOnPath?: string
}

export interface PreflightOptions {
  /** Environment to read PATH and the skip switches from (default process.env). */
  env?: NodeJS.ProcessEnv
  /** Default: effective uid 0. */
  isRoot?: boolean
  /** Default: /etc/debian_version exists and apt-get is on PATH. */
  isDebian?: boolean
  /** Installs Debian packages; throws when that fails. Default: apt-get (see `aptInstall`). */
  install?: (pkgs: string[], log: (msg: string) => void) => void | Promise<void>
  /** Stops a system service a package started; must not throw. Default: systemctl, then service. */
  stopService?: (name: string) => void
  /** Folders searched for a hint when a command is not on PATH (default the sbin folders). */
  sbinDirs?: string[]
  log?: (msg: string) => void
}

export type PreflightResult =
  | { ok: true; installed: string[] }
  | { ok: false; missing: Missing[]; installed: string[]; message: string }

/** What each selected benchmark needs: `[{ bench: 'ota', tools: [TOOLS.nginx, TOOLS.curl] }, …]`. */
export type Needs = Array<{ bench: string; tools: Tool[] }>

function findMissing(needs: Needs, pathVar: string, sbinDirs: string[]): Missing[] {
  const byCommand = new Map<string, Missing>()
  for (const { bench, tools } of needs) {
    for (const tool of tools) {
      if (findTool(tool, pathVar)) continue
      const m = byCommand.get(tool.command) ?? { tool, benches: [] }
      if (!m.benches.includes(bench)) m.benches.push(bench)
      const elsewhere = sbinDirs.map((d) => join(d, tool.command)).find(executable)
      if (elsewhere) m.notOnPath = elsewhere
      byCommand.set(tool.command, m)
    }
  }
  return [...byCommand.values()]
}

const unique = (xs: string[]) => [...new Set(xs)]

/** `apt-get update -qq` and `apt-get install -y -qq --no-install-recommends <pkgs>`, noninteractive, output to stderr. */
export function aptInstall(pkgs: string[], log: (msg: string) => void = () => {}): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...pkgs]]) {
    log(`apt-get ${args.join(' ')}`)
    const r = spawnSync('apt-get', args, { env, stdio: ['ignore', 2, 2] })
    if (r.error) throw new Error(`apt-get ${args[0]}: ${r.error.message}`)
    if (r.status !== 0) throw new Error(`apt-get ${args[0]} exited with ${r.status ?? r.signal}`)
  }
}

/** `systemctl stop <name>`, or `service <name> stop` where that fails (no systemd); failures ignored. */
export function stopService(name: string): void {
  const ok = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 30_000 })
    return !r.error && r.status === 0
  }
  if (!ok('systemctl', ['stop', name])) ok('service', [name, 'stop'])
}

function aptCommand(pkgs: string[], root: boolean): string {
  const sudo = root ? '' : 'sudo '
  return `${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${pkgs.join(' ')}`
}

function describe(missing: Missing[], why: string, root: boolean): string {
  const width = Math.max(...missing.map((m) => m.tool.command.length))
  const lines = missing.map((m) => {
    const where = m.notOnPath ? `; installed as ${m.notOnPath}, but ${m.notOnPath.slice(0, -m.tool.command.length - 1)} is not on PATH` : ''
    return `  ${m.tool.command.padEnd(width)}  Debian package ${m.tool.pkg}: ${m.tool.role} (${m.benches.join(', ')})${where}`
  })
  const benches = unique(missing.flatMap((m) => m.benches))
  const toInstall = unique(missing.filter((m) => !m.notOnPath).map((m) => m.tool.pkg))
  const offPath = unique(missing.filter((m) => m.notOnPath).map((m) => m.notOnPath!.slice(0, -m.tool.command.length - 1)))
  const fix = [
    ...(toInstall.length ? [`Install ${toInstall.length === 1 ? 'it' : 'them'} and run the benchmarks again:`, `  ${aptCommand(toInstall, root)}`] : []),
    ...(offPath.length ? [`Put ${offPath.join(' and ')} on PATH, e.g.: PATH="$PATH:${offPath.join(':')}" npm run bench`] : []),
  ]
  return [
    `bench: cannot run ${benches.join(', ')}: ${missing.length === 1 ? 'this command is' : 'these commands are'} missing:`,
    ...lines,
    `Nothing was started. Not installed automatically: ${why}.`,
    ...fix,
  ].join('\n')
}

/**
 * Checks that every command in `needs` can be found; installs the missing Debian packages when
 * allowed (root, Debian, no skip switch), then checks again. Never starts a benchmark.
 */
export async function preflight(needs: Needs, opts: PreflightOptions = {}): Promise<PreflightResult> {
  const env = opts.env ?? process.env
  const pathVar = env.PATH ?? ''
  const sbinDirs = opts.sbinDirs ?? SBIN
  const log = opts.log ?? (() => {})
  const root = opts.isRoot ?? (typeof process.getuid === 'function' && process.getuid() === 0)
  let missing = findMissing(needs, pathVar, sbinDirs)
  if (missing.length === 0) return { ok: true, installed: [] }

  const pkgs = unique(missing.filter((m) => !m.notOnPath).map((m) => m.tool.pkg))
  const skip = env.FERRY_SKIP_BENCH_INSTALL === '1' ? 'FERRY_SKIP_BENCH_INSTALL=1' : env.FERRY_SKIP_APT === '1' ? 'FERRY_SKIP_APT=1' : undefined
  const debian = opts.isDebian ?? (existsSync('/etc/debian_version') && findTool({ command: 'apt-get' }, pathVar) !== undefined)
  const why = pkgs.length === 0 ? 'they are installed, but not on PATH' : skip ? `${skip} is set` : !root ? 'not running as root' : !debian ? 'no apt-get here (not Debian)' : undefined
  if (why) return { ok: false, missing, installed: [], message: describe(missing, why, root) }

  log(`installing Debian packages for the benchmarks: ${pkgs.join(' ')}`)
  try {
    await (opts.install ?? aptInstall)(pkgs, log)
  } catch (err) {
    return { ok: false, missing, installed: [], message: describe(missing, `apt-get failed (${(err as Error).message})`, root) }
  } finally {
    // A Debian package starts its service on install (nginx on port 80); the benchmarks start their own.
    for (const p of pkgs) if (SERVICES[p]) (opts.stopService ?? stopService)(SERVICES[p])
  }
  missing = findMissing(needs, pathVar, sbinDirs)
  if (missing.length) return { ok: false, missing, installed: pkgs, message: describe(missing, `still missing after apt-get install ${pkgs.join(' ')}`, root) }
  return { ok: true, installed: pkgs }
}
