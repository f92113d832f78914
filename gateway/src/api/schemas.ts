/**
 * Request and response schemas of the gateway API (TypeBox; Fastify validates requests and
 * serialises responses with them, so a field missing here never leaves the gateway).
 */
import { Type, type TSchema } from 'typebox'
import { COMMAND_STATES } from '../led/store.js'

export const DEVICE_ID_PATTERN = '^[a-z0-9][a-z0-9_-]{0,62}$'

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])
const Ms = (description: string) => Type.Integer({ description })

export const ErrorBody = Type.Object({
  code: Type.String({ description: 'Stable error code, e.g. FERRY_ERR_API_UNAUTHORIZED.' }),
  message: Type.String(),
})

export const DeviceParams = Type.Object({
  id: Type.String({ pattern: DEVICE_ID_PATTERN, description: 'Device id (the CN of its certificate).' }),
})

export const CommandState = Type.Union(
  [Type.Literal('pending'), Type.Literal('published'), Type.Literal('confirmed'), Type.Literal('superseded'), Type.Literal('expired'), Type.Literal('rejected'), Type.Literal('failed')],
  { description: `One of ${COMMAND_STATES.join(', ')} (see gateway/src/led/store.ts).` },
)

export const CommandSummary = Type.Object({
  cmd: Type.String({ description: 'Command id, sent in led/set and echoed in led/state.' }),
  source: Type.Union([Type.Literal('api'), Type.Literal('talkback')]),
  brightness: Nullable(Type.Integer()),
  state: CommandState,
  createdAt: Ms('When the gateway took the command.'),
  expiresAt: Nullable(Type.Integer()),
  confirmedAt: Nullable(Type.Integer()),
  reason: Nullable(Type.String()),
})

export const CommandRecord = Type.Object({
  ...CommandSummary.properties,
  sourceRef: Nullable(Type.String({ description: 'E.g. the TalkBack command id.' })),
  raw: Nullable(Type.String({ description: 'The command as received.' })),
  device: Nullable(Type.String()),
  publishedAt: Nullable(Type.Integer()),
  confirmedBrightness: Nullable(Type.Integer()),
  clearedAt: Nullable(Type.Integer({ description: 'When the expired retained led/set was removed from the broker.' })),
})

export const Reading = Type.Object({
  ts: Ms('Point time (device time if valid, else receive time), ms since the epoch.'),
  boot: Type.Integer(),
  seq: Type.Integer(),
  pot: Type.Integer(),
  switch: Type.Integer(),
  led: Nullable(Type.Integer()),
})

export const Device = Type.Object({
  id: Type.String(),
  lastSeen: Ms('Last message of any kind from the device.'),
  online: Nullable(Type.Boolean({ description: 'From the retained LWT status topic; null when the device never reported one.' })),
  statusAt: Nullable(Type.Integer()),
  lastReading: Nullable(Reading),
  lastReadingAt: Nullable(Type.Integer()),
  led: Nullable(Type.Object({ brightness: Type.Integer(), cmd: Nullable(Type.String()) }, { description: "The device's last led/state report." })),
  ota: Type.Unknown({ description: "The device's last ota/status report, as sent." }),
  lastCommand: Nullable(CommandSummary),
})

export const ReadingsQuery = Type.Object({
  since: Type.Optional(Type.Integer({ minimum: 0, description: 'Only readings with a point time after this (ms since the epoch, exclusive). Default: the last 10 minutes.' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Most readings returned (oldest first), default 1000; `more` says whether more follow.' })),
})

export const LedBody = Type.Object(
  {
    brightness: Type.Integer({ minimum: 0, maximum: 100, description: 'LED brightness in percent.' }),
    ttlMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 604_800_000, description: 'How long the command stays valid; default FERRY_LED_COMMAND_TTL_MS.' })),
  },
  { additionalProperties: false },
)

export const SinkStatus = Type.Object({
  name: Type.String(),
  cursor: Type.Integer(),
  rows: Type.Integer({ description: 'Backlog: readings not yet delivered to this sink.' }),
  oldestAgeMs: Nullable(Type.Integer()),
  sentTotal: Type.Integer(),
  rejectedTotal: Type.Integer(),
  lastOkAt: Nullable(Type.Integer()),
  lastErrorCode: Nullable(Type.String()),
  lastError: Nullable(Type.String()),
  lastErrorAt: Nullable(Type.Integer()),
})

const ErrorAt = Type.Object({ code: Type.String(), message: Type.String(), at: Type.Integer() })

export const TalkBackStatus = Type.Object({
  talkbackId: Type.String(),
  state: Type.String(),
  intervalMs: Type.Integer(),
  polls: Type.Integer(),
  commands: Type.Integer(),
  lastPollAt: Nullable(Type.Integer()),
  lastOkAt: Nullable(Type.Integer()),
  lastCommandAt: Nullable(Type.Integer()),
  lastError: Nullable(Type.Object({ status: Nullable(Type.Integer()), message: Type.String(), at: Type.Integer() })),
})

export const Status = Type.Object({
  buffered: Type.Object({ rows: Type.Integer(), bytes: Type.Integer() }),
  sinks: Type.Array(SinkStatus),
  dropped: Type.Object({ total: Type.Integer(), byDevice: Type.Record(Type.String(), Type.Integer()) }),
  deadLetters: Type.Object({ total: Type.Integer(), bySource: Type.Record(Type.String(), Type.Integer()) }),
  meta: Type.Record(Type.String(), Type.Unknown()),
  gateway: Type.Object({
    startedAt: Type.Integer(),
    brokerConnected: Type.Boolean(),
    diskFull: Nullable(Type.Object({ since: Type.Integer(), error: Type.String() })),
    brokerDropped: Nullable(Type.Integer()),
    lastError: Nullable(ErrorAt),
    recovered: Nullable(Type.Object({ movedTo: Type.String(), error: Type.String(), at: Type.Integer() })),
  }),
  drainers: Type.Array(Type.Object({ name: Type.String(), state: Type.String(), progress: Type.Unknown(), lastError: Type.Unknown() })),
  commands: Type.Object({
    byState: Type.Record(Type.String(), Type.Integer()),
    talkback: Nullable(TalkBackStatus),
  }),
  api: Type.Object({ readOnly: Type.Boolean({ description: 'True when the LED route is not served.' }) }),
})

export const Health = Type.Object({
  ok: Type.Boolean(),
  checks: Type.Object({ database: Type.String(), broker: Type.String() }),
  reasons: Type.Array(Type.String()),
})
