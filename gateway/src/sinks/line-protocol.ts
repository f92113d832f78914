/**
 * InfluxDB line protocol for a buffered reading, as fixed by the design:
 *
 *   telemetry,device=<id> pot=<n>i,switch=<n>i,seq=<n>i,boot=<n>i[,led=<n>i] <ns>
 *
 * Escaping follows the line protocol reference (docs/cloud-apis.md#line-protocol): measurement
 * escapes comma and space; tag keys, tag values and field keys escape comma, equals sign and space.
 * All fields are signed integers (`i`): InfluxDB 1.x rejects the unsigned `u` suffix unless built
 * with uint support. The timestamp is `tsUs × 1000` in nanoseconds, written as the digits of the
 * integer `tsUs` followed by `000`, so no float rounding can move a point (2^53 ns is only ~104
 * days; µs × 1000 as a double exceeds it for any real date).
 *
 * This runs once per reading while a backlog drains, so it avoids per-field closures, BigInt and
 * intermediate objects (bench/README.md, drain).
 */
import type { BufferedReading } from './types.js'

/** Default measurement name (the point shape in README.md#topics-and-payloads). */
export const DEFAULT_MEASUREMENT = 'telemetry'

/** A reading that cannot be expressed as a valid line; the sink dead-letters it without sending. */
export class LineProtocolError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LineProtocolError'
  }
}

/** Escapes a measurement name: comma and space. */
export function escapeMeasurement(s: string): string {
  return s.replace(/[, ]/g, (c) => `\\${c}`)
}

/** Escapes a tag key, tag value or field key: comma, equals sign and space. */
export function escapeKey(s: string): string {
  return s.replace(/[,= ]/g, (c) => `\\${c}`)
}

/** Throws unless `v` is a safe integer (a field value or a timestamp that can be written exactly). */
function checkInt(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new LineProtocolError(`field ${name} must be an integer, got ${JSON.stringify(v)}`)
  }
}

/** `tsUs` (µs since the epoch) as an exact nanosecond integer string: its digits and `000`. */
export function nsFromUs(tsUs: number): string {
  if (!Number.isSafeInteger(tsUs)) throw new LineProtocolError(`timestamp must be an integer number of microseconds, got ${tsUs}`)
  return tsUs === 0 ? '0' : `${tsUs}000`
}

/**
 * One line (no trailing newline) for a reading. Throws LineProtocolError when a value cannot be
 * written (non-integer field, empty device id, newline in a name); the caller rejects that row.
 */
export function toLine(row: BufferedReading, measurement = DEFAULT_MEASUREMENT): string {
  return lineWith(row, seriesKey(measurement, row.device))
}

/** `<measurement>,device=<id>`, escaped and checked; the same for every reading of a device. */
function seriesKey(measurement: string, device: string): string {
  if (!device) throw new LineProtocolError('device id is empty; InfluxDB does not accept an empty tag value')
  if (/[\r\n]/.test(device) || /[\r\n]/.test(measurement)) throw new LineProtocolError('newlines are not allowed in names or tag values')
  return `${escapeMeasurement(measurement)},device=${escapeKey(device)}`
}

function lineWith(row: BufferedReading, key: string): string {
  const { pot, switch: sw, seq, boot, led } = row
  checkInt('pot', pot)
  checkInt('switch', sw)
  checkInt('seq', seq)
  checkInt('boot', boot)
  const hasLed = led !== null && led !== undefined
  if (hasLed) checkInt('led', led)
  return `${key} pot=${pot}i,switch=${sw}i,seq=${seq}i,boot=${boot}i${hasLed ? `,led=${led}i` : ''} ${nsFromUs(row.tsUs)}`
}

/** One encoded reading: its buffer id and its line. */
export interface EncodedLine {
  id: number
  line: string
}

/** Encodes a batch: lines for the rows that can be written, and rejections for those that cannot. */
export function encodeBatch(rows: readonly BufferedReading[], measurement = DEFAULT_MEASUREMENT): {
  ok: EncodedLine[]
  bad: { id: number; reason: string }[]
} {
  const ok: EncodedLine[] = []
  const bad: { id: number; reason: string }[] = []
  // A backlog batch holds thousands of readings from a few devices: escape each series key once.
  const keys = new Map<string, string>()
  for (const row of rows) {
    try {
      let key = keys.get(row.device)
      if (key === undefined) {
        key = seriesKey(measurement, row.device)
        keys.set(row.device, key)
      }
      ok.push({ id: row.id, line: lineWith(row, key) })
    } catch (err) {
      if (!(err instanceof LineProtocolError)) throw err
      bad.push({ id: row.id, reason: `cannot encode as line protocol: ${err.message}` })
    }
  }
  return { ok, bad }
}
