// How the API is served, decided from the settings before anything starts (issue 19): HTTPS with the
// PKI's server certificate, plain HTTP on loopback, plain HTTP beyond loopback only with
// FERRY_HTTP_INSECURE=true, and refusals that say what to set. Real certificates from the PKI helper.
import t from 'tap'
import { makePki } from '../../../test/helpers/pki.js'
import { apiTransport, isLoopback } from './transport.js'
import { apiMode } from './config.js'

t.test('loopback is 127.0.0.0/8, ::1 and localhost; anything else may be reached from the network', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) t.ok(isLoopback(h), h)
  for (const h of ['0.0.0.0', '::', '192.168.1.50', 'ferry.local', '128.0.0.1', '::ffff:10.0.0.1', '']) t.notOk(isLoopback(h), h)
})

t.test('plain HTTP is allowed on loopback only, unless FERRY_HTTP_INSECURE=true', async (t) => {
  t.same(apiTransport({}), { scheme: 'http', exposed: false }, 'the default host is loopback')
  t.same(apiTransport({ FERRY_HTTP_HOST: '::1' }), { scheme: 'http', exposed: false })
  for (const host of ['0.0.0.0', '::', '192.168.1.50', 'ferry.local']) {
    t.throws(() => apiTransport({ FERRY_HTTP_HOST: host }), { code: 'FERRY_ERR_CONFIG', message: new RegExp(`FERRY_HTTP_HOST=${host.replace(/\./g, '\\.')} .*in clear.*Set FERRY_HTTP_TLS_CERT and FERRY_HTTP_TLS_KEY.*FERRY_HTTP_HOST=127\\.0\\.0\\.1.*FERRY_HTTP_INSECURE=true`) }, host)
  }
  t.same(apiTransport({ FERRY_HTTP_HOST: '0.0.0.0', FERRY_HTTP_INSECURE: true }), { scheme: 'http', exposed: true })
})

t.test('apiMode checks the transport too, after the token', async (t) => {
  t.throws(() => apiMode({ FERRY_HTTP_PORT: 8080, FERRY_API_READ_ONLY: true, FERRY_HTTP_HOST: '0.0.0.0' }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_HTTP_HOST=0\.0\.0\.0/ })
  t.throws(() => apiMode({ FERRY_HTTP_PORT: 8080, FERRY_API_READ_ONLY: false, FERRY_HTTP_HOST: '0.0.0.0' }), { message: /FERRY_API_TOKEN is not set/ })
  t.same(apiMode({ FERRY_HTTP_PORT: 0, FERRY_API_READ_ONLY: false, FERRY_HTTP_HOST: '0.0.0.0' }), { kind: 'off' }, 'no API, nothing to refuse')
})

t.test('with a certificate and its key the API is HTTPS on any address', async (t) => {
  const pki = await makePki(t, [])
  const f = pki.files
  const r = apiTransport({ FERRY_HTTP_HOST: '0.0.0.0', FERRY_HTTP_TLS_CERT: f.serverCert, FERRY_HTTP_TLS_KEY: f.serverKey })
  t.equal(r.scheme, 'https')
  if (r.scheme !== 'https') return
  t.match(r.tls.cert.toString(), /BEGIN CERTIFICATE/)
  t.match(r.tls.key.toString(), /PRIVATE KEY/)
  t.same(r.tls.clientNames, [])
  t.equal(r.tls.clientCa, undefined, 'no client certificates unless asked')

  const withClients = apiTransport({
    FERRY_HTTP_TLS_CERT: f.serverCert,
    FERRY_HTTP_TLS_KEY: f.serverKey,
    FERRY_HTTP_TLS_CLIENT_CA: f.caCert,
    FERRY_HTTP_TLS_CLIENT_NAMES: ' automation, ha-1 ',
    FERRY_HTTP_TLS_CRL: f.crl,
  })
  t.match(withClients, { scheme: 'https', tls: { clientNames: ['automation', 'ha-1'] } })
  t.ok(withClients.scheme === 'https' && withClients.tls.clientCa && withClients.tls.crl, 'CA and CRL read')
})

t.test('TLS settings that cannot work stop the start, naming the setting and what to do', async (t) => {
  const pki = await makePki(t, [])
  const other = await makePki(t, [])
  const f = pki.files
  const https = { FERRY_HTTP_TLS_CERT: f.serverCert, FERRY_HTTP_TLS_KEY: f.serverKey }
  const cases: [string, Parameters<typeof apiTransport>[0], RegExp][] = [
    ['a certificate without its key', { FERRY_HTTP_TLS_CERT: f.serverCert }, /FERRY_HTTP_TLS_CERT is set but FERRY_HTTP_TLS_KEY is not/],
    ['a key without its certificate', { FERRY_HTTP_TLS_KEY: f.serverKey }, /FERRY_HTTP_TLS_KEY is set but FERRY_HTTP_TLS_CERT is not/],
    ['a missing file', { ...https, FERRY_HTTP_TLS_CERT: '/nonexistent/server.crt' }, /FERRY_HTTP_TLS_CERT: cannot read \/nonexistent\/server\.crt \(ENOENT\)/],
    ['a key of another certificate', { ...https, FERRY_HTTP_TLS_KEY: other.files.serverKey }, /cannot be used .*use a certificate and the key it was issued with/],
    ['a folder instead of a file', { ...https, FERRY_HTTP_TLS_CERT: pki.dir }, /FERRY_HTTP_TLS_CERT: cannot read .*\(EISDIR\)/],
    ['a file that is not a certificate', { ...https, FERRY_HTTP_TLS_CERT: f.crl }, /cannot be used/],
    ['client certificates without HTTPS', { FERRY_HTTP_TLS_CLIENT_CA: f.caCert, FERRY_HTTP_TLS_CLIENT_NAMES: 'automation' }, /FERRY_HTTP_TLS_CLIENT_CA is set, but client certificates need HTTPS/],
    ['a client CA without names', { ...https, FERRY_HTTP_TLS_CLIENT_CA: f.caCert }, /FERRY_HTTP_TLS_CLIENT_NAMES is not: the CA also signs every device/],
    ['names without a client CA', { ...https, FERRY_HTTP_TLS_CLIENT_NAMES: 'automation' }, /FERRY_HTTP_TLS_CLIENT_NAMES is set but FERRY_HTTP_TLS_CLIENT_CA is not/],
    ['a CRL without a client CA', { ...https, FERRY_HTTP_TLS_CRL: f.crl }, /FERRY_HTTP_TLS_CRL is set but FERRY_HTTP_TLS_CLIENT_CA is not/],
  ]
  for (const [what, settings, message] of cases) t.throws(() => apiTransport(settings), { code: 'FERRY_ERR_CONFIG', message }, what)
})
