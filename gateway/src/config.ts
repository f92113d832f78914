import { Type, type Static } from 'typebox'
import { describeSchema, loadEnv } from '../../common/src/config/env.js'
import type { UnknownCheck } from '../../common/src/config/unknown.js'
import { coreConfigSchema } from './core-config.js'
import { sinksConfigSchema } from './sinks/registry.js'
import { apiConfigSchema } from './api/config.js'
import { commandsConfigSchema } from './led/config.js'
import { otaLinkConfigSchema } from './ota/config.js'

/** Everything `ferry gateway` reads: core (MQTT, buffer, ingest, drain), every sink, the HTTP API, LED commands, the OTA server link. */
export const gatewayConfigSchema = Type.Object({
  ...coreConfigSchema.properties,
  ...sinksConfigSchema.properties,
  ...apiConfigSchema.properties,
  ...commandsConfigSchema.properties,
  ...otaLinkConfigSchema.properties,
})

export type GatewayConfig = Static<typeof gatewayConfigSchema>

/** `unknown`: report misspelt FERRY_ names (see LoadEnvOptions); `ferry gateway` turns it on. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env, dotenvPath?: string, unknown?: UnknownCheck): GatewayConfig {
  return loadEnv<GatewayConfig>(gatewayConfigSchema, { env, dotenvPath, unknown })
}

/** The configuration table as plain text, for --help. */
export function gatewayConfigHelp(): string {
  return describeSchema(gatewayConfigSchema)
    .map((r) => `  ${r.name}  [${r.type.replaceAll('\\|', '|')}] default: ${r.default}\n      ${r.description}`)
    .join('\n')
}
