import { Type, type Static } from 'typebox'
import { loadEnv } from '../../common/src/config/env.js'
import { bufferConfigSchema } from './buffer/config.js'
import { drainConfigSchema } from './drain/config.js'
import { ingestConfigSchema, mqttConfigSchema } from './ingest/config.js'

/**
 * The core of the gateway's configuration (process, MQTT, buffer, ingest, drain): each module's schema
 * lives beside the module and is composed here, in the order the generated docs list them; config.ts
 * adds the sinks, the API and the LED commands. The schema is also the documentation: `ferry config`
 * prints it and `npm run docs:config` writes docs/configuration.md and .env.example from it (a test
 * fails when those files are stale).
 */
export const processConfigSchema = Type.Object({
  FERRY_LOG_LEVEL: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info', description: 'Log level (pino): fatal, error, warn, info, debug, trace or silent.' }),
})

export const coreConfigSchema = Type.Object({
  ...processConfigSchema.properties,
  ...mqttConfigSchema.properties,
  ...bufferConfigSchema.properties,
  ...ingestConfigSchema.properties,
  ...drainConfigSchema.properties,
})

export type CoreConfig = Static<typeof coreConfigSchema>

/** Loads and validates; throws ConfigError naming each bad variable. Touches nothing else. */
export function loadCoreConfig(env?: NodeJS.ProcessEnv): CoreConfig {
  return loadEnv<CoreConfig>(coreConfigSchema, { env })
}
