import t from 'tap'
import { ifRangeHolds, noneMatch, parseRange } from './range.js'

t.test('parseRange follows RFC 9110 for a single byte range', async (t) => {
  const size = 1000
  const cases: Array<[string | undefined, ReturnType<typeof parseRange>]> = [
    [undefined, { kind: 'full' }],
    ['bytes=0-0', { kind: 'partial', start: 0, end: 0 }],
    ['bytes=0-499', { kind: 'partial', start: 0, end: 499 }],
    ['bytes=500-', { kind: 'partial', start: 500, end: 999 }],
    ['bytes=-200', { kind: 'partial', start: 800, end: 999 }],
    ['bytes=-5000', { kind: 'partial', start: 0, end: 999 }],
    ['bytes=900-5000', { kind: 'partial', start: 900, end: 999 }],
    ['bytes=1000-', { kind: 'unsatisfiable' }],
    ['bytes=1000-1001', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=5-1', { kind: 'full' }],
    ['bytes=0-1,5-6', { kind: 'full' }],
    ['items=0-1', { kind: 'full' }],
    ['bytes=-', { kind: 'full' }],
    ['bytes=a-b', { kind: 'full' }],
    ['bytes=99999999999999999999-', { kind: 'full' }],
  ]
  for (const [h, want] of cases) t.same(parseRange(h, size), want, String(h))
})

t.test('If-None-Match uses weak comparison, If-Range strong', async (t) => {
  const etag = '"abc"'
  t.ok(noneMatch('"abc"', etag))
  t.ok(noneMatch('W/"abc"', etag))
  t.ok(noneMatch('"x", "abc"', etag))
  t.ok(noneMatch('*', etag))
  t.notOk(noneMatch('"abcd"', etag))
  t.notOk(noneMatch(undefined, etag))
  t.ok(ifRangeHolds(undefined, etag))
  t.ok(ifRangeHolds('"abc"', etag))
  t.notOk(ifRangeHolds('W/"abc"', etag))
  t.notOk(ifRangeHolds('Wed, 21 Oct 2015 07:28:00 GMT', etag))
})
