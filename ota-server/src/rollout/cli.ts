/**
 * `ferry ota rollout status|halt|resume|advance [<deployment>]`: the operator's side of staged
 * rollouts. It talks to the running OTA server over HTTPS (the server is the only writer of the
 * rollout state), presenting a client certificate of the Ferry CA because the server's TLS layer wants
 * one from everybody, and `Authorization: Bearer $FERRY_API_TOKEN`, which is what allows a change.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { Compile } from 'typebox/compile'
import { Type } from 'typebox'
import { parseCli } from '../../../common/src/cli-args.js'
import { UsageError } from '../../../common/src/errors.js'
import { printable, printableJson } from '../../../common/src/printable.js'
import { DEPLOYMENT_PATTERN } from '../manifest/envelope.js'
import { RolloutStatusSchema, type RolloutStatus } from './status.js'

export const ROLLOUT_HELP = `usage: ferry ota rollout <status|halt|resume|advance> [<deployment>] [options]

Operates the staged rollouts of a running OTA server (docs/ota-rollouts.md).

  status [<deployment>]     where each deployment (or the one named) stands: stage, counts, why it
                            opened or halted, what happens next, and the decisions so far
  halt <deployment>         stop it now: devices not yet updated are answered 204
  resume <deployment>       go on at the open stage, which counts afresh (publish the fix first,
                            with --deployment <deployment>)
  advance <deployment>      open the next stage now, whatever the thresholds say

options:
  --url <url>               the OTA server (default $FERRY_OTA_URL, else https://localhost:8443)
  --pki <dir>               the "ferry pki" folder: ca.crt, and gateway.crt/.key as the client
                            certificate (default ./pki)
  --ca <file> --cert <file> --key <file>   instead of --pki
  --reason <text>           why (halt, resume, advance); kept in the rollout's history
  --json                    print the server's answer as JSON

The token comes from $FERRY_API_TOKEN (or --token-file <file>): halt, resume and advance need it;
status works with the gateway certificate alone.
exit codes: 0 done, 1 refused or unreachable, 2 bad usage`

const options = {
  url: { type: 'string' },
  pki: { type: 'string' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  reason: { type: 'string' },
  json: { type: 'boolean' },
  'token-file': { type: 'string' },
} as const

const checkStatus = Compile(RolloutStatusSchema)
const checkList = Compile(Type.Object({ rollouts: Type.Array(RolloutStatusSchema) }))
const DEPLOYMENT_RE = new RegExp(DEPLOYMENT_PATTERN)
const out = (s: string) => process.stdout.write(s + '\n')

function read(path: string, what: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as Error).message}`)
  }
}

/** `ferry ota rollout …` (argv after "rollout"). */
export async function runRollout(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCli(argv, options, ROLLOUT_HELP)
  if (help) {
    out(ROLLOUT_HELP)
    return 0
  }
  const [action, deployment, ...extra] = positionals
  if (!action || !['status', 'halt', 'resume', 'advance'].includes(action)) throw new UsageError(`${action ? `unknown rollout action "${action}"` : 'missing rollout action'}\n\n${ROLLOUT_HELP}`)
  if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`)
  if (action !== 'status' && !deployment) throw new UsageError(`"ferry ota rollout ${action}" needs the deployment id; "ferry ota rollout status" lists them`)
  if (deployment !== undefined && !DEPLOYMENT_RE.test(deployment)) throw new UsageError(`"${deployment}" is not a deployment id (letters, digits, . _ + -)`)
  if (values.reason !== undefined && action === 'status') throw new UsageError('--reason goes with halt, resume or advance')

  const base = values.url ?? process.env.FERRY_OTA_URL ?? 'https://localhost:8443'
  let url: URL
  try {
    url = new URL(base)
  } catch {
    throw new UsageError(`--url "${base}" is not a URL; use e.g. https://localhost:8443`)
  }
  if (url.protocol !== 'https:') throw new UsageError('--url must be https://: the OTA server speaks only TLS with client certificates')
  const pki = values.pki ?? 'pki'
  const tls = {
    ca: read(values.ca ?? join(pki, 'ca.crt'), 'CA certificate'),
    cert: read(values.cert ?? join(pki, 'gateway.crt'), 'client certificate'),
    key: read(values.key ?? join(pki, 'gateway.key'), 'client key'),
  }
  const token = values['token-file'] !== undefined ? read(values['token-file'], 'token file').toString('utf8').trim() : process.env.FERRY_API_TOKEN
  if (action !== 'status' && !token) throw new UsageError(`"ferry ota rollout ${action}" needs the OTA server's FERRY_API_TOKEN in the environment (or --token-file)`)

  const agent = new Agent({ connect: { ...tls, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, headersTimeout: 15_000, bodyTimeout: 15_000 })
  try {
    const path = action === 'status' ? (deployment ? `/ota/rollouts/${deployment}` : '/ota/rollouts') : `/ota/rollouts/${deployment}/${action}`
    let res
    try {
      res = await request(new URL(path, url), {
        dispatcher: agent,
        method: action === 'status' ? 'GET' : 'POST',
        headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...(action === 'status' ? {} : { 'content-type': 'application/json' }) },
        ...(action === 'status' ? {} : { body: JSON.stringify(values.reason !== undefined ? { reason: values.reason } : {}) }),
      })
    } catch (err) {
      process.stderr.write(`ferry ota rollout ${action}: cannot reach the OTA server at ${url.origin}: ${printable((err as Error).message)}; check --url, and that --pki holds the CA that signed its certificate and a certificate it issued\n`)
      return 1
    }
    const text = await res.body.text()
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      body = undefined
    }
    if (res.statusCode !== 200) {
      const e = body as { code?: string; message?: string } | undefined
      process.stderr.write(`ferry ota rollout ${action}: the OTA server answered ${res.statusCode} ${printable(e?.code ?? '')}: ${printable(e?.message ?? text.slice(0, 300))}\n`)
      return 1
    }
    const list = deployment ? (checkStatus.Check(body) ? [body] : undefined) : checkList.Check(body) ? body.rollouts : undefined
    if (!list) {
      process.stderr.write(`ferry ota rollout ${action}: ${url.origin} answered something that is not a rollout status; is it a Ferry OTA server of the same version?\n`)
      return 1
    }
    if (values.json) {
      out(printableJson(deployment ? list[0] : { rollouts: list }, 2))
      return 0
    }
    if (!list.length) out('no deployments: nothing is published, and no rollout state exists')
    out(list.map(describe).join('\n\n'))
    return 0
  } finally {
    await agent.close()
  }
}

const iso = (ms: number) => new Date(ms).toISOString()

/** The human form of one status. Every string is the server's (or a device's) text: escaped. */
export function describe(s: RolloutStatus): string {
  const p = printable
  const head = s.status === 'halted' ? 'HALTED' : s.status === 'active' ? 'active' : 'unstaged'
  const stage = s.stage ? ` at stage ${s.stage.number} of ${s.stage.of} (${p(s.stage.description)}${s.stage.final ? ', final' : ''})` : ''
  const lines = [`${p(s.deployment)}: ${head}${stage}${s.since !== null ? ` since ${iso(s.status === 'halted' && s.halt ? s.halt.at : s.since)}` : ''}`]
  lines.push(`  why:        ${p(s.why)}`)
  lines.push(`  next:       ${p(s.next)}`)
  if (s.stages) lines.push(`  stages:     ${p(s.stages)}`)
  if (s.thresholds) lines.push(`  thresholds: ${p(s.thresholds)}`)
  lines.push(`  releases:   ${s.releases.length ? s.releases.map((r) => `${p(r.hw)} ${p(r.version)}${r.planned ? '' : ' (no plan)'}`).join(', ') : '(none published)'}`)
  if (s.counts) {
    const c = s.counts
    lines.push(`  this stage: ${c.started} started (${c.offered} offered), ${c.installed} installed, ${c.failed} failed, ${c.stalled} stalled, ${c.inProgress} in progress`)
  }
  for (const f of s.failures) lines.push(`    ${p(f.device).padEnd(20)} ${f.state.padEnd(11)} ${f.reason ? p(f.reason) : ''} (${iso(f.at)})`)
  if (s.history.length) {
    lines.push('  decisions:')
    for (const h of s.history) lines.push(`    ${iso(h.at)} ${h.action.padEnd(8)} stage ${h.stage} by ${h.by.padEnd(8)} ${p(h.why)}`)
  }
  return lines.join('\n')
}

