/**
 * Which sinks run, from `FERRY_SINKS`, and the one schema fragment that documents every sink
 * setting for the gateway's composed config (`gateway/src/config.ts`).
 *
 * Only the schemas are imported here; a sink's code is imported when `FERRY_SINKS` names it, so a
 * gateway writing to a file never loads the HTTP client (undici) the cloud sinks use: every module
 * loaded stays in memory for the life of the process (bench/README.md, backlog memory).
 */
import { Type, type Static } from 'typebox'
import { ConfigError } from '../../../common/src/errors.js'
import type { SinkDeps } from './deps.js'
import { fileConfigSchema } from './file/config.js'
import { influxConfigSchema } from './influxdb/config.js'
import { thingspeakConfigSchema } from './thingspeak/config.js'
import type { Sink } from './types.js'

/** Every sink Ferry knows, as written in `FERRY_SINKS`. */
export const SINK_NAMES = ['influxdb', 'thingspeak', 'file'] as const
export type SinkName = (typeof SINK_NAMES)[number]

const NAME = `(${SINK_NAMES.join('|')})`

/** All sink settings: `FERRY_SINKS` plus the InfluxDB, ThingSpeak and file sink schemas. */
export const sinksConfigSchema = Type.Object({
  FERRY_SINKS: Type.String({
    default: 'file',
    pattern: `^\\s*(none|${NAME}\\s*(,\\s*${NAME}\\s*)*)\\s*$`,
    description: `Sinks to deliver to, comma-separated: ${SINK_NAMES.join(', ')}. Each has its own cursor, so one that is down never holds back the others. Default: file (a local line-protocol file) when no cloud sink is configured. "none" only buffers (readings stay until the ring bound drops them).`,
  }),
  ...influxConfigSchema.properties,
  ...thingspeakConfigSchema.properties,
  ...fileConfigSchema.properties,
})

/** Validated sink settings (see `sinksConfigSchema`). */
export type SinksConfig = Static<typeof sinksConfigSchema>

/** `FERRY_SINKS` as a list: trimmed, de-duplicated, in the order given. */
export function parseSinkList(value: string | undefined): SinkName[] {
  const out: SinkName[] = []
  if (value?.trim() === 'none') return out
  for (const raw of (value ?? 'file').split(',')) {
    const name = raw.trim()
    if (!name) continue
    if (!(SINK_NAMES as readonly string[]).includes(name)) {
      throw new ConfigError(`FERRY_SINKS: unknown sink ${JSON.stringify(name)}; use a comma list of ${SINK_NAMES.join(', ')}`)
    }
    if (!out.includes(name as SinkName)) out.push(name as SinkName)
  }
  if (out.length === 0) throw new ConfigError(`FERRY_SINKS is empty; use a comma list of ${SINK_NAMES.join(', ')}, or "none" to buffer only`)
  return out
}

/** Each sink's factory, imported on first use. */
const FACTORIES: Record<SinkName, () => Promise<(config: SinksConfig, deps: SinkDeps) => Sink>> = {
  influxdb: async () => (await import('./influxdb/influxdb.js')).createInfluxSink,
  thingspeak: async () => (await import('./thingspeak/thingspeak.js')).createThingSpeakSink,
  file: async () => (await import('./file/file.js')).createFileSink,
}

/**
 * Builds the configured sinks, in `FERRY_SINKS` order, importing the code of those named only.
 * Checks each sink's own requirements (e.g. InfluxDB v2 needs org, bucket and token) and rejects
 * with a ConfigError naming the variables; nothing connects here. If one sink cannot be built,
 * those already built are closed (in the background, they hold no open connections yet) and the
 * error is thrown.
 */
export async function createSinks(config: SinksConfig, deps: SinkDeps = {}): Promise<Sink[]> {
  const sinks: Sink[] = []
  try {
    for (const name of parseSinkList(config.FERRY_SINKS)) {
      const create = await FACTORIES[name]()
      sinks.push(create(config, deps))
    }
  } catch (err) {
    void Promise.allSettled(sinks.map((s) => s.close()))
    throw err
  }
  return sinks
}
