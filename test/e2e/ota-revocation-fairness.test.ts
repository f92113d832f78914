/**
 * Issue 19, "Revocation and fairness on the OTA server", against a real `ferry ota-server` process,
 * a real PKI and `ferry pki revoke`:
 * - a device revoked while it holds connections open loses them at the CRL reload (before the fix a
 *   revoked device kept being answered on a keep-alive connection; this fails at "the revoked
 *   device's download in flight is cut"), while another device's open connections keep working;
 * - one device holding slow downloads cannot take every FERRY_OTA_MAX_DOWNLOADS slot (before the fix
 *   it took them all and others got 503; this fails at "another device still downloads").
 */
import t from 'tap'
import { Agent, request } from 'node:https'
import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makePki, type TestPki } from '../helpers/pki.js'
import { freePort } from '../helpers/ports.js'
import { tempDir } from '../helpers/tmp.js'
import { spawnFerry, type FerryProcess } from '../helpers/gateway.js'
import { waitUntil } from '../helpers/wait.js'
import { quiet } from '../helpers/quiet.js'
import { run as ota } from '../../ota-server/src/release-cli.js'

interface T {
  teardown(fn: () => unknown): void
}

/** Larger than what loopback socket buffers absorb, so a paused download stays in flight. */
const BIG = 32 << 20

interface Fixture {
  pki: TestPki
  server: FerryProcess
  port: number
  /** GET /ota/latest that answers 200 (an update applies). */
  latest: string
  small: { path: string; sha: string; size: number }
  big: { path: string; sha: string; size: number }
}

/** A PKI, a small and a big signed release, and `ferry ota-server` running on them. */
async function otaServer(t: T, devices: string[], env: Record<string, string> = {}): Promise<Fixture> {
  const pki = await makePki(t, devices)
  const root = tempDir(t)
  const dir = join(root, 'ota')
  await quiet(() => ota(['keygen', '--out', join(root, 'keys')]))
  const publish = async (hw: string, bytes: Buffer) => {
    const file = join(root, `${hw}.bin`)
    writeFileSync(file, bytes)
    await quiet(() => ota(['publish', file, '--version', '2.0.0', '--hw', hw, '--secure-version', '0', '--key', join(root, 'keys/release.key'), '--dir', dir]))
    const sha = createHash('sha256').update(bytes).digest('hex')
    return { path: `/ota/images/${sha}.bin`, sha, size: bytes.length }
  }
  const small = await publish('esp32dev', randomBytes(200_000))
  const big = await publish('bigboard', randomBytes(BIG))
  const port = await freePort()
  const server = spawnFerry(t, ['ota-server'], {
    FERRY_ENV_FILE: join(root, 'none.env'),
    FERRY_LOG_LEVEL: 'info',
    FERRY_OTA_PORT: String(port),
    FERRY_OTA_HOST: '127.0.0.1',
    FERRY_OTA_DIR: dir,
    FERRY_OTA_CERT: pki.files.serverCert,
    FERRY_OTA_KEY: pki.files.serverKey,
    FERRY_OTA_CA: pki.files.caCert,
    FERRY_OTA_CRL: pki.files.crl,
    FERRY_OTA_PUB: join(root, 'keys/release.pub'),
    FERRY_OTA_RETRY_AFTER_S: '7',
    ...env,
  })
  await server.waitFor(/OTA server listening/)
  return { pki, server, port, latest: '/ota/latest?hw=esp32dev&version=1.0.0&secure_version=0', small, big }
}

/** An HTTPS agent presenting `device`'s certificate; keep-alive, one connection at a time. */
function deviceAgent(t: T, f: Fixture, device: string, keepAlive = true): Agent {
  const agent = new Agent({ ...f.pki.tls(device), keepAlive, maxSockets: 1, servername: 'localhost' })
  t.teardown(() => agent.destroy())
  return agent
}

interface Answer {
  res: IncomingMessage
  socket: TLSSocket
  /** The request went over a connection the agent already had open. */
  reused: boolean
}

/** Sends a GET and resolves once the status line and headers are in; the body is left unread. */
function get(f: Fixture, agent: Agent, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: f.port, path, agent }, (res) => resolve({ res, socket: res.socket as TLSSocket, reused: req.reusedSocket }))
    req.once('error', reject)
    req.end()
  })
}

/** Reads the rest of a body; resolves with its sha256 and size. */
async function drain(res: IncomingMessage): Promise<{ sha: string; size: number }> {
  const h = createHash('sha256')
  let size = 0
  for await (const chunk of res) {
    h.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  return { sha: h.digest('hex'), size }
}

t.test('issue 19: a revoked device loses its open connections at the CRL reload; other devices keep theirs', async (t) => {
  const f = await otaServer(t, ['dev1', 'dev2'])

  // Idle keep-alive connections, one per device, proven reusable before the revocation.
  const idle1 = deviceAgent(t, f, 'dev1')
  const idle2 = deviceAgent(t, f, 'dev2')
  for (const agent of [idle1, idle2]) {
    const first = await get(f, agent, f.latest)
    t.equal(first.res.statusCode, 200)
    await drain(first.res)
    const again = await get(f, agent, f.latest)
    t.equal(again.res.statusCode, 200)
    t.ok(again.reused, 'the second request reuses the open connection')
    await drain(again.res)
  }

  // A download in flight per device, paused by its reader so that it stays open past any idle
  // timeout: only the revocation can end dev2's.
  const flight1 = await get(f, deviceAgent(t, f, 'dev1', false), f.big.path)
  const flight2 = await get(f, deviceAgent(t, f, 'dev2', false), f.big.path)
  for (const d of [flight1, flight2]) {
    t.equal(d.res.statusCode, 200)
    d.res.pause()
  }

  const revoke = spawnFerry(t, ['pki', 'revoke', 'dev2', '--dir', f.pki.dir], { FERRY_ENV_FILE: join(f.pki.dir, 'none.env') })
  t.equal((await revoke.exited).code, 0, 'ferry pki revoke dev2 succeeds')
  const reloaded = JSON.parse(await f.server.waitFor(/TLS material reloaded/, 20_000)) as { closedConnections: number }
  t.ok(reloaded.closedConnections >= 1, `the reload closed dev2's connections (${reloaded.closedConnections})`)

  // The client sees the end of a paused download only once it has read what was already sent, so
  // both now read on: dev2's ends short (or fails), dev1's completes.
  flight2.res.resume()
  const cut = await drain(flight2.res).catch((err: Error) => ({ error: err.message }))
  t.notSame(cut, { sha: f.big.sha, size: f.big.size }, `the revoked device's download in flight is cut (${JSON.stringify(cut)})`)
  // Logged before the reload line, so already among the lines read.
  t.match(f.server.lines.find((l) => l.includes('closed an open connection')), /"device":"dev2"/, 'the server names the device whose connection it closed')
  t.notOk(flight1.socket.destroyed, "the other device's download is still open")
  flight1.res.resume()
  t.same(await drain(flight1.res), { sha: f.big.sha, size: f.big.size }, "the other device's download completes, intact")

  // The next request of the revoked device fails: its connection is gone, and a new one (which could
  // try to resume the cached TLS session) is refused by the handshake.
  await t.rejects(get(f, idle2, f.latest), 'the revoked device gets no further answer')
  const stillOk = await get(f, idle1, f.latest)
  t.equal(stillOk.res.statusCode, 200, 'the other device is still answered')
  await drain(stillOk.res)
})

t.test('issue 19: one device holding slow downloads cannot take every download slot', async (t) => {
  // Three slots on the server, the default share (2) per device.
  const f = await otaServer(t, ['dev1', 'dev2'], { FERRY_OTA_MAX_DOWNLOADS: '3' })

  // dev1 opens four slow downloads, each on its own connection, read by nobody.
  const held: Answer[] = []
  const refused: Answer[] = []
  for (let i = 0; i < 4; i++) {
    const a = await get(f, deviceAgent(t, f, 'dev1', false), f.big.path)
    if (a.res.statusCode === 200) {
      a.res.pause()
      a.res.on('error', () => {})
      held.push(a)
    } else refused.push(a)
  }
  t.equal(held.length, 2, 'dev1 gets its share of two downloads')
  t.same(refused.map((a) => a.res.statusCode), [429, 429], 'and 429 beyond it')
  for (const a of refused) {
    t.equal(a.res.headers['retry-after'], '7', 'with Retry-After: FERRY_OTA_RETRY_AFTER_S')
    const body = JSON.parse(Buffer.concat(await a.res.toArray()).toString()) as { code: string; message: string }
    t.equal(body.code, 'FERRY_ERR_OTA_TOO_MANY_DOWNLOADS')
    t.match(body.message, /retry after/i, 'the message says what to do next')
  }

  const other = await get(f, deviceAgent(t, f, 'dev2'), f.small.path)
  t.equal(other.res.statusCode, 200, 'another device still downloads while dev1 holds its share')
  t.same(await drain(other.res), { sha: f.small.sha, size: f.small.size })

  // A slot comes back when its download's connection closes, once the server has seen the close.
  held.pop()!.socket.destroy()
  const next = await waitUntil<Answer | undefined>(async () => {
    const a = await get(f, deviceAgent(t, f, 'dev1', false), f.small.path)
    if (a.res.statusCode === 200) return a
    await drain(a.res)
    return undefined
  }, 'dev1 to get a download slot back', 10_000, 50)
  t.same(await drain(next!.res), { sha: f.small.sha, size: f.small.size }, 'dev1 downloads again after closing one')
})
