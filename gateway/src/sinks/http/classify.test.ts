import t from 'tap'
import { classifyHttp, parseRetryAfter, serverMessage } from './classify.js'

const NOW = Date.parse('2026-03-01T12:00:00Z')
const now = () => NOW

t.test('2xx is accepted; with successStatuses only the listed ones are', async (t) => {
  t.same(classifyHttp(204, {}, ''), { kind: 'accepted' })
  t.same(classifyHttp(202, {}, '{"success":true}'), { kind: 'accepted' })
  t.same(classifyHttp(204, {}, '', { successStatuses: [204] }), { kind: 'accepted' })
  const v = classifyHttp(200, {}, '<html>proxy</html>', { successStatuses: [204] })
  t.equal(v.kind, 'retry', 'a 200 from InfluxDB 1.x is not a write')
  t.equal(v.kind === 'retry' && v.errorClass, 'http_200')
})

t.test('a 2xx whose body says the write failed is retried', async (t) => {
  const v = classifyHttp(200, {}, '0', { successBodyFailure: (b) => (b.trim() === '0' ? 'entry not inserted' : undefined) })
  t.match(v, { kind: 'retry', reason: 'entry not inserted', errorClass: 'http_2xx_not_written' })
})

t.test('400 and 422 are rejected with the server text', async (t) => {
  t.same(classifyHttp(400, {}, '{"error":"partial write: field type conflict dropped=1"}'), {
    kind: 'rejected', status: 400, reason: 'partial write: field type conflict dropped=1', errorClass: 'http_400',
  })
  t.match(classifyHttp(422, {}, '{"code":"unprocessable entity","message":"partial write: x dropped=2"}'), {
    kind: 'rejected', reason: 'unprocessable entity: partial write: x dropped=2',
  })
  t.match(classifyHttp(400, {}, '{"error":"partial write of line protocol occurred","data":[{"error_message":"bad","line_number":2,"original_line":"x"}]}'), {
    kind: 'rejected', reason: 'partial write of line protocol occurred (line 2: bad)',
  })
})

t.test('413 asks for a split', async (t) => {
  t.match(classifyHttp(413, {}, '{"error":"Request Entity Too Large"}'), { kind: 'split', errorClass: 'http_413' })
})

t.test('401 and 403 are auth errors', async (t) => {
  t.match(classifyHttp(401, {}, '{"error":"authorization failed"}'), { kind: 'auth', status: 401, reason: 'authorization failed' })
  t.match(classifyHttp(403, {}, ''), { kind: 'auth', status: 403, reason: 'HTTP 403 with an empty body' })
})

t.test('429 and 503 carry Retry-After in seconds', async (t) => {
  t.match(classifyHttp(429, { 'retry-after': '30' }, '', { now }), { kind: 'retry', retryAfterMs: 30_000, errorClass: 'http_429' })
  t.match(classifyHttp(503, { 'retry-after': ['7'] }, 'request throttled', { now }), { kind: 'retry', retryAfterMs: 7_000, errorClass: 'http_503' })
})

t.test('429 carries Retry-After as an HTTP date', async (t) => {
  const v = classifyHttp(429, { 'retry-after': 'Sun, 01 Mar 2026 12:01:30 GMT' }, '', { now })
  t.match(v, { kind: 'retry', retryAfterMs: 90_000 })
})

t.test('429 without Retry-After is retryable with no pause given', async (t) => {
  const v = classifyHttp(429, {}, '', { now })
  t.equal(v.kind, 'retry')
  t.notOk('retryAfterMs' in v)
})

t.test('other 5xx are retryable', async (t) => {
  t.match(classifyHttp(500, {}, '{"error":"max series per database exceeded"}'), { kind: 'retry', errorClass: 'http_5xx', reason: 'max series per database exceeded' })
  t.match(classifyHttp(502, { 'retry-after': '2' }, '<html>bad gateway</html>'), { kind: 'retry', retryAfterMs: 2000 })
})

t.test('anything else is retryable with an error class, never rejected', async (t) => {
  t.match(classifyHttp(404, {}, '{"error":"database not found: \\"x\\""}'), { kind: 'retry', errorClass: 'http_404' })
  t.match(classifyHttp(301, { location: '/x' }, ''), { kind: 'retry', errorClass: 'http_3xx' })
  t.match(classifyHttp(405, {}, 'nope'), { kind: 'retry', errorClass: 'http_4xx' })
  t.match(classifyHttp(402, {}, ''), { kind: 'retry', errorClass: 'http_4xx' })
  t.match(classifyHttp(0, {}, ''), { kind: 'retry', errorClass: 'http_invalid' })
  t.match(classifyHttp(999, {}, '\u0000\u0001garbage'), { kind: 'retry', errorClass: 'http_invalid' })
  t.match(classifyHttp(Number.NaN, {}, ''), { kind: 'retry', errorClass: 'http_invalid' })
})

t.test('parseRetryAfter handles seconds, dates, junk and past dates', async (t) => {
  t.equal(parseRetryAfter('0', now), 0)
  t.equal(parseRetryAfter(' 120 ', now), 120_000)
  t.equal(parseRetryAfter('1.5', now), 1500)
  t.equal(parseRetryAfter('Sun, 01 Mar 2026 12:00:10 GMT', now), 10_000)
  t.equal(parseRetryAfter('Sun, 01 Mar 2026 11:00:00 GMT', now), 0, 'a date in the past means now')
  t.equal(parseRetryAfter('soon', now), undefined)
  t.equal(parseRetryAfter('-5', now), undefined)
  t.equal(parseRetryAfter('', now), undefined)
  t.equal(parseRetryAfter(undefined, now), undefined)
})

t.test('serverMessage reads the known error shapes and caps length', async (t) => {
  t.equal(serverMessage(401, {}, '{"status":"401","error":{"error_code":"error_auth_required","message":"Authorization Required","details":"Please provide proper authentication details."}}'),
    'error_auth_required: Authorization Required: Please provide proper authentication details.')
  t.equal(serverMessage(400, { 'x-influxdb-error': 'from header' }, ''), 'from header')
  t.equal(serverMessage(500, {}, 'plain\ntext'), 'plain text')
  t.equal(serverMessage(500, {}, 'x'.repeat(5000)).length, 1025)
})
