/**
 * A fake ThingSpeak for tests, following docs/cloud-apis.md#thingspeak (bulk JSON write, last
 * entry, error codes):
 *
 * - `POST /channels/<id>/bulk_update.json` → `202 {"success":true}`; wrong or missing
 *   `write_api_key` → 401 with the documented JSON error; a second bulk call to a channel within
 *   `intervalMs` → 429 `error_too_many_requests` (no Retry-After unless `retryAfterS` is set: the
 *   service documents none); more than `maxEntries` updates → `entryCapStatus` (413 by default,
 *   `error_request_too_large`; which one the service uses is not documented); not enough yearly
 *   quota left → 402 `error_payment_required`; an entry without `created_at`/`delta_t`, an unparsable
 *   time or a field over 255 bytes → 400 `error_bad_request`.
 * - A repeated `created_at` in a channel is never overwritten. Whether the service drops it silently
 *   or refuses it is *unconfirmed*, so both are available (`duplicates: 'drop' | 'reject'`).
 * - `GET /channels/<id>/feeds/last.json[?api_key=]` → the newest entry (values as strings); `-1`
 *   for a private channel without the right read key, with status `noAccessStatus` (200 as MathWorks
 *   documents, the default; 400 as the legacy server answered); `-1` with 200 when the channel is
 *   empty (the legacy server; the hosted answer for an empty channel is not documented).
 * - `GET /channels/<id>/feeds.json[?api_key=&results=N]` → `{"channel":{…},"feeds":[…]}` with the
 *   newest N entries (an empty list for an empty channel); `-1` without access, as last.json.
 * - Scripted faults (`fail`) and dropped connections (`hangUp`); every request is recorded with the
 *   time from the injected clock so tests can check the spacing of calls.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface FakeChannel {
  id: string
  writeKey: string
  /** Set for a private channel: reads need it. */
  readKey?: string
}

export interface FakeThingSpeakOptions {
  channels: FakeChannel[]
  /** Least ms between two bulk updates of one channel (default 15,000). */
  intervalMs?: number
  /** Most updates per bulk call (default 960). */
  maxEntries?: number
  /** Status when `maxEntries` is exceeded (default 413). */
  entryCapStatus?: 400 | 413
  /** Messages left this licence year (default unlimited); each entry counts as one (unconfirmed). */
  quota?: number
  duplicates?: 'drop' | 'reject'
  /** Status of the `-1` answer to a read without access: 200 (MathWorks "Read Last Entry", default) or 400 (legacy server). */
  noAccessStatus?: 200 | 400
  /** Send `Retry-After: <s>` with 429 (the service documents none; default off). */
  retryAfterS?: number
  now?: () => number
}

export interface TsEntry {
  entry_id: number
  created_at: string
  field1?: string
  field2?: string
  field3?: string
  status?: string
}

export interface TsRequest {
  at: number
  method: string
  path: string
  body: unknown
  status: number
}

const ERRORS: Record<number, [string, string]> = {
  400: ['error_bad_request', 'Bad Request'],
  401: ['error_auth_required', 'Authorization Required'],
  402: ['error_payment_required', 'Payment Required'],
  404: ['error_resource_not_found', 'Resource Not Found'],
  413: ['error_request_too_large', 'Request Entity Too Large'],
  429: ['error_too_many_requests', 'Too Many Requests'],
}

/** The documented JSON error body for `status`. */
export function tsError(status: number, details: string): string {
  const [code, message] = ERRORS[status] ?? ['error_unknown', 'Error']
  return JSON.stringify({ status: String(status), error: { error_code: code, message, details } })
}

export class FakeThingSpeak {
  readonly requests: TsRequest[] = []
  private readonly entries = new Map<string, TsEntry[]>()
  private readonly lastUpdate = new Map<string, number>()
  private readonly faults: { status: number; body?: string; headers?: Record<string, string> }[] = []
  private hangUps = 0
  private quotaLeft: number
  private readonly sockets = new Set<Socket>()
  private server!: Server
  url = ''

  constructor(readonly opts: FakeThingSpeakOptions) {
    for (const c of opts.channels) this.entries.set(c.id, [])
    this.quotaLeft = opts.quota ?? Infinity
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res))
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
    })
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this
  }

  /** Entries a channel holds, in entry order. */
  feed(channelId: string): TsEntry[] {
    return this.entries.get(channelId) ?? []
  }

  /** Pre-loads entries (e.g. what a channel held before a crash). */
  seed(channelId: string, updates: Record<string, unknown>[]): void {
    this.store(channelId, updates)
  }

  /** Bulk update requests received, any status. */
  bulkCalls(channelId?: string): TsRequest[] {
    return this.requests.filter((r) => r.path.endsWith('/bulk_update.json') && (!channelId || r.path === `/channels/${channelId}/bulk_update.json`))
  }

  fail(fault: { status: number; body?: string; headers?: Record<string, string> }, times = 1): void {
    for (let i = 0; i < times; i++) this.faults.push(fault)
  }

  hangUp(times = 1): void {
    this.hangUps += times
  }

  setQuota(n: number): void {
    this.quotaLeft = n
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private now(): number {
    return (this.opts.now ?? Date.now)()
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x')
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const text = Buffer.concat(chunks).toString('utf8')
    let body: unknown = text
    try {
      body = text ? JSON.parse(text) : undefined
    } catch {
      // keep the raw text
    }
    const rec: TsRequest = { at: this.now(), method: req.method ?? '', path: u.pathname, body, status: 0 }
    this.requests.push(rec)
    const send = (status: number, payload: string, headers: Record<string, string> = {}) => {
      rec.status = status
      res.writeHead(status, { 'content-type': payload.startsWith('{') ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8', ...headers })
      res.end(payload)
    }

    const bulk = /^\/channels\/(\d+)\/bulk_update\.json$/.exec(u.pathname)
    const read = /^\/channels\/(\d+)\/feeds(\/last)?\.json$/.exec(u.pathname)
    if (read && req.method === 'GET') {
      const ch = this.opts.channels.find((c) => c.id === read[1])
      if (!ch) return send(404, tsError(404, 'Please check the channel id.'))
      const key = u.searchParams.get('api_key') ?? req.headers['x-thingspeakapikey'] ?? req.headers.thingspeakapikey
      if (ch.readKey && key !== ch.readKey) return send(this.opts.noAccessStatus ?? 200, '-1')
      const list = this.feed(ch.id)
      if (read[2]) {
        const e = list[list.length - 1]
        return send(200, e ? JSON.stringify(e) : '-1')
      }
      const n = Math.max(0, Number(u.searchParams.get('results') ?? 100) || 0)
      return send(200, JSON.stringify({ channel: { id: Number(ch.id), last_entry_id: list.length || null }, feeds: n ? list.slice(-n) : [] }))
    }
    if (!bulk || req.method !== 'POST') return send(404, tsError(404, 'The resource was not found.'))

    if (this.hangUps > 0) {
      this.hangUps--
      rec.status = -1
      req.socket.destroy()
      return
    }
    const fault = this.faults.shift()
    if (fault) return send(fault.status, fault.body ?? tsError(fault.status, 'scripted fault'), fault.headers)

    const ch = this.opts.channels.find((c) => c.id === bulk[1])
    const b = body as { write_api_key?: unknown; updates?: unknown } | undefined
    if (!ch || typeof b !== 'object' || !b || b.write_api_key !== ch.writeKey) {
      return send(401, tsError(401, 'Please provide proper authentication details.'))
    }
    const now = this.now()
    const prev = this.lastUpdate.get(ch.id)
    const interval = this.opts.intervalMs ?? 15_000
    if (prev !== undefined && now - prev < interval) {
      return send(429, tsError(429, `Requests are too frequent; wait ${interval / 1000} s between bulk updates.`), this.opts.retryAfterS !== undefined ? { 'retry-after': String(this.opts.retryAfterS) } : {})
    }
    if (!Array.isArray(b.updates) || b.updates.length === 0) return send(400, tsError(400, 'updates must be a non-empty array'))
    const updates = b.updates as Record<string, unknown>[]
    if (updates.length > (this.opts.maxEntries ?? 960)) {
      const status = this.opts.entryCapStatus ?? 413
      return send(status, tsError(status, `at most ${this.opts.maxEntries ?? 960} messages per bulk update`))
    }
    for (const [i, e] of updates.entries()) {
      if (typeof e !== 'object' || e === null) return send(400, tsError(400, `update ${i} is not an object`))
      if (e.created_at === undefined && e.delta_t === undefined) return send(400, tsError(400, `update ${i} needs created_at or delta_t`))
      if (e.created_at !== undefined && Number.isNaN(Date.parse(String(e.created_at)))) return send(400, tsError(400, `update ${i} has an invalid created_at`))
      for (const k of ['field1', 'field2', 'field3', 'field4', 'field5', 'field6', 'field7', 'field8', 'status']) {
        if (e[k] !== undefined && Buffer.byteLength(String(e[k])) > 255) return send(400, tsError(400, `update ${i}: ${k} is longer than 255 bytes`))
      }
    }
    if (updates.length > this.quotaLeft) return send(402, tsError(402, 'Your license message limit has been exceeded.'))
    const dup = this.duplicates(ch.id, updates)
    if (dup && this.opts.duplicates === 'reject') return send(400, tsError(400, `created_at ${dup} already exists in this channel`))
    this.lastUpdate.set(ch.id, now)
    this.quotaLeft -= updates.length
    this.store(ch.id, updates)
    return send(202, '{"success":true}')
  }

  private duplicates(channelId: string, updates: Record<string, unknown>[]): string | undefined {
    const have = new Set(this.feed(channelId).map((e) => Date.parse(e.created_at)))
    for (const u of updates) {
      const t = Date.parse(String(u.created_at))
      if (have.has(t)) return String(u.created_at)
      have.add(t)
    }
    return undefined
  }

  private store(channelId: string, updates: Record<string, unknown>[]): void {
    const list = this.entries.get(channelId) ?? []
    const seen = new Set(list.map((e) => Date.parse(e.created_at)))
    for (const u of updates) {
      const t = Date.parse(String(u.created_at))
      if (seen.has(t)) continue // never overwrite; dropped
      seen.add(t)
      const e: TsEntry = { entry_id: list.length + 1, created_at: new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z') }
      for (const k of ['field1', 'field2', 'field3', 'status'] as const) if (u[k] !== undefined && u[k] !== null) e[k] = String(u[k])
      list.push(e)
    }
    this.entries.set(channelId, list)
  }
}

/** Starts a fake ThingSpeak on a free loopback port; closed on teardown. */
export async function startFakeThingSpeak(t: { teardown(fn: () => unknown): void }, opts: FakeThingSpeakOptions): Promise<FakeThingSpeak> {
  const f = await new FakeThingSpeak(opts).start()
  t.teardown(() => f.close())
  return f
}
