/**
 * InfluxDB line protocol for a buffered reading, as fixed by the design:
 *
 *   telemetry,device=<id> pot=<n>i,switch=<n>i,seq=<n>i,boot=<n>i[,led=<n>i] <ns>
 *
 * Escaping follows the line protocol reference (docs/cloud-apis.md#line-protocol): measurement
 * escapes comma and space; tag keys, tag values and field keys escape comma, equals sign and space.
 * All fields are signed integers (`i`): InfluxDB 1.x rejects the unsigned `u` suffix unless built
 * with uint support. The timestamp is `tsUs × 1000` in nanoseconds, computed with BigInt so no
 * float rounding can move a point (2^53 ns is only ~104 days; µs × 1000 exceeds it for any real
 * date).
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

/** `name=<v>i`. Field names here are fixed identifiers that need no escaping. */
function int(name: string, v: unknown): string {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new LineProtocolError(`field ${name} must be an integer, got ${JSON.stringify(v)}`)
  }
  return `${name}=${v}i`
}

/** `tsUs` (µs since the epoch) as an exact nanosecond integer string. */
export function nsFromUs(tsUs: number): string {
  if (!Number.isSafeInteger(tsUs)) throw new LineProtocolError(`timestamp must be an integer number of microseconds, got ${tsUs}`)
  return (BigInt(tsUs) * 1000n).toString()
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
  const led = row.led !== null && row.led !== undefined ? `,${int('led', row.led)}` : ''
  return `${key} ${int('pot', row.pot)},${int('switch', row.switch)},${int('seq', row.seq)},${int('boot', row.boot)}${led} ${nsFromUs(row.tsUs)}`
}

/** Encodes a batch: lines for the rows that can be written, and rejections for those that cannot. */
export function encodeBatch(rows: readonly BufferedReading[], measurement = DEFAULT_MEASUREMENT): {
  ok: { row: BufferedReading; line: string }[]
  bad: { id: number; reason: string }[]
} {
  const ok: { row: BufferedReading; line: string }[] = []
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
      ok.push({ row, line: lineWith(row, key) })
    } catch (err) {
      if (!(err instanceof LineProtocolError)) throw err
      bad.push({ id: row.id, reason: `cannot encode as line protocol: ${err.message}` })
    }
  }
  return { ok, bad }
}
