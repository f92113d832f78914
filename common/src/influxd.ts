/**
 * A private InfluxDB 1.x (`influxd` from the Debian package) for the demo and the tests: generated
 * config in its own folder, loopback ports for HTTP and the RPC bind-address (8088 by default, which
 * would clash between parallel instances), reporting, monitoring, UDP and the other listeners off.
 * Started and awaited on `/ping` 204.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FerryError } from './errors.js'
import { freeTcpPort } from './ports.js'

export interface LocalInfluxd {
  url: string
  port: number
  process: ChildProcess
  /** Runs an InfluxQL statement (POST /query, epoch=u) and returns the parsed JSON; throws on HTTP errors or statement errors. */
  query(q: string, db?: string): Promise<QueryResult>
  /** CREATE DATABASE, returning its name. */
  createDatabase(name: string): Promise<string>
  /** Rows of `SELECT * FROM <measurement>` as objects, oldest first; `time` in µs (exact as a JS number, unlike ns). */
  select(db: string, measurement?: string): Promise<Record<string, unknown>[]>
  /** Admin credentials when started with auth on. */
  admin?: { user: string; password: string }
  stop(): Promise<void>
}

export interface QueryResult {
  results: { statement_id: number; error?: string; series?: { name: string; columns: string[]; values: unknown[][] }[] }[]
}

export interface InfluxdOptions {
  /** Turn HTTP auth on and create this admin user. */
  auth?: { user: string; password: string }
  /** `[http] max-body-size` in bytes (default 25,000,000 as shipped). */
  maxBodySize?: number
  /** HTTP port to use (e.g. one a gateway is already pointed at while InfluxDB is "down"). */
  httpPort?: number
  /** Folder for config, data and WAL (kept across restarts on the same folder). */
  dir: string
}

/** Starts a private influxd 1.x. About a second on this machine. */
export async function startLocalInfluxd(opts: InfluxdOptions): Promise<LocalInfluxd> {
  const dir = opts.dir
  mkdirSync(dir, { recursive: true })
  const [httpPort, rpcPort] = [opts.httpPort ?? (await freeTcpPort()), await freeTcpPort()]
  const conf = `
reporting-enabled = false
bind-address = "127.0.0.1:${rpcPort}"
[meta]
  dir = "${join(dir, 'meta')}"
  logging-enabled = false
[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  query-log-enabled = false
  index-version = "inmem"
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = ${opts.auth ? 'true' : 'false'}
  log-enabled = false
  pprof-enabled = false
  max-body-size = ${opts.maxBodySize ?? 25_000_000}
[logging]
  level = "warn"
  suppress-logo = true
[[udp]]
  enabled = false
[[graphite]]
  enabled = false
[[collectd]]
  enabled = false
[[opentsdb]]
  enabled = false
`
  const confPath = join(dir, 'influxdb.conf')
  writeFileSync(confPath, conf)
  const proc = spawn('influxd', ['run', '-config', confPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: dir } })
  let output = ''
  proc.stdout?.on('data', (d: Buffer) => { output += d.toString() })
  proc.stderr?.on('data', (d: Buffer) => { output += d.toString() })
  const exited = once(proc, 'exit')
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const killer = setTimeout(() => proc.kill('SIGKILL'), 3000)
    proc.kill('SIGTERM')
    await exited
    clearTimeout(killer)
  }

  const url = `http://127.0.0.1:${httpPort}`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (proc.exitCode !== null) throw new FerryError('FERRY_ERR_INFLUXD', `influxd exited with ${proc.exitCode} before it was ready; check that InfluxDB 1.x is installed and starts by hand. Its output:\n${output}`)
    try {
      const r = await fetch(`${url}/ping`)
      if (r.status === 204) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop()
      throw new FerryError('FERRY_ERR_INFLUXD', `influxd did not answer /ping within 20 s; a slow or busy machine, or a port another process holds. Its output:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }

  const authQs = () => (opts.auth ? `&u=${encodeURIComponent(opts.auth.user)}&p=${encodeURIComponent(opts.auth.password)}` : '')
  const query = async (q: string, db?: string): Promise<QueryResult> => {
    const r = await fetch(`${url}/query?epoch=u${db ? `&db=${encodeURIComponent(db)}` : ''}${authQs()}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ q }).toString(),
    })
    const text = await r.text()
    if (r.status !== 200) throw new FerryError('FERRY_ERR_INFLUXD', `influxd /query ${q} → ${r.status} ${text}; check that influxd at ${url} is still running`)
    const j = JSON.parse(text) as QueryResult
    const err = j.results.find((x) => x.error)
    if (err) throw new FerryError('FERRY_ERR_INFLUXD', `influxd refused the statement ${q}: ${err.error}`)
    return j
  }
  if (opts.auth) {
    // With auth on and no users yet, 1.x lets exactly this statement through (bootstrap).
    const r = await fetch(`${url}/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ q: `CREATE USER "${opts.auth.user}" WITH PASSWORD '${opts.auth.password}' WITH ALL PRIVILEGES` }).toString(),
    })
    if (r.status !== 200) throw new FerryError('FERRY_ERR_INFLUXD', `influxd: creating the admin user failed: ${r.status} ${await r.text()}; its data folder must be new (auth is bootstrapped on an empty one)`)
    // influxd answers the CREATE USER before every part of it sees the new admin: until then it still
    // treats requests as bootstrap ones and refuses them with 403 "no user provided", credentials or
    // not. Wait until an authenticated statement goes through.
    const ready = Date.now() + 10_000
    for (;;) {
      try {
        await query('SHOW DATABASES')
        break
      } catch (err) {
        if (Date.now() > ready || !String((err as Error).message).includes('no user provided')) throw err
        await new Promise((r) => setTimeout(r, 50))
      }
    }
  }
  return {
    url,
    port: httpPort,
    process: proc,
    query,
    ...(opts.auth ? { admin: opts.auth } : {}),
    async createDatabase(name) {
      await query(`CREATE DATABASE "${name}"`)
      return name
    },
    async select(db, measurement = 'telemetry') {
      const j = await query(`SELECT * FROM "${measurement}" ORDER BY time ASC`, db)
      const s = j.results[0]?.series?.[0]
      if (!s) return []
      return s.values.map((v) => Object.fromEntries(s.columns.map((c, i) => [c, v[i]])))
    },
    stop,
  }
}
