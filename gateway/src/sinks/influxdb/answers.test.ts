// What the InfluxDB sink reads in an answer beyond its status (answers.ts), one claim per message
// family of docs/cloud-apis.md#what-ferry-reads-in-an-influxdb-answer. The same answers are served
// by the fake in influxdb-fake.test.ts; here each rule is checked on its own.
import t from 'tap'
import { interpretInfluxAnswer, lineErrors, REFUSALS, refusalKind, type InfluxAnswerContext } from './answers.js'

const LINES = ['telemetry,device=dev1 pot=1i 1', 'telemetry,device=dev2 pot=2i 2', 'telemetry,device=dev1 pot=3i 3']
const ctx = (version: 1 | 2 | 3, lines: readonly string[] = LINES): InfluxAnswerContext => ({ version, lines, endpoint: 'POST http://influx:8086/api/v3/write_lp', now: () => 0 })
const answer = (version: 1 | 2 | 3, status: number, body: unknown, lines: readonly string[] = LINES) =>
  interpretInfluxAnswer(ctx(version, lines), status, {}, typeof body === 'string' ? body : JSON.stringify(body))

t.test('201 naming its lines (3 Core data[]) is a partial write: the named rows rejected, no re-send', async (t) => {
  const v = answer(3, 201, { error: 'partial write of line protocol occurred', data: [{ line_number: 2, error_message: 'invalid field value', original_line: LINES[1]?.slice(0, 20) }] })
  t.same(v, { kind: 'partial', status: 201, errorClass: 'http_201', rejected: [{ index: 1, reason: 'partial write of line protocol occurred (line 2: invalid field value)' }] })
})

t.test('201 in the Cloud Serverless shape ("error parsing line N (1-based)") is a partial write too, on versions 1 and 2', async (t) => {
  const body = { code: 'invalid', line: 1, message: 'failed to parse line protocol: errors encountered on line(s):\nerror parsing line 1 (1-based): Invalid measurement was provided\nerror parsing line 3 (1-based): Unable to parse timestamp value' }
  for (const version of [1, 2] as const) {
    const v = answer(version, 201, body)
    t.equal(v.kind, 'partial', `version ${version}`)
    t.same(v.kind === 'partial' && v.rejected.map((x) => x.index), [0, 2])
    t.match(v.kind === 'partial' && v.rejected[1]?.reason, /line 3: Unable to parse timestamp value/)
  }
})

t.test('201 with an empty body is a success; with a body that names no line it is bisected, unless it carried one line', async (t) => {
  t.same(answer(2, 201, ''), { kind: 'accepted' })
  t.same(answer(1, 201, ''), { kind: 'accepted' }, 'version 1 too (only 204 and this one)')
  t.match(answer(3, 201, { error: 'partial write of line protocol occurred' }), { kind: 'rejected', errorClass: 'http_201_partial' })
  t.same(answer(3, 201, { error: 'partial write of line protocol occurred' }, LINES.slice(0, 1)), { kind: 'accepted' }, 'a partly written one-line request was written')
  t.same(answer(2, 204, ''), { kind: 'accepted' })
})

t.test('a line list that does not match the request is not trusted: bisect instead', async (t) => {
  t.match(answer(3, 201, { error: 'partial write of line protocol occurred', data: [{ line_number: 7, error_message: 'x' }] }), { kind: 'rejected' }, 'line out of range')
  t.match(answer(3, 201, { error: 'partial write of line protocol occurred', data: [{ line_number: 1, error_message: 'x', original_line: 'other,device=x' }] }), { kind: 'rejected' }, 'original_line differs')
  const hundred = Array.from({ length: 100 }, (_, i) => ({ line_number: i + 1, error_message: 'x' }))
  const many = Array.from({ length: 200 }, (_, i) => `m f=${i}i`)
  t.match(answer(3, 400, { error: 'partial write of line protocol occurred', data: hundred }, many), { kind: 'rejected' }, 'a list of 100 may be cut short')
})

t.test('3 Core 400 partial write maps its lines; accept_partial=false (nothing written) is bisected', async (t) => {
  t.match(answer(3, 400, { error: 'partial write of line protocol occurred', data: [{ line_number: 3, error_message: 'bad', original_line: LINES[2] }] }), { kind: 'partial', rejected: [{ index: 2 }] })
  t.match(answer(3, 400, { error: 'line protocol parsing error', data: { line_number: 3, error_message: 'bad', original_line: 'x' } }), { kind: 'rejected', status: 400 })
})

t.test('refusals that name a database, bucket, organisation or retention policy are kept and retried, not dead-lettered', async (t) => {
  const cases: [1 | 2 | 3, number, unknown, RegExp][] = [
    [1, 404, { error: 'database not found: "ferry"' }, /CREATE DATABASE/],
    [1, 500, { error: 'retention policy not found: weekly' }, /FERRY_INFLUX_RP/],
    [1, 400, { error: 'retention policy not found: weekly' }, /FERRY_INFLUX_RP/],
    [2, 404, { code: 'not found', message: 'bucket "sensors" not found' }, /FERRY_INFLUX_BUCKET/],
    [2, 404, { code: 'not found', message: 'organization name "acme" not found' }, /FERRY_INFLUX_ORG/],
    [2, 400, { code: 'invalid', message: 'failed to decode request body: organization not found' }, /FERRY_INFLUX_ORG/],
    [3, 404, { error: 'database not found' }, /FERRY_INFLUX_DB/],
  ]
  for (const [version, status, body, hint] of cases) {
    const v = answer(version, status, body)
    t.match(v, { kind: 'retry', status, errorClass: 'target_missing' }, `${version} ${status} ${JSON.stringify(body)}`)
    t.match(v.kind === 'retry' && v.reason, hint)
    t.match(v.kind === 'retry' && v.reason, /Readings stay buffered/)
  }
})

t.test('refusals that name a server limit are kept and retried with class server_limit', async (t) => {
  const cases: [1 | 2 | 3, number, unknown][] = [
    [1, 400, { error: 'partial write: max-values-per-tag limit exceeded (100000/100000): measurement="telemetry" tag="device" value="dev9" dropped=1' }],
    [1, 400, { error: 'partial write: max-series-per-database limit exceeded: (1000000) dropped=3' }],
    [3, 422, { error: 'partial write of line protocol occurred', data: [{ line_number: 1, error_message: 'Update to schema would exceed number of columns per table limit of 5 columns', original_line: LINES[0] }] }],
    [3, 400, { error: 'line protocol parsing error', data: { line_number: 1, error_message: 'Update to schema would exceed number of tables limit of 2000 tables', original_line: 'x' } }],
    [2, 201, { code: 'invalid', line: 2, message: 'failed to parse line protocol: errors encountered on line(s):\nerror parsing line 2 (1-based): series cardinality limit reached' }],
  ]
  for (const [version, status, body] of cases) {
    t.match(answer(version, status, body), { kind: 'retry', errorClass: 'server_limit', reason: /limit.*raise the limit.*Readings stay buffered/ }, `${version} ${status}`)
  }
})

t.test('row errors stay row errors: field type conflict, a point beyond retention, a parse error', async (t) => {
  for (const [version, status, body] of [
    [1, 400, { error: 'partial write: field type conflict: input field "led" on measurement "telemetry" is type integer, already exists as type float dropped=1 for database: ferry' }],
    [1, 400, { error: 'partial write: points beyond retention policy dropped=2' }],
    [2, 422, { code: 'unprocessable entity', message: 'failure writing points to database: partial write: points beyond retention policy dropped=1 for database: sensors for retention policy: autogen' }],
    [2, 400, { code: 'invalid', message: "unable to parse 'x': missing fields" }],
  ] as const) {
    t.match(answer(version, status, body), { kind: 'rejected', status }, JSON.stringify(body))
  }
})

t.test('a refusal that says the body is too large is split, as a 413', async (t) => {
  t.match(answer(2, 400, { code: 'invalid', message: 'unable to read data: points batch is too large' }), { kind: 'split', status: 400 })
  t.match(answer(1, 413, { error: 'Request Entity Too Large' }), { kind: 'split', status: 413 })
})

t.test('a 404 that names no database means no write endpoint: stop with FERRY_ERR_SINK_ENDPOINT and say which version to use', async (t) => {
  for (const body of [{ code: 'not found', message: 'path not found' }, '<html>404 Not Found</html>', '']) {
    const v = answer(3, 404, body)
    t.match(v, { kind: 'stop', status: 404, code: 'FERRY_ERR_SINK_ENDPOINT', errorClass: 'endpoint_missing' }, JSON.stringify(body))
    t.match(v.kind === 'stop' && v.reason, /no write endpoint at POST http:\/\/influx:8086\/api\/v3\/write_lp .*Cloud Serverless and Cloud Dedicated .*FERRY_INFLUX_VERSION=2/)
  }
})

t.test('other answers keep the plain classification', async (t) => {
  t.match(answer(1, 500, { error: 'timeout' }), { kind: 'retry', errorClass: 'http_5xx' })
  t.match(answer(1, 200, '<html>portal</html>'), { kind: 'retry', errorClass: 'http_200' }, 'a 200 on version 1 is still not a write')
  t.match(answer(2, 401, { code: 'unauthorized', message: 'unauthorized access' }), { kind: 'auth' })
  t.match(answer(2, 429, { code: 'too many requests', message: 'x' }), { kind: 'retry', errorClass: 'http_429' })
})

t.test('lineErrors reads both shapes and ignores bodies without line numbers', async (t) => {
  t.same(lineErrors('{"error":"partial write of line protocol occurred","data":[{"line_number":2,"error_message":"e","original_line":"o"}]}'), { errors: [{ line: 2, message: 'e', original: 'o' }], complete: true, summary: 'partial write of line protocol occurred' })
  t.same(lineErrors('{"code":"invalid","message":"failed: error parsing line 4 (1-based): bad"}')?.errors, [{ line: 4, message: 'bad' }])
  t.equal(lineErrors('{"code":"unprocessable entity","message":"partial write: x dropped=1"}'), undefined)
  t.equal(lineErrors('-1'), undefined)
  t.equal(lineErrors('{"data":[{"line_number":"x"}]}'), undefined)
})

t.test('every refusal rule matches its own documented example and no row error', async (t) => {
  for (const r of REFUSALS) {
    const example = /`([^`]+)`/.exec(r.example)?.[1]
    if (example) t.equal(refusalKind(example), r.kind, example)
  }
  t.equal(refusalKind('partial write: field type conflict: input field "pot" on measurement "telemetry" is type float, already exists as type integer dropped=1 for database: ferry for retention policy: autogen'), undefined)
})
