import t from 'tap'
import { ConfigError, FerryError } from '../errors.js'
import { closestNames, editDistance, findUnknownSettings, UnknownSettings } from './unknown.js'

t.test('editDistance counts insertions, deletions, substitutions and adjacent swaps as one edit each', async (t) => {
  t.equal(editDistance('', ''), 0)
  t.equal(editDistance('', 'abc'), 3)
  t.equal(editDistance('abc', ''), 3)
  t.equal(editDistance('FERRY_SINKS', 'FERRY_SINKS'), 0)
  t.equal(editDistance('FERRY_SINKZ', 'FERRY_SINKS'), 1, 'substitution')
  t.equal(editDistance('FERRY_SINK', 'FERRY_SINKS'), 1, 'insertion')
  t.equal(editDistance('FERRY_SNIKS', 'FERRY_SINKS'), 1, 'adjacent swap')
  t.equal(editDistance('kitten', 'sitting'), 3)
  t.equal(editDistance('ca', 'abc'), 3, 'optimal string alignment: a swapped pair is not edited again')
})

t.test('closestNames suggests only close names, case-insensitively, all of a tie', async (t) => {
  const known = ['FERRY_SINKS', 'FERRY_DB', 'FERRY_API_TOKEN', 'FERRY_OTA_KEY', 'FERRY_MQTT_KEY']
  t.same(closestNames('FERRY_SINKZ', known), ['FERRY_SINKS'])
  t.same(closestNames('FERRY_sinks', known), ['FERRY_SINKS'], 'case only')
  t.same(closestNames('FERRY_API_KEY', known), ['FERRY_API_TOKEN', 'FERRY_OTA_KEY'], 'a tie names both, alphabetically')
  t.same(closestNames('FERRY_FROBNICATE', known), [], 'nothing within max(2, length / 4) edits')
  t.same(closestNames('FERRY_DBX', known), ['FERRY_DB'])
  t.same(closestNames('FERRY_XYZ', known), [], '3 edits from FERRY_DB is over the limit of 2 for a short name')
})

t.test('findUnknownSettings keeps only unknown FERRY_ names and says where each was set', async (t) => {
  const found = findUnknownSettings(
    [
      { label: 'the environment', names: ['PATH', 'FERRY_DB', 'FERRY_SINKZ'] },
      { label: 'ferry.env', names: ['FERRY_SINKZ', 'FERRY_NOPE_NOPE_NOPE'] },
    ],
    new Set(['FERRY_DB', 'FERRY_SINKS']),
    'ferry ota-server --help',
  )
  t.same(found.map((u) => u.message), [
    'unknown setting FERRY_SINKZ (from the environment and ferry.env) ignored; did you mean FERRY_SINKS?',
    'unknown setting FERRY_NOPE_NOPE_NOPE (from ferry.env) ignored; "ferry ota-server --help" lists the known settings',
  ])
})

/** An UnknownSettings that has seen FERRY_THINGSPEAK_WRITEKEY and FERRY_SINKZ. */
function withTypos(): UnknownSettings {
  const u = new UnknownSettings(['FERRY_THINGSPEAK_WRITE_KEY', 'FERRY_THINGSPEAK_CHANNEL_ID', 'FERRY_SINKS'])
  for (const s of findUnknownSettings([{ label: 'the environment', names: ['FERRY_THINGSPEAK_WRITEKEY', 'FERRY_SINKZ'] }], new Set(u.check.known))) u.check.report(s)
  return u
}

function captureStderr(t: { teardown(fn: () => void): void }): string[] {
  const lines: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk))
    return true
  }) as typeof process.stderr.write
  t.teardown(() => {
    process.stderr.write = write
  })
  return lines
}

t.test('explain: a ConfigError about a setting that is not set names its set-but-unknown look-alike', async (t) => {
  const stderr = captureStderr(t)
  const u = withTypos()
  const err = new ConfigError("FERRY_THINGSPEAK_CHANNEL_ID is set but FERRY_THINGSPEAK_WRITE_KEY is not; copy the channel's Write API key from ThingSpeak.")
  const set = new Set(['FERRY_THINGSPEAK_CHANNEL_ID', 'FERRY_SINKS'])
  const out = u.explain(err, (n) => set.has(n), 'ferry gateway') as ConfigError
  t.equal(out.code, 'FERRY_ERR_CONFIG')
  t.equal(out.cause, err)
  t.equal(
    out.message,
    "FERRY_THINGSPEAK_CHANNEL_ID is set but FERRY_THINGSPEAK_WRITE_KEY is not; copy the channel's Write API key from ThingSpeak. " +
      'FERRY_THINGSPEAK_WRITE_KEY is not set. Did you mean it as FERRY_THINGSPEAK_WRITEKEY, which is set but unknown?',
  )
  t.same(stderr, [
    'ferry gateway: warning: unknown setting FERRY_THINGSPEAK_WRITEKEY (from the environment) ignored; did you mean FERRY_THINGSPEAK_WRITE_KEY?\n',
    'ferry gateway: warning: unknown setting FERRY_SINKZ (from the environment) ignored; did you mean FERRY_SINKS?\n',
  ], 'no logger took the warnings, so they went to stderr')
  u.explain(err, (n) => set.has(n))
  t.equal(stderr.length, 2, 'written once only')
})

t.test('explain leaves other errors, set settings and errors without names alone', async (t) => {
  captureStderr(t)
  const u = withTypos()
  const about = new ConfigError('FERRY_THINGSPEAK_WRITE_KEY: cannot use it')
  t.equal(u.explain(about, () => true), about, 'the setting is set: no hint')
  t.equal(u.explain(about), about, 'nothing known about what is set: no hint')
  const other = new FerryError('FERRY_ERR_PKI', 'FERRY_THINGSPEAK_WRITE_KEY')
  t.equal(u.explain(other, () => false), other, 'not a configuration error')
  const mentioned = new ConfigError('FERRY_THINGSPEAK_WRITE_KEY is not set; FERRY_THINGSPEAK_WRITEKEY is not a setting')
  t.equal(u.explain(mentioned, () => false), mentioned, 'the error already names the look-alike')
})

t.test('logTo logs every report as a warning with its fields, and then explain writes nothing to stderr', async (t) => {
  const stderr = captureStderr(t)
  const u = withTypos()
  const logged: [object, string][] = []
  u.logTo({ warn: ((obj: object, msg: string) => logged.push([obj, msg])) as never })
  t.same(logged, [
    [{ setting: 'FERRY_THINGSPEAK_WRITEKEY', sources: ['the environment'], suggestions: ['FERRY_THINGSPEAK_WRITE_KEY'] }, 'unknown setting FERRY_THINGSPEAK_WRITEKEY (from the environment) ignored; did you mean FERRY_THINGSPEAK_WRITE_KEY?'],
    [{ setting: 'FERRY_SINKZ', sources: ['the environment'], suggestions: ['FERRY_SINKS'] }, 'unknown setting FERRY_SINKZ (from the environment) ignored; did you mean FERRY_SINKS?'],
  ])
  u.explain(new ConfigError('boom'))
  t.same(stderr, [])
})
