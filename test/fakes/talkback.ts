import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'

/** A queued command as the TalkBack API shows it (docs/cloud-apis.md#thingspeak-talkback). */
export interface FakeTalkBackCommand {
  id: number
  command_string: string
  position: number | null
  created_at: string
  executed_at: string | null
}

/** One request the fake received. */
export interface FakeTalkBackRequest {
  method: string
  path: string
  apiKey: string | null
  at: number
  status: number
}

export interface FakeTalkBackOptions {
  talkbackId: string
  apiKey: string
  /** Body of `execute.json` on an empty queue: `{}` (legacy server) or `''` (docs); unconfirmed which. */
  emptyJson?: '{}' | ''
  /** Answer 429 `error_too_many_requests` to execute calls closer together than this (TalkBack's own limit is undocumented). */
  minIntervalMs?: number
}

/**
 * A fake ThingSpeak TalkBack for tests, following docs/cloud-apis.md#thingspeak-talkback: add a
 * command (`POST /talkbacks/<id>/commands[.json]`, form `api_key`, `command_string` ≤ 255,
 * `position`), execute the next one (`GET|POST /talkbacks/<id>/commands/execute[.json]`, FIFO,
 * removed once executed), list, and the documented errors (401 `error_auth_required`, 404
 * `error_resource_not_found`, 429 `error_too_many_requests`) in the JSON error shape of
 * docs/cloud-apis.md#thingspeak-error-codes. It records every request and can be scripted to fail
 * the next calls.
 */
export class FakeTalkBack {
  readonly requests: FakeTalkBackRequest[] = []
  private queue: FakeTalkBackCommand[] = []
  private nextId = 1
  private scripted: Array<{ status: number; retryAfter?: string; body?: string }> = []
  private stalls = 0
  private lastExecute = 0
  private server: Server | undefined
  private executeWaiters: Array<() => void> = []
  url = ''

  constructor(readonly opts: FakeTalkBackOptions) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res))
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this.url
  }

  async close(): Promise<void> {
    if (!this.server) return
    this.server.closeAllConnections()
    this.server.close()
    await once(this.server, 'close')
    this.server = undefined
  }

  /** Queues a command directly (test setup); `createdAt` lets a test queue an old command. */
  add(command: string, opts: { createdAt?: number; position?: number } = {}): FakeTalkBackCommand {
    const c: FakeTalkBackCommand = { id: this.nextId++, command_string: command, position: null, created_at: isoWithOffset(opts.createdAt ?? Date.now()), executed_at: null }
    const at = opts.position !== undefined ? Math.max(0, Math.min(this.queue.length, opts.position - 1)) : this.queue.length
    this.queue.splice(at, 0, c)
    this.renumber()
    return c
  }

  /** Commands still queued, in execution order. */
  pending(): FakeTalkBackCommand[] {
    return this.queue.map((c) => ({ ...c }))
  }

  /** The next `n` execute calls answer `status` (e.g. 429 with Retry-After, 500). */
  failNext(status: number, n = 1, opts: { retryAfter?: string; body?: string } = {}): void {
    for (let i = 0; i < n; i++) this.scripted.push({ status, ...opts })
  }

  /**
   * The next `n` execute calls take the next command off the queue and never answer (until `close`):
   * an answer lost in transit, the window no client can close.
   */
  stallNext(n = 1): void {
    this.stalls += n
  }

  /** Execute calls answered so far (any status). */
  executeCalls(): FakeTalkBackRequest[] {
    return this.requests.filter((r) => /\/commands\/execute/.test(r.path))
  }

  /** Resolves after the next execute call has been answered (or stalled). */
  nextExecute(): Promise<void> {
    return new Promise((r) => this.executeWaiters.push(r))
  }

  private renumber(): void {
    this.queue.forEach((c, i) => (c.position = i + 1))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://fake')
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'))
    const param = (k: string) => form.get(k) ?? u.searchParams.get(k)
    // The legacy server also accepts the key in any header containing THINGSPEAKAPIKEY
    // (docs/cloud-apis.md#thingspeak-keys).
    const headerKey = Object.entries(req.headers).find(([k]) => k.toUpperCase().includes('THINGSPEAKAPIKEY'))?.[1]
    const apiKey = param('api_key') ?? param('key') ?? param('apikey') ?? (typeof headerKey === 'string' ? headerKey : null)
    const rec: FakeTalkBackRequest = { method: req.method ?? 'GET', path: u.pathname, apiKey, at: Date.now(), status: 0 }
    this.requests.push(rec)
    const send = (status: number, body: string, json: boolean, headers: Record<string, string> = {}) => {
      rec.status = status
      res.writeHead(status, { 'content-type': json ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8', ...headers })
      res.end(body)
      if (/\/commands\/execute/.test(u.pathname)) for (const w of this.executeWaiters.splice(0)) w()
    }
    const m = /^\/talkbacks\/([^/]+)\/commands(?:\/(execute|last|[0-9]+))?(\.json|\.xml)?$/.exec(u.pathname)
    if (!m) return send(404, errorBody(404, 'error_resource_not_found', 'Resource Not Found'), true)
    const [, id, sub, ext] = m
    const json = ext === '.json'
    const error = (status: number, code: string, message: string) => send(status, json ? errorBody(status, code, message) : code, json)
    if (id !== this.opts.talkbackId) return error(404, 'error_resource_not_found', 'Resource Not Found')
    if (apiKey !== this.opts.apiKey) return error(401, 'error_auth_required', 'Authorization Required')

    if (sub === 'execute') {
      if (req.method !== 'GET' && req.method !== 'POST') return error(405, 'error_method_invalid', 'Method Not Allowed')
      const scripted = this.scripted.shift()
      if (scripted) {
        return send(scripted.status, scripted.body ?? (json ? errorBody(scripted.status, codeFor(scripted.status), 'scripted failure') : codeFor(scripted.status)), json, scripted.retryAfter ? { 'retry-after': scripted.retryAfter } : {})
      }
      const now = Date.now()
      if (this.opts.minIntervalMs && now - this.lastExecute < this.opts.minIntervalMs) return error(429, 'error_too_many_requests', 'Too Many Requests')
      this.lastExecute = now
      const next = this.queue.shift()
      this.renumber()
      if (!next) return send(200, json ? (this.opts.emptyJson ?? '{}') : '', json)
      next.executed_at = isoWithOffset(now)
      next.position = null
      if (this.stalls > 0) {
        this.stalls--
        for (const w of this.executeWaiters.splice(0)) w()
        return
      }
      return send(200, json ? JSON.stringify(next) : next.command_string, json)
    }
    if (sub === undefined && req.method === 'POST') {
      const command = param('command_string')
      if (command === null || command === '' || command.length > 255) return error(400, 'error_bad_request', 'Bad Request')
      const pos = param('position')
      const c = this.add(command, pos ? { position: Number(pos) } : {})
      return send(200, json ? JSON.stringify(c) : String(c.id), json)
    }
    if (sub === undefined && req.method === 'GET') return send(200, JSON.stringify(this.queue), true)
    return error(405, 'error_method_invalid', 'Method Not Allowed')
  }
}

function errorBody(status: number, code: string, message: string): string {
  return JSON.stringify({ status: String(status), error: { error_code: code, message, details: 'Please make sure that your API key is correct.' } })
}

function codeFor(status: number): string {
  return ({ 400: 'error_bad_request', 401: 'error_auth_required', 404: 'error_resource_not_found', 429: 'error_too_many_requests' } as Record<number, string>)[status] ?? 'error_internal'
}

/** ThingSpeak shows times with the account's offset, e.g. 2013-12-29T17:53:40-05:00; UTC here. */
function isoWithOffset(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, '+00:00')
}
