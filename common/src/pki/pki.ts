import { webcrypto, randomBytes } from 'node:crypto'

type CryptoKey = webcrypto.CryptoKey
type CryptoKeyPair = webcrypto.CryptoKeyPair
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync, chmodSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { isIP } from 'node:net'
import * as x509 from '@peculiar/x509'
import { PkiError } from '../errors.js'
import { assertDeviceId, gatewayReplicaCn, GATEWAY_CN, GATEWAY_REPLICA_MAX, isGatewayReplicaNumber, parseGatewayCn } from '../ids.js'

// @peculiar/x509 works on any WebCrypto; Node's is the one we trust.
x509.cryptoProvider.set(webcrypto as never)

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const
const DAY_MS = 86_400_000

/**
 * The files `ferry pki` writes into one folder, as fixed by the design. Keys are written mode 0600.
 * `gateway.crt`/`gateway.key` (CN=ferry-gateway) are the gateway's client identity;
 * `gateway-<n>.crt`/`gateway-<n>.key` (CN=ferry-gateway-<n>, n = 1…9) those of its replicas (docs/scale-out.md).
 */
export const pkiFiles = (dir: string) => ({
  caCert: join(dir, 'ca.crt'),
  caKey: join(dir, 'ca.key'),
  serverCert: join(dir, 'server.crt'),
  serverKey: join(dir, 'server.key'),
  gatewayCert: join(dir, 'gateway.crt'),
  gatewayKey: join(dir, 'gateway.key'),
  replicaCert: (n: number) => join(dir, `gateway-${n}.crt`),
  replicaKey: (n: number) => join(dir, `gateway-${n}.key`),
  crl: join(dir, 'crl.pem'),
  deviceCert: (id: string) => join(dir, 'devices', `${id}.crt`),
  deviceKey: (id: string) => join(dir, 'devices', `${id}.key`),
})

/** Validity in days; defaults as in the foundation issue (CA 10 years, leaf 2 years). */
export const DEFAULT_CA_DAYS = 3650
export const DEFAULT_LEAF_DAYS = 730
/** How long a CRL is valid. OpenSSL (and so mosquitto) refuses every client once the CRL is past nextUpdate, so `ferry pki list` warns ahead of time and `ferry pki crl` re-signs it. */
export const DEFAULT_CRL_DAYS = 365

export interface ValidityOptions {
  /** Days from `notBefore`. */
  days?: number
  /** Start of validity; defaults to one minute ago so small clock skew does not reject a fresh certificate. */
  notBefore?: Date
}

/** 16 random bytes, top bit cleared so the DER INTEGER stays positive (RFC 5280 §4.1.2.2: at most 20 octets). */
function randomSerial(): string {
  const b = randomBytes(16)
  b[0] = (b[0]! & 0x7f) | 0x01
  return b.toString('hex')
}

function validity(opts: ValidityOptions, defaultDays: number) {
  const notBefore = opts.notBefore ?? new Date(Date.now() - 60_000)
  const days = opts.days ?? defaultDays
  if (!(days > 0)) throw new PkiError(`validity must be a positive number of days, got ${days}`)
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * DAY_MS) }
}

function writeKey(path: string, pem: string): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, pem, { mode: 0o600 })
  chmodSync(path, 0o600) // writeFileSync keeps the mode of an existing file
}

function writePublic(path: string, pem: string): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, pem, { mode: 0o644 })
}

/** Writes a freshly issued leaf: the key first (0600), so a certificate never exists without its key. */
function writeLeaf(paths: { cert: string; key: string }, leaf: { certPem: string; keyPem: string }): void {
  writeKey(paths.key, leaf.keyPem)
  writePublic(paths.cert, leaf.certPem)
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key)
  return x509.PemConverter.encode(der, 'PRIVATE KEY') + '\n'
}

async function importKey(path: string): Promise<CryptoKey> {
  const pem = readFileSync(path, 'utf8')
  const der = x509.PemConverter.decodeFirst(pem)
  try {
    return await webcrypto.subtle.importKey('pkcs8', der, EC, true, ['sign'])
  } catch (err) {
    throw new PkiError(`cannot read the EC P-256 private key ${path}: ${(err as Error).message}`, { cause: err })
  }
}

function readCert(path: string): x509.X509Certificate {
  return new x509.X509Certificate(readFileSync(path, 'utf8'))
}

async function loadCa(dir: string) {
  const f = pkiFiles(dir)
  if (!existsSync(f.caCert) || !existsSync(f.caKey)) {
    throw new PkiError(`no CA in ${dir}; run "ferry pki init --dir ${dir}" first.`)
  }
  return { cert: readCert(f.caCert), key: await importKey(f.caKey) }
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair
}

interface LeafSpec {
  cn: string
  usage: 'server' | 'client'
  hosts?: string[]
  ips?: string[]
}

async function issueLeaf(dir: string, spec: LeafSpec, opts: ValidityOptions) {
  const ca = await loadCa(dir)
  const keys = await generateKeys()
  const { notBefore, notAfter } = validity(opts, DEFAULT_LEAF_DAYS)
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    // ECDHE-ECDSA: the key signs the handshake; keyAgreement is not needed.
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([spec.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
  ]
  const names = [
    ...(spec.hosts ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ]
  if (names.length) extensions.push(new x509.SubjectAlternativeNameExtension(names))
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${spec.cn}, O=Ferry`,
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: EC,
    extensions,
  })
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportKey(keys.privateKey), cert }
}

/** `ferry pki init`: a new CA, an empty CRL and the gateway's client certificate. */
export async function initPki(dir: string, opts: ValidityOptions & { force?: boolean; name?: string; leafDays?: number } = {}) {
  const f = pkiFiles(dir)
  if (existsSync(f.caCert) && !opts.force) {
    throw new PkiError(`a CA already exists in ${dir}; every device certificate depends on it. Pass --force to replace it (all devices must then be re-provisioned).`)
  }
  mkdirSync(join(dir, 'devices'), { recursive: true, mode: 0o755 })
  const keys = await generateKeys()
  const { notBefore, notAfter } = validity(opts, DEFAULT_CA_DAYS)
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${opts.name ?? 'Ferry device CA'}, O=Ferry`,
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: EC,
    extensions: [
      // pathLen 0: this CA signs leaves only.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  })
  writeKey(f.caKey, await exportKey(keys.privateKey))
  writePublic(f.caCert, cert.toString('pem') + '\n')
  await writeCrl(dir, [])
  writeLeaf({ cert: f.gatewayCert, key: f.gatewayKey }, await issueLeaf(dir, { cn: GATEWAY_CN, usage: 'client' }, { days: opts.leafDays }))
  return { caCert: f.caCert, gatewayCert: f.gatewayCert }
}

/** `ferry pki server`: the broker/OTA server certificate with SANs for every host name and IP. */
export async function issueServer(dir: string, opts: ValidityOptions & { hosts?: string[]; ips?: string[]; force?: boolean } = {}) {
  const f = pkiFiles(dir)
  if (existsSync(f.serverCert) && !opts.force) {
    throw new PkiError(`${f.serverCert} exists; pass --force to replace it.`)
  }
  const hosts = opts.hosts?.length ? opts.hosts : ['localhost']
  const ips = opts.ips?.length ? opts.ips : opts.hosts?.length ? [] : ['127.0.0.1', '::1']
  for (const ip of ips) if (!isIP(ip)) throw new PkiError(`--ip ${ip} is not an IPv4 or IPv6 address`)
  for (const h of hosts) if (!/^[A-Za-z0-9*]([A-Za-z0-9.-]{0,252})$/.test(h)) throw new PkiError(`--host ${h} is not a DNS name`)
  writeLeaf({ cert: f.serverCert, key: f.serverKey }, await issueLeaf(dir, { cn: hosts[0] ?? ips[0]!, usage: 'server', hosts, ips }, opts))
  return { cert: f.serverCert, key: f.serverKey }
}

/** `ferry pki device <id>`: a client certificate with CN=<id>. */
export async function issueDevice(dir: string, id: string, opts: ValidityOptions & { force?: boolean } = {}) {
  assertDeviceId(id)
  const f = pkiFiles(dir)
  if (existsSync(f.deviceCert(id)) && !opts.force) {
    throw new PkiError(`device ${id} already has a certificate (${f.deviceCert(id)}); pass --force to issue a new one (revoke the old one first if it may be compromised).`)
  }
  const leaf = await issueLeaf(dir, { cn: id, usage: 'client' }, opts)
  writeLeaf({ cert: f.deviceCert(id), key: f.deviceKey(id) }, leaf)
  return { cert: f.deviceCert(id), key: f.deviceKey(id), serial: leaf.cert.serialNumber }
}

/**
 * `ferry pki gateway <n>`: the client certificate of gateway replica n (CN=ferry-gateway-<n>, n = 1…9),
 * made exactly like the gateway's own in `initPki` (client auth, same default validity). Each replica
 * needs its own identity: the broker uses the CN as client id, so two replicas sharing one would keep
 * taking each other's session over.
 */
export async function issueGatewayReplica(dir: string, n: number, opts: ValidityOptions & { force?: boolean } = {}) {
  if (!isGatewayReplicaNumber(n)) {
    throw new PkiError(`gateway replica number must be 1…${GATEWAY_REPLICA_MAX}, got ${n}; the shipped ACLs grant gateway rights to ferry-gateway-1 … ferry-gateway-${GATEWAY_REPLICA_MAX} only.`)
  }
  const f = pkiFiles(dir)
  const paths = { cert: f.replicaCert(n), key: f.replicaKey(n) }
  if (existsSync(paths.cert) && !opts.force) {
    throw new PkiError(`gateway replica ${n} already has a certificate (${paths.cert}); pass --force to issue a new one (revoke the old one first if it may be compromised).`)
  }
  const leaf = await issueLeaf(dir, { cn: gatewayReplicaCn(n), usage: 'client' }, opts)
  writeLeaf(paths, leaf)
  return { ...paths, cn: gatewayReplicaCn(n), serial: leaf.cert.serialNumber }
}

interface CrlEntry {
  serialNumber: string
  revocationDate: Date
}

function readCrlEntries(dir: string): CrlEntry[] {
  const f = pkiFiles(dir)
  if (!existsSync(f.crl)) return []
  const crl = new x509.X509Crl(readFileSync(f.crl, 'utf8'))
  return crl.entries.map((e) => ({ serialNumber: e.serialNumber.toLowerCase(), revocationDate: e.revocationDate }))
}

async function writeCrl(dir: string, entries: CrlEntry[], days = DEFAULT_CRL_DAYS): Promise<void> {
  const ca = await loadCa(dir)
  const now = new Date()
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.cert.subject,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + days * DAY_MS),
    entries: entries.map((e) => ({ serialNumber: e.serialNumber, revocationDate: e.revocationDate, reason: x509.X509CrlReason.keyCompromise })),
    signingKey: ca.key,
    signingAlgorithm: EC,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(ca.cert)],
  })
  const f = pkiFiles(dir)
  // OpenSSL (and so mosquitto) reads only the "X509 CRL" PEM label (RFC 7468 §5); the library writes "CRL".
  const pem = x509.PemConverter.encode(crl.rawData, 'X509 CRL') + '\n'
  // Write then rename: mosquitto may re-read the CRL at any SIGHUP and must never see half a file.
  writePublic(f.crl + '.tmp', pem)
  renameSync(f.crl + '.tmp', f.crl)
}

/**
 * The certificate file of an identity: `ferry-gateway`, `ferry-gateway-<n>`, or a device id. No device id
 * can begin with `ferry-gateway`, so the name alone says which.
 */
function certFileOf(dir: string, id: string): string {
  const f = pkiFiles(dir)
  const gw = parseGatewayCn(id)
  if (gw === 0) return f.gatewayCert
  if (gw !== null) return f.replicaCert(gw)
  assertDeviceId(id)
  return f.deviceCert(id)
}

/**
 * `ferry pki revoke <id>`: adds the certificate of a device, the gateway (`ferry-gateway`) or a replica
 * (`ferry-gateway-<n>`) to `crl.pem`. Brokers need a SIGHUP or restart to see it.
 */
export async function revokeDevice(dir: string, id: string) {
  const f = pkiFiles(dir)
  const file = certFileOf(dir, id)
  if (!existsSync(file)) throw new PkiError(`no certificate for ${id} in ${dir} (${file}); "ferry pki list --dir ${dir}" shows what exists.`)
  const serial = readCert(file).serialNumber.toLowerCase()
  const entries = readCrlEntries(dir)
  if (!entries.some((e) => e.serialNumber === serial)) entries.push({ serialNumber: serial, revocationDate: new Date() })
  await writeCrl(dir, entries)
  return { serial, crl: f.crl }
}

/** `ferry pki crl`: re-signs the CRL with a fresh nextUpdate, keeping its entries. */
export async function refreshCrl(dir: string, days = DEFAULT_CRL_DAYS) {
  await writeCrl(dir, readCrlEntries(dir), days)
}

export interface CertInfo {
  file: string
  role: 'ca' | 'server' | 'gateway' | 'device' | 'crl'
  subject: string
  serial: string
  notAfter: Date
  revoked: boolean
  expiresInDays: number
  warning?: string
}

/** `ferry pki list`: every certificate in the folder, plus the CRL's own expiry. */
export function listPki(dir: string, now = new Date()): CertInfo[] {
  const f = pkiFiles(dir)
  if (!existsSync(f.caCert)) throw new PkiError(`no CA in ${dir}; run "ferry pki init --dir ${dir}" first.`)
  const revoked = new Set(readCrlEntries(dir).map((e) => e.serialNumber))
  const files: Array<[string, CertInfo['role']]> = [
    [f.caCert, 'ca'],
    [f.serverCert, 'server'],
    [f.gatewayCert, 'gateway'],
    ...Array.from({ length: GATEWAY_REPLICA_MAX }, (_, i): [string, CertInfo['role']] => [f.replicaCert(i + 1), 'gateway']),
  ]
  const devDir = join(dir, 'devices')
  if (existsSync(devDir)) {
    for (const name of readdirSync(devDir).sort()) if (name.endsWith('.crt')) files.push([join(devDir, name), 'device'])
  }
  const out: CertInfo[] = []
  for (const [file, role] of files) {
    if (!existsSync(file)) continue
    const c = readCert(file)
    out.push(withWarning({
      file,
      role,
      subject: c.subject,
      serial: c.serialNumber.toLowerCase(),
      notAfter: c.notAfter,
      revoked: revoked.has(c.serialNumber.toLowerCase()),
      expiresInDays: Math.floor((c.notAfter.getTime() - now.getTime()) / DAY_MS),
    }))
  }
  if (existsSync(f.crl)) {
    const crl = new x509.X509Crl(readFileSync(f.crl, 'utf8'))
    const next = crl.nextUpdate ?? new Date(8.64e15)
    out.push(withWarning({ file: f.crl, role: 'crl', subject: crl.issuer, serial: '-', notAfter: next, revoked: false, expiresInDays: Math.floor((next.getTime() - now.getTime()) / DAY_MS) }))
  }
  return out
}

function withWarning(info: CertInfo): CertInfo {
  if (info.revoked) return info
  if (info.expiresInDays < 0) info.warning = 'EXPIRED'
  else if (info.expiresInDays < 30) info.warning = info.role === 'crl' ? `expires in ${info.expiresInDays} days; run "ferry pki crl"` : `expires in ${info.expiresInDays} days`
  return info
}
