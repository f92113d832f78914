import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { makePki } from '../../../test/helpers/pki.js'
import { revokeDevice } from '../../../common/src/pki/pki.js'
import { normalSerial, readRevoked } from './revocation.js'

t.test('serials compare equal however OpenSSL or the CRL library prints them', async (t) => {
  t.equal(normalSerial('0FA1'), 'fa1')
  t.equal(normalSerial('00fa1'), 'fa1')
  t.equal(normalSerial('0'), '0')
  t.equal(normalSerial('00'), '0')
})

t.test('readRevoked lists what `ferry pki revoke` put in crl.pem, keyed as a TLS peer certificate shows it', async (t) => {
  const pki = await makePki(t, ['dev1', 'dev2'])
  t.same(readRevoked(readFileSync(pki.files.crl)), new Map(), 'a fresh CRL revokes nothing')
  await revokeDevice(pki.dir, 'dev2')
  const revoked = readRevoked(readFileSync(pki.files.crl))
  const serialOf = (id: string) => normalSerial(new X509Certificate(readFileSync(pki.files.deviceCert(id))).serialNumber)
  t.equal(revoked.size, 1)
  t.ok(revoked.has(serialOf('dev2')), 'the revoked device is listed by the serial Node reports for it')
  t.notOk(revoked.has(serialOf('dev1')))
  t.match([...revoked.get(serialOf('dev2'))!], [/CN=Ferry device CA/], 'with the issuing CA')
})

t.test('readRevoked refuses text that holds no CRL', async (t) => {
  t.throws(() => readRevoked('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), /no "BEGIN X509 CRL" block/)
  t.throws(() => readRevoked('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n'))
})
