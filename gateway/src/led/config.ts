/**
 * LED command settings: the ThingSpeak TalkBack poller and the lifetime of a command.
 *
 * The TalkBack base URL is `FERRY_THINGSPEAK_URL`, defined with the ThingSpeak sink
 * (`sinks/thingspeak/config.ts`, default https://api.thingspeak.com), so one setting points both
 * at the same service (or at a fake in tests).
 */
import { Type, type Static } from 'typebox'
import { ConfigError } from '../../../common/src/errors.js'

/** Default ThingSpeak API base when the sink schema is not composed (it defines the same default). */
export const DEFAULT_THINGSPEAK_URL = 'https://api.thingspeak.com'

export const commandsConfigSchema = Type.Object({
  FERRY_THINGSPEAK_TALKBACK_ID: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'TalkBack id whose queue carries LED commands from the cloud ("80", "LED=80" or {"device","brightness"}). Unset: no polling.' })),
  FERRY_THINGSPEAK_TALKBACK_KEY: Type.Optional(Type.String({ minLength: 1, secret: true, description: 'API key of that TalkBack (not the channel key). Secret; no default.' })),
  FERRY_TALKBACK_POLL_MS: Type.Integer({
    default: 15_000,
    minimum: 1000,
    // ThingSpeak documents no separate limit for TalkBack execute calls
    // (docs/cloud-apis.md#thingspeak-talkback); 15 s is the spacing ThingSpeak asks between bulk
    // calls on every account type (and the free channel update interval,
    // docs/cloud-apis.md#thingspeak-rate-limits), the most conservative documented figure.
    description: 'How often the TalkBack queue is asked for its next command, in ms. Slower on errors (doubling, honouring Retry-After); paused while the broker is unreachable so commands stay queued in the cloud.',
  }),
  FERRY_TALKBACK_DEFAULT_DEVICE: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$', description: 'Device that a TalkBack command without a device ("80", "LED=80") addresses. Unset: such commands are rejected and recorded.' })),
  FERRY_LED_COMMAND_TTL_MS: Type.Integer({
    default: 300_000,
    minimum: 1000,
    maximum: 604_800_000,
    description: 'How long an LED command stays valid, in ms (from its TalkBack creation time, or from when the API took it). Expired commands are not delivered and their retained led/set is removed.',
  }),
})

export type CommandsConfig = Static<typeof commandsConfigSchema>

/** What the TalkBack poller needs, or undefined when TalkBack is not configured. */
export interface TalkBackSettings {
  baseUrl: string
  talkbackId: string
  apiKey: string
  intervalMs: number
  defaultDevice?: string
  ttlMs: number
}

/** Reads the TalkBack settings; a half-configured TalkBack (id without key) is a ConfigError. */
export function talkbackSettings(c: CommandsConfig & { FERRY_THINGSPEAK_URL?: string }): TalkBackSettings | undefined {
  const id = c.FERRY_THINGSPEAK_TALKBACK_ID
  const key = c.FERRY_THINGSPEAK_TALKBACK_KEY
  if (!id && !key) return undefined
  if (!id || !key) {
    throw new ConfigError(
      `${id ? 'FERRY_THINGSPEAK_TALKBACK_KEY' : 'FERRY_THINGSPEAK_TALKBACK_ID'} is not set but ${id ? 'FERRY_THINGSPEAK_TALKBACK_ID' : 'FERRY_THINGSPEAK_TALKBACK_KEY'} is; set both (TalkBack id and its API key from ThingSpeak) or neither.`,
    )
  }
  return {
    baseUrl: (c.FERRY_THINGSPEAK_URL ?? DEFAULT_THINGSPEAK_URL).replace(/\/+$/, ''),
    talkbackId: id,
    apiKey: key,
    intervalMs: c.FERRY_TALKBACK_POLL_MS,
    ...(c.FERRY_TALKBACK_DEFAULT_DEVICE ? { defaultDevice: c.FERRY_TALKBACK_DEFAULT_DEVICE } : {}),
    ttlMs: c.FERRY_LED_COMMAND_TTL_MS,
  }
}
