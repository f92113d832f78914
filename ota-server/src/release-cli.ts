import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseCli, parseDuration } from '../../common/src/cli-args.js'
import { UsageError } from '../../common/src/errors.js'
import { isDeviceId } from '../../common/src/ids.js'
import { printable, printableJson } from '../../common/src/printable.js'
import type { Rollout } from './manifest/envelope.js'
import { rejectReasonOf } from './manifest/errors.js'
import { generateReleaseKey, splitPemBundle } from './manifest/keys.js'
import { verifyEnvelope } from './manifest/verify.js'
import { otaLayout } from './store/layout.js'
import { publishRelease, sha256File } from './store/publish.js'
import { runRollout } from './rollout/cli.js'
import { describeStages, describeThresholds, PLAN_DEFAULTS, ROLLOUT_PLAN_SCHEMA, type RolloutPlan, type Stage } from './rollout/plan.js'
import { ReleaseStore } from './store/releases.js'
import { ReportStore } from './store/reports.js'

const HELP = `usage: ferry ota <action> [options]

Release signing happens here, offline, on the machine that holds release.key. The OTA server only
serves what "publish" wrote into the OTA folder and never sees the private key.

actions:
  keygen --out <dir> [--force]
        new ECDSA P-256 release key: <dir>/release.key (PKCS#8, mode 0600; keep it offline)
        and <dir>/release.pub (SPKI; compile it into the firmware, set FERRY_OTA_PUB to it)
  publish <image.bin> --version <semver> --hw <hw> --secure-version <n> --key <release.key> --dir <ota dir>
          [--expires 90d] [--rollout <percent> | --devices <id,id,...>] [--deployment <id>] [--force]
          [--stage <percent%|id,id,...>]... [--success 95%] [--min-devices 1] [--soak 0s]
          [--halt-after <n|n%>]... [--stall-timeout 30m]
        copies the image to <dir>/images/<sha256>.bin and writes the signed envelope to
        <dir>/releases/<hw>/<version>.json. --key may be given twice during key rotation.
        Publishing the same version and image again renews its expiry and rollout.
        --stage (repeat it: --stage 5% --stage 25% --stage 100%) makes a staged rollout that the
        OTA server advances and halts by itself: <dir>/releases/<hw>/<version>.rollout.json,
        unsigned, decides who is handed the signed envelope, never what it holds. The next stage
        opens when --success of the devices that started a stage installed (once --min-devices
        started) and that held for --soak; the deployment halts when the stage's failures
        (failed, rolled-back, or silent for --stall-timeout) reach --halt-after (a count, or a
        percentage of those started; default 10%). Publish a fix with the same --deployment to
        continue a halted rollout. docs/ota-rollouts.md
  rollout <status|halt|resume|advance> [<deployment>] [--url <url>] [--pki <dir>] [--reason <text>]
        operates the staged rollouts of a running OTA server; "ferry ota rollout --help"
  verify <envelope.json> --pub <release.pub> [--image <file>] [--hw <hw>]
          [--current-version <semver>] [--secure-version <n>]
        exit 0 only if a trusted signature, the expiry and (with --image) size and sha256 hold,
        plus any device facts given. --pub may be a bundle or repeated.
  list --dir <ota dir> [--json]
        releases per hardware: version, secure_version, expiry, rollout
  reports --dir <ota dir> [--device <id>] [--deployment <id>] [--limit 100] [--json]
        device progress reports: POST /ota/report, and MQTT ota/status forwarded by the gateway

exit codes: 0 success, 1 refused or failed, 2 bad usage`

const options = {
  out: { type: 'string' },
  force: { type: 'boolean' },
  version: { type: 'string' },
  hw: { type: 'string' },
  'secure-version': { type: 'string' },
  key: { type: 'string', multiple: true },
  dir: { type: 'string' },
  expires: { type: 'string' },
  rollout: { type: 'string' },
  devices: { type: 'string' },
  deployment: { type: 'string' },
  pub: { type: 'string', multiple: true },
  image: { type: 'string' },
  'current-version': { type: 'string' },
  device: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  stage: { type: 'string', multiple: true },
  success: { type: 'string' },
  'min-devices': { type: 'string' },
  soak: { type: 'string' },
  'halt-after': { type: 'string', multiple: true },
  'stall-timeout': { type: 'string' },
} as const

function need<T>(value: T | undefined, flag: string, action: string): T {
  if (value === undefined) throw new UsageError(`"ferry ota ${action}" needs ${flag}; see ferry ota --help`)
  return value
}

function intArg(text: string | undefined, flag: string, max = 0xffffffff): number | undefined {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n > max) throw new UsageError(`${flag} must be an integer 0..${max}, got "${text}"`)
  return n
}

function readFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as Error).message}`)
  }
}

type Values = ReturnType<typeof parseCli<typeof options>>['values']
const out = (s: string) => process.stdout.write(s + '\n')

export async function run(argv: string[]): Promise<number> {
  // The rollout client has options of its own (--url, --pki, --reason).
  if (argv[0] === 'rollout') return runRollout(argv.slice(1))
  const { values, positionals, help } = parseCli(argv, options, HELP)
  if (help) {
    out(HELP)
    return 0
  }
  const [action, arg] = positionals
  switch (action) {
    case 'keygen':
      return keygen(values)
    case 'publish':
      return publish(values, need(arg, '<image.bin>', 'publish'))
    case 'verify':
      return verify(values, need(arg, '<envelope.json>', 'verify'))
    case 'list':
      return list(values)
    case 'reports':
      return reports(values)
    default:
      throw new UsageError(`${action ? `unknown action "${action}"` : 'missing action'}\n\n${HELP}`)
  }
}

function keygen(v: Values): number {
  const dir = need(v.out, '--out <dir>', 'keygen')
  const keyFile = join(dir, 'release.key')
  const pubFile = join(dir, 'release.pub')
  if ((existsSync(keyFile) || existsSync(pubFile)) && !v.force) {
    throw new UsageError(`${keyFile} or ${pubFile} exists; every device trusts the old key. Pass --force only if you mean to replace it (and ship the new public key first).`)
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const k = generateReleaseKey()
  writeFileSync(keyFile, k.privateKeyPem, { mode: 0o600 })
  chmodSync(keyFile, 0o600) // an existing file keeps its mode otherwise
  writeFileSync(pubFile, k.publicKeyPem, { mode: 0o644 })
  out(`release key written: ${keyFile} (private, mode 0600: keep it offline) and ${pubFile}\nkeyid ${k.keyid}`)
  return 0
}

async function publish(v: Values, image: string): Promise<number> {
  const action = 'publish'
  const keys = need(v.key, '--key <release.key>', action).map((p) => readFile(p, 'release key'))
  let rollout: Rollout | undefined
  if (v.rollout !== undefined && v.devices !== undefined) throw new UsageError('use --rollout <percent> or --devices <list>, not both')
  if (v.rollout !== undefined) rollout = { percent: intArg(v.rollout.replace(/%$/, ''), '--rollout', 100)! }
  if (v.devices !== undefined) {
    const devices = [...new Set(v.devices.split(',').map((d) => d.trim()).filter(Boolean))]
    const bad = devices.filter((d) => !isDeviceId(d))
    if (bad.length || !devices.length) throw new UsageError(`--devices needs device ids (^[a-z0-9][a-z0-9_-]{0,62}$), got ${JSON.stringify(bad.length ? bad : v.devices)}`)
    rollout = { devices }
  }
  const plan = stagePlan(v)
  let r
  try {
    r = await publishRelease({
      image,
      version: need(v.version, '--version <semver>', action),
      hw: need(v.hw, '--hw <hw>', action),
      secureVersion: need(intArg(v['secure-version'], '--secure-version'), '--secure-version <n>', action),
      keys,
      dir: need(v.dir, '--dir <ota dir>', action),
      expiresInMs: parseDuration(v.expires ?? '90d'),
      rollout,
      ...(plan ? { plan } : {}),
      deployment: v.deployment,
      force: v.force,
    })
  } catch (err) {
    // A manifest the schema refuses is a usage problem (bad version, hw, ...): say which field.
    if (rejectReasonOf(err) === 'malformed_manifest') throw new UsageError((err as Error).message)
    if (err instanceof TypeError) throw new UsageError(err.message)
    throw err
  }
  const m = r.manifest
  out(`published ${m.hw} ${m.version} (secure_version ${m.secure_version}, deployment ${m.deployment}${m.rollout ? `, rollout ${'percent' in m.rollout ? `${m.rollout.percent}%` : `${m.rollout.devices.length} devices`}` : ''})`)
  out(`  image    ${r.imageFile} (${m.image.size} bytes, sha256 ${m.image.sha256})`)
  out(`  envelope ${r.envelopeFile}, signed by ${r.envelope.signatures.map((s) => s.keyid.slice(0, 16) + '…').join(', ')}`)
  out(`  expires  ${new Date(m.expires).toISOString()}; publish again before then to renew`)
  if (r.plan) out(`  stages   ${describeStages(r.plan)}${plan ? '' : ' (kept from the earlier publish)'}; ${describeThresholds(r.plan)}
           ${r.planFile} (unsigned: decides who gets the envelope, never what it holds)`)
  return 0
}

function percentArg(text: string, flag: string): number {
  const n = intArg(text.replace(/%$/, ''), flag, 100)!
  if (n < 1) throw new UsageError(`${flag} must be 1..100%, got "${text}"`)
  return n
}

/** The stage plan from --stage and its thresholds, or undefined without --stage. */
function stagePlan(v: Values): RolloutPlan | undefined {
  const tuning = (['success', 'min-devices', 'soak', 'halt-after', 'stall-timeout'] as const).filter((k) => v[k] !== undefined)
  if (!v.stage) {
    if (tuning.length) throw new UsageError(`--${tuning[0]} tunes a staged rollout; give the stages with --stage (e.g. --stage 10% --stage 100%)`)
    return undefined
  }
  const stages: Stage[] = v.stage.map((spec) => {
    if (/^\d+%?$/.test(spec.trim())) return { percent: percentArg(spec.trim(), '--stage') }
    const devices = [...new Set(spec.split(',').map((d) => d.trim()).filter(Boolean))]
    const bad = devices.filter((d) => !isDeviceId(d))
    if (bad.length || !devices.length) throw new UsageError(`--stage takes a percentage (25%) or device ids (a,b,c; ^[a-z0-9][a-z0-9_-]{0,62}$), got ${JSON.stringify(bad.length ? bad.join(',') : spec)}`)
    return { devices }
  })
  const halt: RolloutPlan['halt'] = {}
  for (const h of v['halt-after'] ?? []) {
    if (/%$/.test(h.trim())) halt.percent = percentArg(h.trim(), '--halt-after')
    else {
      const n = intArg(h.trim(), '--halt-after', 1_000_000)!
      if (n < 1) throw new UsageError('--halt-after must be at least 1 failure (or a percentage such as 10%)')
      halt.failures = n
    }
  }
  const minDevices = intArg(v['min-devices'], '--min-devices', 1_000_000) ?? PLAN_DEFAULTS.success.min_devices
  if (minDevices < 1) throw new UsageError('--min-devices must be at least 1')
  const stall = v['stall-timeout'] !== undefined ? parseDuration(v['stall-timeout']) : PLAN_DEFAULTS.stall_timeout_ms
  if (stall < 1000) throw new UsageError('--stall-timeout must be at least 1s')
  return {
    schema: ROLLOUT_PLAN_SCHEMA,
    stages,
    success: {
      percent: v.success !== undefined ? percentArg(v.success, '--success') : PLAN_DEFAULTS.success.percent,
      min_devices: minDevices,
      soak_ms: v.soak !== undefined ? parseDuration(v.soak) : PLAN_DEFAULTS.success.soak_ms,
    },
    halt: halt.failures !== undefined || halt.percent !== undefined ? halt : { ...PLAN_DEFAULTS.halt },
    stall_timeout_ms: stall,
  }
}

async function verify(v: Values, envelopeFile: string): Promise<number> {
  const pubs = need(v.pub, '--pub <release.pub>', 'verify').flatMap((p) => {
    const pems = splitPemBundle(readFile(p, 'public key'))
    if (!pems.length) throw new UsageError(`${p} holds no "BEGIN PUBLIC KEY" block`)
    return pems
  })
  const text = readFile(envelopeFile, 'envelope')
  try {
    const { manifest: m, keyids } = verifyEnvelope(text, pubs, {
      hw: v.hw,
      currentVersion: v['current-version'],
      secureVersion: intArg(v['secure-version'], '--secure-version'),
    })
    if (v.image !== undefined) {
      if (!existsSync(v.image)) throw new UsageError(`image ${v.image} does not exist`)
      const { sha256, size } = await sha256File(v.image)
      if (size !== m.image.size) return refuse('image_size', `image is ${size} bytes, the manifest says ${m.image.size}`)
      if (sha256 !== m.image.sha256) return refuse('image_sha256', `image sha256 ${sha256} differs from the manifest's ${m.image.sha256}`)
    }
    out(`OK ${m.hw} ${m.version} secure_version ${m.secure_version} deployment ${m.deployment}, signed by ${keyids.map((k) => k.slice(0, 16) + '…').join(', ')}, expires ${new Date(m.expires).toISOString()}${v.image ? ', image matches' : ''}`)
    return 0
  } catch (err) {
    const reason = rejectReasonOf(err)
    if (!reason) throw err
    return refuse(reason, (err as Error).message)
  }
}

function refuse(reason: string, message: string): number {
  // The message may quote the envelope, which anyone could have written.
  process.stderr.write(`REFUSED (${reason}): ${printable(message, '\n')}\n`)
  return 1
}

function list(v: Values): number {
  const dir = need(v.dir, '--dir <ota dir>', 'list')
  const store = new ReleaseStore(otaLayout(dir))
  const now = Date.now()
  const rows = store.hardware().flatMap((hw) => store.releases(hw).map((r) => ({ ...r.manifest, expired: r.manifest.expires <= now, file: r.file, plan: r.plan ?? null })))
  if (v.json) {
    out(JSON.stringify(rows, null, 2))
    return 0
  }
  if (!rows.length) out(`no releases in ${dir}; "ferry ota publish" writes them`)
  for (const r of rows) {
    const rollout = r.rollout ? ('percent' in r.rollout ? `${r.rollout.percent}%` : `${r.rollout.devices.length} devices`) : 'all'
    out(`${r.hw.padEnd(12)} ${r.version.padEnd(14)} secure_version ${String(r.secure_version).padEnd(4)} rollout ${rollout.padEnd(12)} expires ${new Date(r.expires).toISOString()}${r.expired ? '  EXPIRED' : ''}  deployment ${r.deployment}${r.plan ? `  stages ${describeStages(r.plan)}` : ''}`)
  }
  return 0
}

function reports(v: Values): number {
  const dir = need(v.dir, '--dir <ota dir>', 'reports')
  const rows = new ReportStore(otaLayout(dir).reportsFile).list({ device: v.device, deployment: v.deployment, limit: intArg(v.limit, '--limit') ?? 100 })
  // Reports are the devices' own text: escaped, so a report can neither drive the operator's terminal
  // nor start a line of its own (common/src/printable.ts).
  if (v.json) {
    out(printableJson(rows, 2))
    return 0
  }
  for (const r of rows) out(`${new Date(r.ts).toISOString()} ${printable(r.device).padEnd(16)} ${printable(r.deployment).padEnd(24)} ${printable(r.version).padEnd(12)} ${printable(r.state)}${r.reason ? `: ${printable(r.reason)}` : ''}`)
  return 0
}
