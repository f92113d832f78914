import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, chmodSync, chownSync, existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { basename, dirname, join, resolve } from 'node:path'
import { FerryError } from '../errors.js'
import { pkiFiles } from '../pki/pki.js'
import { readRepoConfig, renderNativeConfig, repoMosquittoFile } from './config.js'

export interface BrokerOptions {
  pkiDir: string
  dataDir: string
  port: number
  bind?: string
  /** The mosquitto binary; default `mosquitto` on PATH (Debian: /usr/sbin/mosquitto). */
  binary?: string
  /** Gets every line mosquitto logs. */
  onLog?: (line: string) => void
  /** How long to wait for readiness. */
  readyTimeoutMs?: number
}

export interface RunningBroker {
  port: number
  process: ChildProcess
  configFile: string
  /** Re-copies the CRL (and certificates) and sends SIGHUP: mosquitto re-reads the CRL for new connections. */
  reload(): Promise<void>
  /** SIGTERM (clean shutdown, persistence saved); resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
  exited: Promise<number | null>
  logs: string[]
}

/**
 * The user mosquitto drops to when started as root: its `user` option, whose default is `mosquitto`
 * (the repo's config does not set it). When no such user exists, mosquitto stays root.
 */
const BROKER_USER = 'mosquitto'

export interface Account {
  name: string
  uid: number
  /** Primary group. */
  gid: number
  /** Supplementary groups (mosquitto calls initgroups() when it drops root). */
  groups: number[]
}

/** `name`'s account from the texts of /etc/passwd and /etc/group, or undefined when passwd has no such user. */
export function lookupAccount(name: string, passwd: string, group: string): Account | undefined {
  const line = passwd.split('\n').find((l) => l.startsWith(`${name}:`))
  if (!line) return undefined
  const [, , uid, gid] = line.split(':')
  const groups = group
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 4 && (f[3] ?? '').split(',').map((m) => m.trim()).includes(name))
    .map((f) => Number(f[2]))
  return { name, uid: Number(uid), gid: Number(gid), groups }
}

/** What the reachability check reads from the host; tests pass a fake. */
export interface HostView {
  /** Effective uid of this process. */
  euid: number
  /** Contents of a file (/etc/passwd, /etc/group); '' when unreadable. */
  readText(path: string): string
  /** stat() following symlinks, or undefined when the path does not exist. */
  stat(path: string): { mode: number; uid: number; gid: number; isDirectory: boolean } | undefined
  /** The path with symlinks resolved as far as it exists. */
  realpath(path: string): string
}

const host: HostView = {
  euid: typeof process.geteuid === 'function' ? process.geteuid() : -1,
  readText(path) {
    try {
      return readFileSync(path, 'utf8')
    } catch {
      return ''
    }
  },
  stat(path) {
    try {
      const st = statSync(path)
      return { mode: st.mode, uid: st.uid, gid: st.gid, isDirectory: st.isDirectory() }
    } catch {
      return undefined
    }
  },
  realpath(path) {
    const rest: string[] = []
    let p = resolve(path)
    while (!existsSync(p) && dirname(p) !== p) {
      rest.unshift(basename(p))
      p = dirname(p)
    }
    return join(realpathSync(p), ...rest)
  },
}

/** The account mosquitto will run as when started by this process, or undefined when it will not change user. */
export function brokerAccount(view: HostView = host): Account | undefined {
  if (view.euid !== 0) return undefined
  const who = lookupAccount(BROKER_USER, view.readText('/etc/passwd'), view.readText('/etc/group'))
  return who && who.uid !== 0 ? who : undefined
}

export interface ReachProblem {
  user: Account
  /** The first folder, from `/` down, that the user cannot enter. */
  folder: string
  mode: number
  /** The chmod that lets the user in, e.g. `chmod o+x /root`. */
  fix: string
  message: string
}

/**
 * Whether `who` may enter (search) a folder with this owner, group and mode, by the kernel's rule:
 * only the owner bits when `who` owns it, else only the group bits when `who` is in its group (primary
 * or supplementary), else the other bits; and which class that was. Root's own rights (what
 * `access()` would report here) do not count. POSIX ACLs are not consulted.
 */
function searchClass(st: { mode: number; uid: number; gid: number }, who: Account): { ok: boolean; cls: 'u' | 'g' | 'o' } {
  if (st.uid === who.uid) return { ok: (st.mode & 0o100) !== 0, cls: 'u' }
  if (st.gid === who.gid || who.groups.includes(st.gid)) return { ok: (st.mode & 0o010) !== 0, cls: 'g' }
  return { ok: (st.mode & 0o001) !== 0, cls: 'o' }
}

/**
 * Run as root, mosquitto drops to its own user *before* it opens `<data>/acl`, the staged
 * certificates and the persistence folder, so that user must be able to enter every folder from `/`
 * down to the data folder. Returns the first one it cannot enter, with the fix, or undefined when
 * all are fine, when this process is not root (mosquitto then keeps our user) or when mosquitto will
 * stay root. Folders that do not exist yet are skipped: they are created later.
 */
export function brokerReachProblem(dataDir: string, view: HostView = host): ReachProblem | undefined {
  const user = brokerAccount(view)
  if (!user) return undefined
  const target = view.realpath(resolve(dataDir))
  const parts = target.split('/').filter(Boolean)
  for (let i = 0; i <= parts.length; i++) {
    const folder = '/' + parts.slice(0, i).join('/')
    const st = view.stat(folder)
    if (!st || !st.isDirectory) break
    const { ok, cls } = searchClass(st, user)
    if (ok) continue
    const mode = st.mode & 0o7777
    const fix = `chmod ${cls}+x ${folder}`
    const message =
      `mosquitto runs as user ${user.name} (uid ${user.uid}) and cannot enter ${folder} (mode ${mode.toString(8).padStart(4, '0')}): ` +
      `choose a --data folder it can reach (e.g. /var/lib/ferry/broker) or allow it in: ${fix}`
    return { user, folder, mode, fix, message }
  }
  return undefined
}

/** Throws FERRY_ERR_BROKER naming the folder and the fix when mosquitto's user could not reach `dataDir`. */
export function assertBrokerCanReach(dataDir: string, view: HostView = host): void {
  const problem = brokerReachProblem(dataDir, view)
  if (problem) throw new FerryError('FERRY_ERR_BROKER', problem.message)
}

/**
 * Copies what the broker reads into `<data>/certs` and `<data>/acl`, owned by the broker's user.
 * Mosquitto started as root drops privileges *before* it loads certificates, so root-owned 0600 keys
 * in the PKI folder would be unreadable; copying keeps the PKI folder untouched. The ACL is copied
 * because 2.0.16+ warns about sensitive files not owned by the broker's user.
 */
export function stageBrokerFiles(pkiDir: string, dataDir: string): { certsDir: string; aclFile: string; persistDir: string } {
  const f = pkiFiles(pkiDir)
  for (const need of [f.caCert, f.serverCert, f.serverKey, f.crl]) {
    if (!existsSync(need)) {
      throw new FerryError('FERRY_ERR_BROKER', `${need} is missing; run "ferry pki init --dir ${pkiDir}" and "ferry pki server --dir ${pkiDir}" first.`)
    }
  }
  const certsDir = join(dataDir, 'certs')
  const persistDir = join(dataDir, 'persist')
  const aclFile = join(dataDir, 'acl')
  mkdirSync(certsDir, { recursive: true })
  mkdirSync(persistDir, { recursive: true })
  const user = brokerAccount()
  const place = (src: string, dst: string, mode: number) => {
    copyFileSync(src, dst)
    chmodSync(dst, mode)
    if (user) chownSync(dst, user.uid, user.gid)
  }
  place(f.caCert, join(certsDir, 'ca.crt'), 0o644)
  place(f.serverCert, join(certsDir, 'server.crt'), 0o644)
  place(f.serverKey, join(certsDir, 'server.key'), 0o600)
  place(f.crl, join(certsDir, 'crl.pem'), 0o644)
  place(repoMosquittoFile('acl'), aclFile, 0o600)
  if (user) {
    chownSync(persistDir, user.uid, user.gid)
    chownSync(certsDir, user.uid, user.gid)
  }
  return { certsDir, aclFile, persistDir }
}

/** Resolves once a TCP connection to the port succeeds. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10_000, isAlive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host })
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (ok) return
    if (!isAlive()) throw new FerryError('FERRY_ERR_BROKER', `process exited before port ${port} accepted connections`)
    if (Date.now() > deadline) throw new FerryError('FERRY_ERR_BROKER', `nothing accepted connections on ${host}:${port} within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Starts the system mosquitto with the repo's config rewritten for `opts`, and waits until it accepts connections. */
export async function startBroker(opts: BrokerOptions): Promise<RunningBroker> {
  // Before creating anything, then again for the folders just created (a umask such as 077 makes them private).
  assertBrokerCanReach(opts.dataDir)
  mkdirSync(opts.dataDir, { recursive: true })
  assertBrokerCanReach(opts.dataDir)
  const staged = stageBrokerFiles(opts.pkiDir, opts.dataDir)
  const configFile = join(opts.dataDir, 'mosquitto.conf')
  writeFileSync(configFile, renderNativeConfig(readRepoConfig(), { ...staged, port: opts.port, bind: opts.bind }), { mode: 0o644 })
  const child = spawn(opts.binary ?? findMosquitto(), ['-c', configFile], { stdio: ['ignore', 'ignore', 'pipe'] })
  const logs: string[] = []
  let buf = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (chunk: string) => {
    buf += chunk
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      logs.push(line)
      if (logs.length > 2000) logs.shift()
      opts.onLog?.(line)
    }
  })
  let alive = true
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false
      resolve(code ?? (signal ? 128 : null))
    })
    child.once('error', () => {
      alive = false
      resolve(127)
    })
  })
  try {
    await waitForPort(opts.port, opts.bind && opts.bind !== '0.0.0.0' ? opts.bind : '127.0.0.1', opts.readyTimeoutMs ?? 10_000, () => alive)
  } catch (err) {
    child.kill('SIGKILL')
    await exited
    throw new FerryError('FERRY_ERR_BROKER', `mosquitto did not start: ${(err as Error).message}\n${logs.slice(-15).join('\n')}`, { cause: err })
  }
  return {
    port: opts.port,
    process: child,
    configFile,
    logs,
    exited,
    async reload() {
      stageBrokerFiles(opts.pkiDir, opts.dataDir)
      const before = logs.length
      child.kill('SIGHUP')
      // Mosquitto logs "Reloading config." when it handles the signal.
      const deadline = Date.now() + 5000
      while (!logs.slice(before).some((l) => l.includes('Reloading config')) && Date.now() < deadline && alive) {
        await new Promise((r) => setTimeout(r, 20))
      }
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (alive) child.kill(signal)
      return exited
    },
  }
}

function findMosquitto(): string {
  for (const p of ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto']) if (existsSync(p)) return p
  return 'mosquitto'
}

