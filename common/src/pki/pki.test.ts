import t from 'tap'
import { execFileSync } from 'node:child_process'
import { statSync, readFileSync, readdirSync } from 'node:fs'
import { X509Certificate } from 'node:crypto'
import { initPki, issueDevice, issueGatewayReplica, issueServer, listPki, pkiFiles, revokeDevice } from './pki.js'
import { tempDir } from '../../../test/helpers/tmp.js'
import { join } from 'node:path'

const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

t.test('a device certificate passes openssl verify against the CA, with clientAuth and no CA bit', async (t) => {
  const dir = join(tempDir(t), 'pki')
  await initPki(dir)
  await issueDevice(dir, 'dev1')
  const f = pkiFiles(dir)
  t.match(openssl('verify', '-CAfile', f.caCert, '-purpose', 'sslclient', f.deviceCert('dev1')), /: OK/)
  const text = openssl('x509', '-in', f.deviceCert('dev1'), '-noout', '-text')
  t.match(text, /Subject: CN ?= ?dev1/)
  t.match(text, /CA:FALSE/)
  t.match(text, /TLS Web Client Authentication/)
  t.notMatch(text, /TLS Web Server Authentication/)
  t.match(text, /ASN1 OID: prime256v1/)
  const ca = openssl('x509', '-in', f.caCert, '-noout', '-text')
  t.match(ca, /CA:TRUE, pathlen:0/)
  t.match(ca, /Certificate Sign, CRL Sign/)
})

t.test('the server certificate carries every --host and --ip as SANs and serverAuth', async (t) => {
  const dir = join(tempDir(t), 'pki')
  await initPki(dir)
  await issueServer(dir, { hosts: ['broker.local', 'localhost'], ips: ['127.0.0.1', '192.0.2.7'] })
  const f = pkiFiles(dir)
  t.match(openssl('verify', '-CAfile', f.caCert, '-purpose', 'sslserver', f.serverCert), /: OK/)
  const cert = new X509Certificate(readFileSync(f.serverCert))
  t.equal(cert.subjectAltName, 'DNS:broker.local, DNS:localhost, IP Address:127.0.0.1, IP Address:192.0.2.7')
  t.ok(cert.checkHost('broker.local'))
  t.ok(cert.checkIP('192.0.2.7'))
  t.match(openssl('x509', '-in', f.serverCert, '-noout', '-text'), /TLS Web Server Authentication/)
})

t.test('keys are written mode 0600 and serials are random', async (t) => {
  const dir = join(tempDir(t), 'pki')
  await initPki(dir)
  const a = await issueDevice(dir, 'dev1')
  const b = await issueDevice(dir, 'dev2')
  const f = pkiFiles(dir)
  for (const k of [f.caKey, f.gatewayKey, f.deviceKey('dev1'), f.deviceKey('dev2')]) t.equal(statSync(k).mode & 0o777, 0o600, k)
  t.not(a.serial, b.serial)
  t.ok(a.serial.length >= 30, 'at least 120 random bits')
})

t.test('validity defaults: CA 10 years, leaf 2 years; --days overrides', async (t) => {
  const dir = join(tempDir(t), 'pki')
  await initPki(dir)
  await issueDevice(dir, 'dev1', { days: 10 })
  const years = (p: string) => {
    const c = new X509Certificate(readFileSync(p))
    return (Date.parse(c.validTo) - Date.parse(c.validFrom)) / (365 * 86400e3)
  }
  const f = pkiFiles(dir)
  t.ok(Math.abs(years(f.caCert) - 10) < 0.02)
  t.ok(Math.abs(years(f.gatewayCert) - 2) < 0.01)
  t.ok(Math.abs(years(f.deviceCert('dev1')) * 365 - 10) < 0.01)
})

t.test('refuses to overwrite an existing CA without force', async (t) => {
  const dir = join(tempDir(t), 'pki')
  await initPki(dir)
  const before = readFileSync(pkiFiles(dir).caCert, 'utf8')
  await t.rejects(initPki(dir), { code: 'FERRY_ERR_PKI', message: /--force/ })
  t.equal(readFileSync(pkiFiles(dir).caCert, 'utf8'), before)
  await initPki(dir, { force: true })
  t.not(readFileSync(pkiFiles(dir).caCert, 'utf8'), before)
})

t.test('refuses device ids outside the pattern with a clear message', async (t) => {
  const dir = join(tempDir(t), 'pki')
  await initPki(dir)
  for (const bad of ['Dev1', '-dev', 'a/b', '', 'x'.repeat(64), 'dev 1', 'dev+1', 'ferry-gateway', 'ferry-gateway-1', 'ferry-gateway-10', 'ferry-gateways', '../x']) {
    await t.rejects(issueDevice(dir, bad), { code: 'FERRY_ERR_DEVICE_ID' }, JSON.stringify(bad))
  }
  await t.resolves(issueDevice(dir, 'a'))
  await t.resolves(issueDevice(dir, 'x'.repeat(63)))
})

t.test('revoke adds the serial to crl.pem, which openssl accepts and applies', async (t) => {
  const dir = join(tempDir(t), 'pki')
  await initPki(dir)
  const { serial } = await issueDevice(dir, 'dev1')
  await issueDevice(dir, 'dev2')
  await revokeDevice(dir, 'dev1')
  const f = pkiFiles(dir)
  const crlText = openssl('crl', '-in', f.crl, '-noout', '-text')
  t.match(crlText.toLowerCase(), serial.toLowerCase())
  t.throws(() => openssl('verify', '-crl_check', '-CAfile', f.caCert, '-CRLfile', f.crl, f.deviceCert('dev1')))
  t.match(openssl('verify', '-crl_check', '-CAfile', f.caCert, '-CRLfile', f.crl, f.deviceCert('dev2')), /: OK/)
  const rows = listPki(dir)
  t.equal(rows.find((r) => r.subject.includes('CN=dev1'))?.revoked, true)
  t.equal(rows.find((r) => r.subject.includes('CN=dev2'))?.revoked, false)
})

t.test('list warns about certificates that expire within 30 days', async (t) => {
  const dir = join(tempDir(t), 'pki')
  await initPki(dir)
  await issueDevice(dir, 'soon', { days: 20 })
  await issueDevice(dir, 'later', { days: 60 })
  const rows = listPki(dir)
  t.match(rows.find((r) => r.subject.includes('CN=soon'))?.warning, /expires in 1\d days/)
  t.equal(rows.find((r) => r.subject.includes('CN=later'))?.warning, undefined)
  t.same(rows.map((r) => r.role), ['ca', 'gateway', 'device', 'device', 'crl'])
})

/** The X509v3 extensions of a certificate as openssl prints them, without the per-key identifiers. */
function extensionsOf(file: string): string[] {
  const text = openssl('x509', '-in', file, '-noout', '-text')
  const ext = text.slice(text.indexOf('X509v3 extensions:'), text.indexOf('Signature Algorithm', text.indexOf('X509v3 extensions:')))
  return ext.split('\n').map((l) => l.trim()).filter((l, i, all) => l && !/Key Identifier/.test(l) && !/Key Identifier/.test(all[i - 1] ?? ''))
}

t.test('a gateway replica certificate: CN=ferry-gateway-<n>, made like the gateway certificate, key 0600', async (t) => {
  const dir = join(tempDir(t), 'pki')
  await initPki(dir)
  const r = await issueGatewayReplica(dir, 2)
  const f = pkiFiles(dir)
  t.same([r.cert, r.key, r.cn], [join(dir, 'gateway-2.crt'), join(dir, 'gateway-2.key'), 'ferry-gateway-2'])
  t.match(openssl('verify', '-CAfile', f.caCert, '-purpose', 'sslclient', r.cert), /: OK/)
  t.match(openssl('x509', '-in', r.cert, '-noout', '-subject'), /CN ?= ?ferry-gateway-2\b/)
  t.equal(statSync(r.key).mode & 0o777, 0o600)
  const certPub = openssl('x509', '-in', r.cert, '-noout', '-pubkey')
  t.match(certPub, /BEGIN PUBLIC KEY/)
  t.equal(openssl('pkey', '-in', r.key, '-pubout'), certPub, 'the key belongs to the certificate')
  const gw = extensionsOf(f.gatewayCert)
  t.ok(gw.some((l) => /TLS Web Client Authentication/.test(l)), 'control: the comparison sees the extensions')
  t.same(extensionsOf(r.cert), gw, 'same extensions as gateway.crt')
  const days = (p: string) => {
    const c = new X509Certificate(readFileSync(p))
    return (Date.parse(c.validTo) - Date.parse(c.validFrom)) / 86400e3
  }
  t.equal(days(r.cert), days(f.gatewayCert), 'same validity as gateway.crt')
  await issueGatewayReplica(dir, 3, { days: 10 })
  t.ok(Math.abs(days(f.replicaCert(3)) - 10) < 0.01, '--days overrides')
})

t.test('gateway replica numbers other than 1…9 are refused, and an existing one needs force', async (t) => {
  const dir = join(tempDir(t), 'pki')
  await initPki(dir)
  for (const bad of [0, 10, -1, 1.5, NaN]) {
    await t.rejects(issueGatewayReplica(dir, bad), { code: 'FERRY_ERR_PKI', message: /must be 1…9.*ferry-gateway-1 … ferry-gateway-9/ }, String(bad))
  }
  t.same(readdirSync(dir).filter((n) => n.startsWith('gateway-')), [], 'nothing written for a refused number')
  await issueGatewayReplica(dir, 9)
  const before = readFileSync(pkiFiles(dir).replicaCert(9), 'utf8')
  await t.rejects(issueGatewayReplica(dir, 9), { code: 'FERRY_ERR_PKI', message: /--force/ })
  t.equal(readFileSync(pkiFiles(dir).replicaCert(9), 'utf8'), before)
  await issueGatewayReplica(dir, 9, { force: true })
  t.not(readFileSync(pkiFiles(dir).replicaCert(9), 'utf8'), before)
})

t.test('list shows replicas with role gateway; revoke takes a replica by its CN', async (t) => {
  const dir = join(tempDir(t), 'pki')
  await initPki(dir)
  await issueDevice(dir, 'dev1')
  const two = await issueGatewayReplica(dir, 2)
  await issueGatewayReplica(dir, 1)
  const rows = listPki(dir)
  t.same(rows.map((r) => [r.role, /CN=([^,]+)/.exec(r.subject)?.[1]]), [
    ['ca', 'Ferry device CA'],
    ['gateway', 'ferry-gateway'],
    ['gateway', 'ferry-gateway-1'],
    ['gateway', 'ferry-gateway-2'],
    ['device', 'dev1'],
    ['crl', 'Ferry device CA'],
  ])
  const { serial } = await revokeDevice(dir, 'ferry-gateway-2')
  t.equal(serial, two.serial.toLowerCase())
  const f = pkiFiles(dir)
  t.throws(() => openssl('verify', '-crl_check', '-CAfile', f.caCert, '-CRLfile', f.crl, two.cert))
  t.match(openssl('verify', '-crl_check', '-CAfile', f.caCert, '-CRLfile', f.crl, f.replicaCert(1)), /: OK/)
  t.same(listPki(dir).filter((r) => r.revoked).map((r) => r.file), [two.cert])
  await t.rejects(revokeDevice(dir, 'ferry-gateway-5'), { code: 'FERRY_ERR_PKI', message: /no certificate for ferry-gateway-5.*ferry pki list/ })
  await t.rejects(revokeDevice(dir, 'ferry-gateway-10'), { code: 'FERRY_ERR_DEVICE_ID' })
})
