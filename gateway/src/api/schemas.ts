/**
 * Request and response schemas of the gateway API (TypeBox; Fastify validates requests and
 * serialises responses with them, so a field missing here never leaves the gateway).
 */
import { Type, type TSchema } from 'typebox'
import { COMMAND_STATES } from '../led/store.js'
import { RolloutStatusSchema } from '../../../ota-server/src/rollout/status.js'

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
  drainEtaS: Nullable(Type.Integer({ description: 'Estimated seconds until the backlog is delivered, at the sink\'s send rate minus the ingest rate; 0 with no backlog; null while it is not shrinking (sink failing, no rate yet, or slower than ingest).' })),
})

const PerDevice = Type.Object({ total: Type.Integer(), byDevice: Type.Record(Type.String(), Type.Integer()) })

export const Runway = Type.Object(
  {
    onFull: Type.Union([Type.Literal('drop-oldest'), Type.Literal('backpressure')], { description: 'FERRY_BUFFER_ON_FULL: what happens when the runway ends.' }),
    ingestPerS: Type.Number({ description: 'Readings committed per second, recently (EWMA, 5 min time constant).' }),
    freeRows: Type.Integer({ description: 'Readings that still fit before undelivered readings reach FERRY_BUFFER_MAX_ROWS.' }),
    freeBytes: Type.Integer({ description: 'Payload bytes that still fit before undelivered readings reach FERRY_BUFFER_MAX_BYTES (estimated from the average payload).' }),
    seconds: Nullable(Type.Integer({ description: 'Free room divided by the ingest rate; 0 while paused by backpressure; null when nothing comes in.' })),
  },
  { description: 'How long the buffer can absorb the current ingest rate before it must drop (or push back).' },
)

export const IngestPaused = Type.Object(
  {
    reason: Type.Union([Type.Literal('disk-full'), Type.Literal('backpressure')]),
    code: Type.String({ description: 'FERRY_ERR_BUFFER_FULL_DISK or FERRY_ERR_BUFFER_BACKPRESSURE (docs/errors.md).' }),
    since: Type.Integer(),
    error: Type.String({ description: 'What the refused or failed commit said.' }),
  },
  { description: 'Set while ingest is paused: disconnected from the broker, nothing acknowledged; it resumes by itself.' },
)

export const DeadLetterStatus = Type.Object({
  total: Type.Integer({ description: 'Dead letters not requeued.' }),
  bySource: Type.Record(Type.String(), Type.Integer(), { description: 'Dead letters not requeued, by source: ingest or sink:<name>.' }),
  held: Type.Object({ rows: Type.Integer(), bytes: Type.Integer() }, { description: 'Every dead letter kept, requeued ones too, and its bytes (payload, reason, topic): what counts against FERRY_DEADLETTER_MAX_ROWS and FERRY_DEADLETTER_MAX_BYTES.' }),
  limits: Nullable(
    Type.Object({ maxRows: Type.Integer(), maxBytes: Type.Integer(), deviceMaxRows: Type.Integer(), deviceMaxBytes: Type.Integer(), maxPayloadBytes: Type.Integer() }, {
      description: 'The bound: total rows and bytes, the share of one device (FERRY_DEADLETTER_DEVICE_SHARE), and the longest payload kept. Null when the gateway never wrote it (ferry status on an old file).',
    }),
  ),
  discarded: Type.Object(
    { total: Type.Integer(), byDevice: Type.Record(Type.String(), Type.Integer()), byReason: Type.Record(Type.String(), Type.Integer()) },
    { description: 'Dead letters not kept, per device ("-": none named) and per reason: over-share (never stored) or evicted (deleted, oldest first, for the total cap). Survive restarts.' },
  ),
})

export const RetiredSinkStatus = Type.Object(
  {
    name: Type.String(),
    retiredAt: Type.Integer({ description: 'When the gateway started without this sink in FERRY_SINKS (ms since the epoch).' }),
    cursor: Type.Integer(),
    sentTotal: Type.Integer(),
    rejectedTotal: Type.Integer(),
    lastOkAt: Nullable(Type.Integer()),
  },
  { description: 'A sink no longer configured: it holds no readings in the buffer; added back, it resumes from its cursor if what follows is still buffered, else from the oldest buffered reading.' },
)

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

/** The link to the OTA server (gateway/src/ota/link.ts); null on /api/status without FERRY_OTA_URL. */
export const OtaLinkStatus = Type.Object(
  {
    url: Type.String(),
    lastSyncAt: Nullable(Type.Integer()),
    lastOkAt: Nullable(Type.Integer()),
    lastError: Nullable(Type.Object({ message: Type.String(), at: Type.Integer() })),
    forwarded: Type.Integer({ description: 'ota/status reports forwarded since the gateway started.' }),
    cursor: Type.Integer({ description: 'The last device event id the OTA server accepted.' }),
    rollouts: Type.Array(RolloutStatusSchema, { description: 'GET /ota/rollouts as the OTA server last answered (ota-server/src/rollout/status.ts).' }),
    rolloutsAt: Nullable(Type.Integer({ description: 'When `rollouts` was read (ms since the epoch).' })),
    halted: Type.Array(Type.String(), { description: 'The deployments the OTA server has halted.' }),
  },
  { description: 'The OTA server link (FERRY_OTA_URL): forwarding of ota/status reports and the staged rollouts, halts above all (docs/ota-rollouts.md).' },
)

export const Status = Type.Object({
  buffered: Type.Object({ rows: Type.Integer(), bytes: Type.Integer() }),
  sinks: Type.Array(SinkStatus),
  retiredSinks: Type.Array(RetiredSinkStatus),
  dropped: PerDevice,
  expired: Type.Object({ ...PerDevice.properties }, { description: 'Undelivered readings removed for their age (FERRY_BUFFER_MAX_AGE), per device.' }),
  runway: Nullable(Runway),
  deadLetters: DeadLetterStatus,
  meta: Type.Record(Type.String(), Type.Unknown()),
  gateway: Type.Object({
    startedAt: Type.Integer(),
    brokerConnected: Type.Boolean(),
    ingestPaused: Nullable(IngestPaused),
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
  ota: Nullable(OtaLinkStatus),
})

export const Health = Type.Object({
  ok: Type.Boolean(),
  checks: Type.Object({ database: Type.String(), broker: Type.String(), drainers: Type.String() }),
  reasons: Type.Array(Type.String()),
})

/** Which part of the site a gateway sees: all of it, or one replica's share (docs/scale-out.md). */
export const DeviceScope = Type.Object({
  gateway: Type.Union([Type.Literal('single'), Type.Literal('replica')]),
  group: Type.Optional(Type.String()),
  replica: Type.Optional(Type.String()),
  note: Type.String(),
})
