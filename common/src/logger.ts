import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import { printableJsonText } from './printable.js'

export type { Logger }

/**
 * The one place loggers are made. Levels follow Vector's rule: INFO for lifecycle, DEBUG per batch,
 * WARN when something went wrong and nothing was lost, ERROR when data was lost or someone must act.
 * Components take a child: `log.child({ component: 'drain', sink: 'influxdb' })`.
 */
export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? process.env.FERRY_LOG_LEVEL ?? 'info',
    base: { name: opts.name ?? 'ferry' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Log lines carry device and sink text and end up on a terminal (docker logs, journalctl); pino's
    // JSON escapes C0 but leaves DEL, C1 (U+009B is a CSI) and bidi controls raw (common/src/printable.ts).
    hooks: { streamWrite: printableJsonText },
  }
  return opts.destination ? pino(options, opts.destination as DestinationStream) : pino(options)
}

/** A logger that writes nothing; for tests and for library use without a logger. */
export const silentLogger: Logger = pino({ level: 'silent' })
