/**
 * A fake InfluxDB write endpoint for what cannot run here: the 2.x (`/api/v2/write`) and 3 Core
 * (`/api/v3/write_lp`) APIs, plus 1.x answers a local influxd will not produce on demand (429/503
 * with Retry-After, 500, a 200 from a proxy, a dropped connection). Real 1.x behaviour is tested
 * against a real influxd; this fake follows docs/cloud-apis.md#influxdb:
 *
 * - statuses and body shapes per version (1.x `{"error"}`, 2.x `{"code","message"}`, 3
 *   `{"error","data"}`), auth schemes, required query parameters, precision values;
 * - partial writes: 1.x 400 `partial write: … dropped=N`, 2.x 422, 3 400 with `data[]` (or the whole
 *   batch refused with `accept_partial=false`) — the good points are stored in every case;
 * - duplicate points overwrite (same measurement + tag set + timestamp);
 * - how a partial write is answered (`partialWrite`: the standard statuses, a 201 naming the lines or
 *   not, an older 2.x `/write`'s 500);
 * - refusals that name no row: a missing database (1.x 404), bucket or organisation (2.x 404), an
 *   unknown retention policy (1.x 500), limits (`maxValuesPerTag` for 1.x, `maxColumnsPerTable`
 *   422 for 3), next to row errors (field type conflict, `retentionMs` points beyond retention);
 * - a write path the configured version does not have → 404 `path not found` (what InfluxDB Cloud
 *   Serverless/Dedicated answer for `/api/v3/write_lp`: run the fake as version 2);
 * - body limits → 413 (checked on the compressed Content-Length, as 1.x does);
 * - scripted faults (`fail`) with any status, body and headers, and `hangUp` to drop connections.
 *
 * It records every request with its time so tests can check what was sent and when.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import { gunzipSync } from 'node:zlib'

export interface FakeInfluxOptions {
  version: 1 | 2 | 3
  /** v1: database names that exist (v3 creates on write). Default ['ferry']. */
  databases?: string[]
  /** v2: organisation and bucket. */
  org?: string
  bucket?: string
  /** Token accepted (v2 `Token`, v3 `Bearer`/`Token`); unset = no auth. */
  token?: string
  /** v1 credentials (Basic, u/p or `Token user:pass`); unset = auth off. */
  user?: string
  password?: string
  /** Largest request body (compressed Content-Length) in bytes; default 25 MB (v1), 10 MiB (v3), none (v2). */
  maxBodyBytes?: number
  /** Serve HTTPS with this certificate. */
  tls?: { cert: Buffer; key: Buffer }
  /**
   * How a partial write is answered (the good points are stored in every mode):
   * - `standard` (default): 1.x 400 `partial write: … dropped=N`, 2.x 422, 3 400 with `data[]`;
   * - `created-201`: 2.x/3 answer **201** naming the rejected lines (3: `data[]`; 2: the Cloud
   *   Serverless text `error parsing line N (1-based): …`), as influxdb-client-js expects of
   *   InfluxDB 3 ("returns 201 for partial success") and the Serverless spec describes;
   * - `created-201-opaque`: 201 whose body names no line;
   * - `legacy-500`: 1.x path answered as an older InfluxDB 2.x `/write` did: 500
   *   `unexpected error writing points to database: partial write: …`.
   * A write where nothing was stored is refused as in `standard`.
   */
  partialWrite?: 'standard' | 'created-201' | 'created-201-opaque' | 'legacy-500'
  /** v1: retention policies of every database (default ['autogen']); another `rp` answers 500 `retention policy not found`. */
  retentionPolicies?: string[]
  /** v1/v2: points older than now − this are dropped: `partial write: points beyond retention policy` (a row error). */
  retentionMs?: number
  /** v1: most distinct values per tag key and measurement (1.x `max-values-per-tag`); more: `partial write: max-values-per-tag limit exceeded`. */
  maxValuesPerTag?: number
  /** v3: most columns (tags + fields) per table; more: 422 `Update to schema would exceed number of columns per table limit`. */
  maxColumnsPerTable?: number
  /** Clock for recorded request times. */
  now?: () => number
}

export interface FakeFault {
  status: number
  body?: string
  headers?: Record<string, string>
}

export interface RecordedRequest {
  at: number
  method: string
  path: string
  query: Record<string, string>
  headers: Record<string, string | string[] | undefined>
  /** Decoded line-protocol text. */
  text: string
  status: number
}

/** A stored point: measurement, tags, fields and the timestamp in ns (as a string, exact). */
export interface FakePoint {
  measurement: string
  tags: Record<string, string>
  fields: Record<string, number | string | boolean>
  ns: string
}

type FieldType = 'integer' | 'float' | 'string' | 'boolean'

interface ParsedLine {
  measurement: string
  tags: Record<string, string>
  fields: Record<string, { v: number | string | boolean; type: FieldType }>
  ns: string
}

export class FakeInflux {
  readonly requests: RecordedRequest[] = []
  /** TCP connections accepted so far (keep-alive reuse shows as 1 for many requests). */
  connectionCount = 0
  private readonly store = new Map<string, FakePoint>()
  private readonly fieldTypes = new Map<string, FieldType>()
  /** measurement\0tag key → values seen (for `maxValuesPerTag`). */
  private readonly tagValues = new Map<string, Set<string>>()
  /** measurement → tag and field names (for `maxColumnsPerTable`). */
  private readonly columns = new Map<string, Set<string>>()
  private readonly faults: FakeFault[] = []
  private hangUps = 0
  private readonly sockets = new Set<Socket>()
  private server!: Server
  url = ''

  constructor(readonly opts: FakeInfluxOptions) {}

  async start(): Promise<this> {
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res)
    this.server = this.opts.tls ? createHttpsServer(this.opts.tls, handler) : createHttpServer(handler)
    this.server.on('connection', (s: Socket) => {
      this.connectionCount++
      this.sockets.add(s)
      s.on('close', () => this.sockets.delete(s))
    })
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    const { port } = this.server.address() as AddressInfo
    this.url = `${this.opts.tls ? 'https' : 'http'}://${this.opts.tls ? 'localhost' : '127.0.0.1'}:${port}`
    return this
  }

  /** Answers the next `times` write requests with `fault` instead of processing them. */
  fail(fault: FakeFault, times = 1): void {
    for (let i = 0; i < times; i++) this.faults.push(fault)
  }

  /** Destroys the connection of the next `times` write requests without answering. */
  hangUp(times = 1): void {
    this.hangUps += times
  }

  /** Forces a field type, as if an earlier write had created it (for type-conflict tests). */
  setFieldType(measurement: string, field: string, type: FieldType): void {
    this.fieldTypes.set(`${measurement}\u0000${field}`, type)
  }

  /** Stored points of a measurement, ordered by time then series. */
  points(measurement = 'telemetry'): FakePoint[] {
    return [...this.store.values()]
      .filter((p) => p.measurement === measurement)
      .sort((a, b) => (BigInt(a.ns) < BigInt(b.ns) ? -1 : BigInt(a.ns) > BigInt(b.ns) ? 1 : 0))
  }

  /** Write requests received (any status). */
  writes(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST')
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x')
    const query = Object.fromEntries(u.searchParams)
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const raw = Buffer.concat(chunks)
    const rec: RecordedRequest = { at: (this.opts.now ?? Date.now)(), method: req.method ?? '', path: u.pathname, query, headers: req.headers, text: '', status: 0 }
    this.requests.push(rec)
    const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      rec.status = status
      const text = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body)
      const h: Record<string, string> = { 'x-influxdb-version': this.versionString(), ...headers }
      if (text) h['content-type'] = typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json'
      if (status >= 400 && this.opts.version === 1 && typeof body === 'object' && body && 'error' in body) {
        h['x-influxdb-error'] = String((body as { error: string }).error).slice(0, 1024)
      }
      res.writeHead(status, h)
      res.end(text)
    }

    if (u.pathname === '/ping') return send(this.opts.version === 3 ? 200 : 204, this.opts.version === 3 ? { version: '3.0.0-fake' } : undefined)
    const writePath = { 1: '/write', 2: '/api/v2/write', 3: '/api/v3/write_lp' }[this.opts.version]
    if (u.pathname !== writePath || req.method !== 'POST') return send(404, this.err(`path not found: ${u.pathname}`, 'not found'))

    if (this.hangUps > 0) {
      this.hangUps--
      rec.status = -1
      req.socket.destroy()
      return
    }
    const fault = this.faults.shift()
    if (fault) {
      rec.status = fault.status
      res.writeHead(fault.status, fault.headers ?? {})
      res.end(fault.body ?? '')
      return
    }

    const authErr = this.checkAuth(req, query)
    if (authErr) return send(authErr.status, authErr.body)

    const max = this.opts.maxBodyBytes ?? { 1: 25_000_000, 2: Infinity, 3: 10_485_760 }[this.opts.version]
    if (raw.length > max) {
      return send(413, this.opts.version === 1 ? { error: 'Request Entity Too Large' } : this.opts.version === 2
        ? { code: 'request too large', message: 'unable to read data: points batch is too large' }
        : 'the request body was too large')
    }
    let text: string
    try {
      text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8')
    } catch {
      return send(400, this.err('unable to decode gzip body', 'invalid'))
    }
    rec.text = text
    if (this.opts.version === 3 && Buffer.byteLength(text) > max) return send(413, 'the decompressed request body was too large')

    const target = this.checkTarget(query)
    if (target) return send(target.status, target.body)

    const lines = text.split('\n').map((l, i) => ({ l, n: i + 1 })).filter((x) => x.l.trim() !== '' && !x.l.startsWith('#'))
    const parsed: { n: number; line: string; p?: ParsedLine; error?: string }[] = lines.map(({ l, n }) => {
      try {
        return { n, line: l, p: parseLine(l) }
      } catch (e) {
        return { n, line: l, error: (e as Error).message }
      }
    })
    return this.applyWrite(parsed, query, send)
  }

  private applyWrite(
    parsed: { n: number; line: string; p?: ParsedLine; error?: string }[],
    query: Record<string, string>,
    send: (status: number, body?: unknown) => void,
  ): void {
    const v = this.opts.version
    const mode = this.opts.partialWrite ?? 'standard'
    const parseErrors = parsed.filter((x) => x.error)
    if (parsed.length === 0) return send(v === 3 ? 400 : 204, v === 3 ? 'no lines in the write' : undefined)
    const acceptPartial = v === 3 ? query.accept_partial !== 'false' : true
    // 2.x and 3 without accept_partial refuse the whole batch on a parse error.
    if (parseErrors.length && (v === 2 || !acceptPartial)) {
      const e = parseErrors[0] as { n: number; line: string; error: string }
      if (v === 2) return send(400, { code: 'invalid', message: `unable to parse '${e.line}': ${e.error}` })
      return send(400, { error: 'line protocol parsing error', data: { error_message: e.error, line_number: e.n, original_line: e.line.slice(0, 20) } })
    }
    if (parseErrors.length === parsed.length && v === 1) {
      const e = parseErrors[0] as { line: string; error: string }
      return send(400, { error: `unable to parse '${e.line}': ${e.error}` })
    }
    // Storage checks: a point that conflicts or hits a limit is dropped, the others are written.
    const dropped: { n: number; line: string; msg: string; limit: boolean }[] = []
    const good: ParsedLine[] = []
    const pendingTypes = new Map<string, FieldType>()
    const pendingTagValues = new Map<string, Set<string>>()
    const pendingColumns = new Map<string, Set<string>>()
    const oldestNs = this.opts.retentionMs === undefined ? undefined : BigInt((this.opts.now ?? Date.now)() - this.opts.retentionMs) * 1_000_000n
    for (const x of parsed) {
      if (!x.p) continue
      const p = x.p
      let msg: string | undefined
      let limit = false
      for (const [k, f] of Object.entries(p.fields)) {
        const key = `${p.measurement}\u0000${k}`
        const have = this.fieldTypes.get(key) ?? pendingTypes.get(key)
        if (have && have !== f.type) {
          msg = v === 3
            ? `invalid field value in line protocol for field '${k}' on line ${x.n - 1}: expected type ${have}, but got ${f.type}`
            : `field type conflict: input field "${k}" on measurement "${p.measurement}" is type ${f.type}, already exists as type ${have}`
          break
        }
      }
      if (!msg && oldestNs !== undefined && v !== 3 && BigInt(p.ns) < oldestNs) msg = 'points beyond retention policy'
      if (!msg && this.opts.maxValuesPerTag !== undefined && v !== 3) {
        for (const [k, value] of Object.entries(p.tags)) {
          const key = `${p.measurement}\u0000${k}`
          const known = new Set([...(this.tagValues.get(key) ?? []), ...(pendingTagValues.get(key) ?? [])])
          if (!known.has(value) && known.size >= this.opts.maxValuesPerTag) {
            msg = `max-values-per-tag limit exceeded (${known.size}/${this.opts.maxValuesPerTag}): measurement="${p.measurement}" tag="${k}" value="${value}"`
            limit = true
            break
          }
        }
      }
      if (!msg && this.opts.maxColumnsPerTable !== undefined && v === 3) {
        const known = new Set([...(this.columns.get(p.measurement) ?? []), ...(pendingColumns.get(p.measurement) ?? [])])
        for (const c of [...Object.keys(p.tags), ...Object.keys(p.fields)]) known.add(c)
        if (known.size > this.opts.maxColumnsPerTable) {
          msg = `Update to schema would exceed number of columns per table limit of ${this.opts.maxColumnsPerTable} columns`
          limit = true
        }
      }
      if (msg) {
        dropped.push({ n: x.n, line: x.line, msg, limit })
        continue
      }
      for (const [k, f] of Object.entries(p.fields)) pendingTypes.set(`${p.measurement}\u0000${k}`, f.type)
      for (const [k, value] of Object.entries(p.tags)) {
        const key = `${p.measurement}\u0000${k}`
        pendingTagValues.set(key, new Set([...(pendingTagValues.get(key) ?? []), value]))
      }
      pendingColumns.set(p.measurement, new Set([...(pendingColumns.get(p.measurement) ?? []), ...Object.keys(p.tags), ...Object.keys(p.fields)]))
      good.push(p)
    }
    if (v === 3 && !acceptPartial && dropped.length) {
      const c = dropped[0] as { n: number; line: string; msg: string; limit: boolean }
      return send(c.limit ? 422 : 400, { error: 'line protocol parsing error', data: { error_message: c.msg, line_number: c.n, original_line: c.line.slice(0, 20) } })
    }
    for (const [k, t] of pendingTypes) this.fieldTypes.set(k, t)
    for (const [k, values] of pendingTagValues) this.tagValues.set(k, new Set([...(this.tagValues.get(k) ?? []), ...values]))
    for (const [k, cols] of pendingColumns) this.columns.set(k, new Set([...(this.columns.get(k) ?? []), ...cols]))
    for (const p of good) this.put(p)
    if (parseErrors.length === 0 && dropped.length === 0) return send(204)
    const db = query.db ?? query.bucket ?? ''
    const first = (dropped[0] ?? { msg: '' }).msg
    const lineErrors = [
      ...parseErrors.map((e) => ({ error_message: e.error as string, line_number: e.n, original_line: e.line.slice(0, 20) })),
      ...dropped.map((c) => ({ error_message: c.msg, line_number: c.n, original_line: c.line.slice(0, 20) })),
    ].sort((a, b) => a.line_number - b.line_number).slice(0, 100)
    // A 201 partial success only when something was written; otherwise the standard refusal.
    if ((mode === 'created-201' || mode === 'created-201-opaque') && good.length > 0 && v !== 1) {
      if (mode === 'created-201-opaque') {
        return send(201, v === 2 ? { code: 'unprocessable entity', message: `partial write: ${first} dropped=${dropped.length}` } : { error: 'partial write of line protocol occurred' })
      }
      if (v === 3) return send(201, { error: 'partial write of line protocol occurred', data: lineErrors })
      // The Cloud (IOx) shape: the first line in `line`, every rejected line in `message`.
      return send(201, {
        code: 'invalid',
        line: lineErrors[0]?.line_number,
        message: `failed to parse line protocol: errors encountered on line(s):${lineErrors.map((e) => `\nerror parsing line ${e.line_number} (1-based): ${e.error_message}`).join('')}`,
      })
    }
    if (v === 1) {
      if (mode === 'legacy-500' && parseErrors.length === 0) {
        // InfluxDB 2.x before the fix: its 1.x-compatible /write answered a partial write with 500.
        return send(500, { code: 'internal error', message: `unexpected error writing points to database: partial write: ${first} dropped=${dropped.length}` })
      }
      if (parseErrors.length) {
        const e = parseErrors[0] as { line: string; error: string }
        return send(400, { error: `partial write: unable to parse '${e.line}': ${e.error} dropped=0 for database: ${db}` })
      }
      return send(400, { error: `partial write: ${first} dropped=${dropped.length} for database: ${db}` })
    }
    if (v === 2) {
      return send(422, { code: 'unprocessable entity', message: `failure writing points to database: partial write: ${first} dropped=${dropped.length} for database: ${this.opts.bucket ?? ''} for retention policy: autogen` })
    }
    return send(dropped.some((c) => c.limit) ? 422 : 400, { error: 'partial write of line protocol occurred', data: lineErrors })
  }

  private put(p: ParsedLine): void {
    const tagKey = Object.keys(p.tags).sort().map((k) => `${k}=${p.tags[k]}`).join(',')
    const key = `${p.measurement},${tagKey} ${p.ns}`
    const prev = this.store.get(key)
    const fields = Object.fromEntries(Object.entries(p.fields).map(([k, f]) => [k, f.v]))
    // Duplicate point: field sets merge, new values win (docs/cloud-apis.md#duplicate-points).
    this.store.set(key, { measurement: p.measurement, tags: p.tags, fields: { ...(prev?.fields ?? {}), ...fields }, ns: p.ns })
  }

  private err(message: string, code: string): unknown {
    return this.opts.version === 2 ? { code, message } : { error: message }
  }

  private versionString(): string {
    return { 1: '1.8.10', 2: 'v2.7.11', 3: '3.0.0' }[this.opts.version]
  }

  private checkAuth(req: IncomingMessage, query: Record<string, string>): { status: number; body: unknown } | undefined {
    const auth = req.headers.authorization ?? ''
    const [scheme = '', cred = ''] = auth.split(/\s+/, 2)
    const o = this.opts
    if (o.version === 1) {
      if (!o.user) return undefined
      let user = query.u
      let pass = query.p
      if (/^basic$/i.test(scheme)) [user, pass] = Buffer.from(cred, 'base64').toString().split(':', 2)
      else if (/^token$/i.test(scheme)) [user, pass] = cred.split(':', 2)
      if (user === undefined && pass === undefined) return { status: 401, body: { error: 'unable to parse authentication credentials' } }
      if (user !== o.user || pass !== o.password) return { status: 401, body: { error: 'authorization failed' } }
      return undefined
    }
    if (!o.token) return undefined
    if (o.version === 2) {
      if (!/^(token|bearer)$/i.test(scheme) || cred !== o.token) return { status: 401, body: { code: 'unauthorized', message: 'unauthorized access' } }
      return undefined
    }
    if (auth && !/^(token|bearer|basic)$/i.test(scheme)) return { status: 400, body: { error: 'Authorization header was malformed, the request was not in the form of \'Authorization: <auth-scheme> <token>\'' } }
    const tok = /^basic$/i.test(scheme) ? Buffer.from(cred, 'base64').toString().split(':', 2)[1] : cred
    if (tok !== o.token) return { status: 401, body: { error: 'the request was not authenticated' } }
    return undefined
  }

  private checkTarget(q: Record<string, string>): { status: number; body: unknown } | undefined {
    const o = this.opts
    if (o.version === 1) {
      if (!q.db) return { status: 400, body: { error: 'database is required' } }
      if (!(o.databases ?? ['ferry']).includes(q.db)) return { status: 404, body: { error: `database not found: "${q.db}"` } }
      if (q.rp && !(o.retentionPolicies ?? ['autogen']).includes(q.rp)) return { status: 500, body: { error: `retention policy not found: ${q.rp}` } }
      if (q.precision !== undefined && !['n', 'ns', 'u', 'ms', 's', 'm', 'h', ''].includes(q.precision)) {
        return { status: 400, body: { error: `invalid precision "${q.precision}" (use n, u, ms, s, m or h)` } }
      }
      return undefined
    }
    if (o.version === 2) {
      if (!q.org && !q.orgID) return { status: 400, body: { code: 'invalid', message: 'failed to decode request body: organization not found' } }
      if ((q.org ?? q.orgID) !== (o.org ?? 'ferry')) return { status: 404, body: { code: 'not found', message: `organization name "${q.org ?? q.orgID}" not found` } }
      if (q.bucket !== (o.bucket ?? 'ferry')) return { status: 404, body: { code: 'not found', message: `bucket "${q.bucket}" not found` } }
      if (q.precision !== undefined && !['ns', 'us', 'ms', 's'].includes(q.precision)) {
        return { status: 400, body: { code: 'invalid', message: 'invalid precision; valid precision units are ns, us, ms, and s' } }
      }
      return undefined
    }
    if (!q.db) return { status: 400, body: 'missing required query parameter: db' }
    if (q.precision !== undefined && !['auto', 'second', 'millisecond', 'microsecond', 'nanosecond', 's', 'ms', 'us', 'u', 'ns', 'n'].includes(q.precision)) {
      return { status: 400, body: `invalid precision: ${q.precision}` }
    }
    return undefined
  }
}

/** Starts a fake InfluxDB on a free loopback port; closed on teardown. */
export async function startFakeInflux(t: { teardown(fn: () => unknown): void }, opts: FakeInfluxOptions): Promise<FakeInflux> {
  const f = await new FakeInflux(opts).start()
  t.teardown(() => f.close())
  return f
}

// --- a small line-protocol parser (enough for the fake; docs/cloud-apis.md#line-protocol) ---

/** Splits on `sep` not preceded by a backslash and outside double quotes. */
function splitUnescaped(s: string, sep: string, limit = Infinity): string[] {
  const out: string[] = []
  let cur = ''
  let quoted = false
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string
    if (c === '\\' && i + 1 < s.length) {
      cur += c + (s[i + 1] as string)
      i++
      continue
    }
    if (c === '"') quoted = !quoted
    if (c === sep && !quoted && out.length < limit - 1) {
      out.push(cur)
      cur = ''
      continue
    }
    cur += c
  }
  out.push(cur)
  return out
}

const unescape = (s: string) => s.replace(/\\([,= "\\])/g, '$1')

function parseLine(line: string): ParsedLine {
  if (line.includes('\r')) throw new Error('carriage return in line')
  const parts = splitUnescaped(line, ' ')
  if (parts.length < 2 || parts.length > 3) throw new Error('invalid field format')
  const [head = '', fieldText = '', ts] = parts
  const [m, ...tagParts] = splitUnescaped(head, ',')
  if (!m) throw new Error('missing measurement')
  const tags: Record<string, string> = {}
  for (const tp of tagParts) {
    const [k, v] = splitUnescaped(tp, '=', 2)
    if (!k || v === undefined || v === '') throw new Error('missing tag value')
    tags[unescape(k)] = unescape(v)
  }
  const fields: ParsedLine['fields'] = {}
  for (const fp of splitUnescaped(fieldText, ',')) {
    const [k, v] = splitUnescaped(fp, '=', 2)
    if (!k || v === undefined || v === '') throw new Error('missing field value')
    fields[unescape(k)] = parseValue(v)
  }
  if (Object.keys(fields).length === 0) throw new Error('missing fields')
  if (ts !== undefined && !/^-?\d+$/.test(ts)) throw new Error('bad timestamp')
  return { measurement: unescape(m), tags, fields, ns: ts ?? String(BigInt(Date.now()) * 1_000_000n) }
}

function parseValue(v: string): { v: number | string | boolean; type: FieldType } {
  if (/^-?\d+i$/.test(v)) return { v: Number(v.slice(0, -1)), type: 'integer' }
  if (/^\d+u$/.test(v)) throw new Error('invalid number') // 1.x without uint support; we never send u
  if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) return { v: v.slice(1, -1).replace(/\\(["\\])/g, '$1'), type: 'string' }
  if (/^(t|T|true|True|TRUE)$/.test(v)) return { v: true, type: 'boolean' }
  if (/^(f|F|false|False|FALSE)$/.test(v)) return { v: false, type: 'boolean' }
  if (/^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) return { v: Number(v), type: 'float' }
  throw new Error(`invalid number`)
}
