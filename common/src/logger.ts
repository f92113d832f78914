import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'

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
  }
  return opts.destination ? pino(options, opts.destination as DestinationStream) : pino(options)
}

/** A logger that writes nothing; for tests and for library use without a logger. */
export const silentLogger: Logger = pino({ level: 'silent' })
