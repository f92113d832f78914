import t from 'tap'
import { errors } from 'undici'
import { FerryError } from '../../../common/src/errors.js'
import { classifySinkError } from './classify-error.js'

const withCode = (code: string, message = code) => Object.assign(new Error(message), { code })

t.test('network: undici errors, socket and DNS codes, TLS failures, aborts and timeouts', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['undici connect timeout', new errors.ConnectTimeoutError()],
    ['undici headers timeout', new errors.HeadersTimeoutError()],
    ['undici body timeout', new errors.BodyTimeoutError()],
    ['undici socket error', new errors.SocketError('other side closed')],
    ['undici request aborted', new errors.RequestAbortedError()],
    ['undici HTTP parser error', withCode('HPE_INVALID_CONSTANT', 'Expected HTTP/')],
    ['ECONNREFUSED', withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:8086')],
    ['ETIMEDOUT', withCode('ETIMEDOUT')],
    ['ENOTFOUND', withCode('ENOTFOUND', 'getaddrinfo ENOTFOUND influx')],
    ['ECONNRESET', withCode('ECONNRESET')],
    ['TLS', withCode('ERR_TLS_CERT_ALTNAME_INVALID')],
    ['certificate', withCode('UNABLE_TO_VERIFY_LEAF_SIGNATURE')],
    ['AbortError', new DOMException('This operation was aborted', 'AbortError')],
    ['TimeoutError', new DOMException('The operation was aborted due to timeout', 'TimeoutError')],
    ['fetch failed', new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') })],
    // The HTTP sinks wrap transport failures: the class comes from the cause.
    ['wrapped in FERRY_ERR_SINK', new FerryError('FERRY_ERR_SINK', 'InfluxDB request failed', { cause: new errors.ConnectTimeoutError() })],
    ['deep cause', new Error('outer', { cause: new Error('middle', { cause: withCode('EHOSTUNREACH') }) })],
    ['AggregateError (happy eyeballs)', new AggregateError([withCode('ECONNREFUSED'), withCode('ENETUNREACH')], 'connect failed')],
  ]
  for (const [what, err] of cases) t.equal(classifySinkError(err), 'network', what)
})

t.test('io: local disk failures (the file sink)', async (t) => {
  for (const code of ['ENOSPC', 'EIO', 'EROFS', 'EACCES', 'EISDIR']) t.equal(classifySinkError(withCode(code)), 'io', code)
})

t.test('error: anything else is a bug, including undici misuse', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['TypeError', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['RangeError', new RangeError('Invalid array length')],
    ['plain Error', new Error('something odd')],
    ['coded Ferry error without a network cause', new FerryError('FERRY_ERR_SINK', 'file does not end in line protocol')],
    ['undici invalid argument', new errors.InvalidArgumentError('invalid method')],
    ['undici client destroyed', new errors.ClientDestroyedError()],
    ['not an Error', 'a string'],
    ['null', null],
  ]
  for (const [what, err] of cases) t.equal(classifySinkError(err), 'error', what)
})

t.test('a cyclic cause chain does not hang', async (t) => {
  const a = new Error('a')
  const b = new Error('b', { cause: a })
  ;(a as { cause?: unknown }).cause = b
  t.equal(classifySinkError(a), 'error')
})
