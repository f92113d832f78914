import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
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

/** uid/gid of the user mosquitto drops to when started as root, or undefined when not root. */
function brokerUser(): { uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('mosquitto:'))
  if (!line) return undefined
  const [, , uid, gid] = line.split(':')
  return { uid: Number(uid), gid: Number(gid) }
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
  const user = brokerUser()
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
  mkdirSync(opts.dataDir, { recursive: true })
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

