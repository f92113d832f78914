/**
 * ThingSpeak sink settings. Limits default to a free account (15 s between bulk calls, 960 entries
 * a call); a paid account raises the entry cap to 14,400
 * (docs/cloud-apis.md#thingspeak-rate-limits). TalkBack settings (`FERRY_THINGSPEAK_TALKBACK_*`)
 * belong to the command relay, not to this sink.
 */
import { Type, type Static } from 'typebox'
import { ConfigError } from '../../../../common/src/errors.js'
import { isDeviceId } from '../../../../common/src/ids.js'

export const thingspeakConfigSchema = Type.Object({
  FERRY_THINGSPEAK_URL: Type.String({ default: 'https://api.thingspeak.com', pattern: '^https?://', description: 'ThingSpeak API base URL.' }),
  FERRY_THINGSPEAK_CHANNEL_ID: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'Channel id that receives every device (field1 = pot, field2 = switch, field3 = LED, status = device id). Required unless every device is mapped in FERRY_THINGSPEAK_CHANNELS.' })),
  FERRY_THINGSPEAK_WRITE_KEY: Type.Optional(Type.String({ minLength: 1, secret: true, description: 'Write API key of FERRY_THINGSPEAK_CHANNEL_ID. Secret; no default.' })),
  FERRY_THINGSPEAK_READ_KEY: Type.Optional(Type.String({ minLength: 1, secret: true, description: 'Read API key of FERRY_THINGSPEAK_CHANNEL_ID, needed for a private channel so a restart can read the last entry and skip what the channel already holds.' })),
  FERRY_THINGSPEAK_ON_UNREADABLE: Type.Union([Type.Literal('stop'), Type.Literal('continue')], {
    default: 'stop',
    description: 'What the sink does at start when ThingSpeak will not let it read a channel\'s last entry (answer -1: a private channel without its read key, or a wrong one). stop = stop the sink like a refused write key, readings stay buffered; continue = deliver anyway, but readings sent just before a crash cannot be recognised and may be sent again after it.',
  }),
  FERRY_THINGSPEAK_CHANNELS: Type.Optional(Type.String({
    pattern: '^[a-z0-9][a-z0-9_-]*=[0-9]+:[^,:]+(:[^,:]+)?(,[a-z0-9][a-z0-9_-]*=[0-9]+:[^,:]+(:[^,:]+)?)*$',
    secret: true,
    description: 'One channel per device: comma list of <device>=<channel id>:<write key>[:<read key>]. Devices not listed go to FERRY_THINGSPEAK_CHANNEL_ID. Secret (holds keys).',
  })),
  FERRY_THINGSPEAK_INTERVAL_MS: Type.Integer({ default: 15_000, minimum: 1000, description: 'Least time between two bulk updates of one channel, in ms (ThingSpeak answers 429 to faster calls; 15 s on every account type).' }),
  FERRY_THINGSPEAK_WRITERS: Type.Integer({
    default: 1,
    minimum: 1,
    maximum: 10,
    description: 'How many gateways write to the same ThingSpeak channels: the replicas of a share group (FERRY_MQTT_SHARE_GROUP, docs/scale-out.md). Each keeps FERRY_THINGSPEAK_INTERVAL_MS x this between its bulk updates of a channel, so together they stay within the channel\'s rate. Above 1, a restart skips nothing by the channel\'s last entry (another replica may have written it); a repeated created_at is dropped by ThingSpeak. Each replica aggregates its own share, so raise FERRY_THINGSPEAK_WINDOW_MS by the same factor to keep the yearly message count.',
  }),
  FERRY_THINGSPEAK_MAX_ENTRIES: Type.Integer({ default: 960, minimum: 1, maximum: 14_400, description: 'Most entries in one bulk update: 960 on free accounts, 14,400 on paid ones.' }),
  FERRY_THINGSPEAK_WINDOW_MS: Type.Integer({
    default: 30_000,
    minimum: 1000,
    multipleOf: 1000,
    description: 'Aggregation window per device, in ms (whole seconds). One entry per device per window: last pot, max switch, last LED. Free accounts allow 3,000,000 messages a year (one per 10.5 s): keep it ≥ 2 × 10.5 s × devices per account.',
  }),
  FERRY_THINGSPEAK_QUOTA_RETRY_MS: Type.Integer({ default: 3_600_000, minimum: 1000, description: 'Pause after ThingSpeak answers 402 (yearly message quota spent) before trying again, in ms. Data stays buffered.' }),
  FERRY_THINGSPEAK_TIMEOUT_MS: Type.Integer({ default: 10_000, minimum: 100, description: 'Connect, response-header and body-gap timeout per request, in ms.' }),
  FERRY_THINGSPEAK_BATCH_SIZE: Type.Integer({ default: 5000, minimum: 1, description: 'Most readings the drainer hands over per write (aggregated into entries before sending).' }),
})

/** Validated ThingSpeak settings (see `thingspeakConfigSchema`). */
export type ThingSpeakConfig = Static<typeof thingspeakConfigSchema>

/** Where one device's entries go. */
export interface ChannelTarget {
  channelId: string
  writeKey: string
  readKey?: string
}

/** The device → channel map plus the default channel. Throws ConfigError when nothing is writable. */
export function channelMap(c: ThingSpeakConfig): { byDevice: Map<string, ChannelTarget>; fallback?: ChannelTarget } {
  const byDevice = new Map<string, ChannelTarget>()
  for (const item of (c.FERRY_THINGSPEAK_CHANNELS ?? '').split(',').filter(Boolean)) {
    const m = /^([^=]+)=([0-9]+):([^:]+)(?::(.+))?$/.exec(item.trim())
    if (!m || !isDeviceId(m[1])) throw new ConfigError(`FERRY_THINGSPEAK_CHANNELS: cannot read ${JSON.stringify(item.replace(/:.*/, ':…'))}; use <device>=<channel id>:<write key>[:<read key>]`)
    byDevice.set(m[1] as string, { channelId: m[2] as string, writeKey: m[3] as string, ...(m[4] ? { readKey: m[4] } : {}) })
  }
  let fallback: ChannelTarget | undefined
  if (c.FERRY_THINGSPEAK_CHANNEL_ID) {
    if (!c.FERRY_THINGSPEAK_WRITE_KEY) throw new ConfigError('FERRY_THINGSPEAK_CHANNEL_ID is set but FERRY_THINGSPEAK_WRITE_KEY is not; copy the channel\'s Write API key from ThingSpeak.')
    fallback = { channelId: c.FERRY_THINGSPEAK_CHANNEL_ID, writeKey: c.FERRY_THINGSPEAK_WRITE_KEY, ...(c.FERRY_THINGSPEAK_READ_KEY ? { readKey: c.FERRY_THINGSPEAK_READ_KEY } : {}) }
  }
  if (!fallback && byDevice.size === 0) {
    throw new ConfigError('the ThingSpeak sink needs FERRY_THINGSPEAK_CHANNEL_ID and FERRY_THINGSPEAK_WRITE_KEY (or FERRY_THINGSPEAK_CHANNELS); set them or remove thingspeak from FERRY_SINKS.')
  }
  return { byDevice, ...(fallback ? { fallback } : {}) }
}
