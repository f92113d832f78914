/**
 * HTTP Range and conditional requests for immutable, content-addressed images (RFC 9110 §13-14).
 * Hand-written rather than @fastify/static because that library derives a weak ETag from size and
 * mtime, while Ferry's ETag must be the image's sha256 (strong, stable across servers and copies) so
 * that If-Range and If-None-Match survive a re-publish or a server move. Only a single range is
 * served; a multi-range request is answered with the whole image, which RFC 9110 §14.2 permits.
 */

export type RangeDecision =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' }

const RANGE_RE = /^bytes=(\d{0,16})-(\d{0,16})$/

/**
 * Decides what to send for a `Range` header over a representation of `size` bytes. Syntax it does
 * not understand, another unit or several ranges mean "ignore the header" (full 200), as the RFC asks.
 */
export function parseRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' }
  const m = RANGE_RE.exec(header.trim())
  if (!m) return { kind: 'full' }
  const [first, last] = [m[1]!, m[2]!]
  if (first === '' && last === '') return { kind: 'full' }
  if (first === '') {
    // Suffix range "-n": the last n bytes (§14.1.2).
    const n = Number(last)
    if (n === 0) return { kind: 'unsatisfiable' }
    return size === 0 ? { kind: 'unsatisfiable' } : { kind: 'partial', start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(first)
  if (last !== '' && Number(last) < start) return { kind: 'full' } // invalid range-spec: ignore the header
  if (start >= size) return { kind: 'unsatisfiable' }
  return { kind: 'partial', start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) }
}

/** Splits an entity-tag list ("a", W/"b", *) into its members, keeping W/ prefixes. */
function etagList(header: string): string[] {
  return header.match(/\*|(?:W\/)?"[^"]*"/g) ?? []
}

/** If-None-Match with the weak comparison of §13.1.2: true means answer 304. */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  const strip = (t: string) => t.replace(/^W\//, '')
  return etagList(header).some((t) => t === '*' || strip(t) === strip(etag))
}

/** If-Range with the strong comparison of §13.1.5: true means the Range may be honoured. */
export function ifRangeHolds(header: string | undefined, etag: string): boolean {
  if (header === undefined) return true
  // A date validator is never strong enough for content we identify by hash; send everything.
  return header.trim() === etag && !etag.startsWith('W/')
}
