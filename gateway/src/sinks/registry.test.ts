import t from 'tap'
import { join } from 'node:path'
import { loadEnv, describeSchema } from '../../../common/src/config/env.js'
import { tempDir } from '../../../test/helpers/tmp.js'
import { createSinks, parseSinkList, sinksConfigSchema, type SinksConfig } from './registry.js'

const cfg = (env: Record<string, string>): SinksConfig => loadEnv<SinksConfig>(sinksConfigSchema, { env, dotenvPath: '/nonexistent' })

t.test('with nothing configured the file sink is the only sink', async (t) => {
  const c = cfg({ FERRY_FILE_PATH: join(tempDir(t), 'x.lp') })
  t.equal(c.FERRY_SINKS, 'file')
  const sinks = await createSinks(c)
  t.teardown(() => Promise.all(sinks.map((s) => s.close())))
  t.same(sinks.map((s) => s.name), ['file'])
})

t.test('builds the listed sinks in order', async (t) => {
  const sinks = await createSinks(cfg({
    FERRY_SINKS: 'thingspeak, influxdb,file,influxdb',
    FERRY_THINGSPEAK_CHANNEL_ID: '12',
    FERRY_THINGSPEAK_WRITE_KEY: 'K',
    FERRY_FILE_PATH: join(tempDir(t), 'x.lp'),
  }))
  t.teardown(() => Promise.all(sinks.map((s) => s.close())))
  t.same(sinks.map((s) => s.name), ['thingspeak', 'influxdb', 'file'])
  t.same(sinks.map((s) => s.maxBatch), [5000, 5000, 5000])
})

t.test('an unknown sink name is a config error naming FERRY_SINKS', async (t) => {
  t.throws(() => cfg({ FERRY_SINKS: 'influxdb,kafka' }), { code: 'FERRY_ERR_CONFIG', message: /FERRY_SINKS/ })
  t.throws(() => parseSinkList('kafka'), { code: 'FERRY_ERR_CONFIG', message: /unknown sink "kafka"/ })
})

t.test('a sink missing its settings is a config error before anything connects', async (t) => {
  await t.rejects(createSinks(cfg({ FERRY_SINKS: 'file,thingspeak', FERRY_FILE_PATH: join(tempDir(t), 'x.lp') })), { code: 'FERRY_ERR_CONFIG', message: /FERRY_THINGSPEAK_CHANNEL_ID/ })
  await t.rejects(createSinks(cfg({ FERRY_SINKS: 'influxdb', FERRY_INFLUX_VERSION: '2' })), { code: 'FERRY_ERR_CONFIG', message: /FERRY_INFLUX_ORG/ })
})

t.test('the schema documents every setting, uses the design names and gives secrets no default', async (t) => {
  const rows = describeSchema(sinksConfigSchema)
  const names = rows.map((r) => r.name)
  for (const n of ['FERRY_SINKS', 'FERRY_INFLUX_URL', 'FERRY_INFLUX_VERSION', 'FERRY_INFLUX_DB', 'FERRY_INFLUX_ORG', 'FERRY_INFLUX_BUCKET', 'FERRY_INFLUX_TOKEN', 'FERRY_INFLUX_USER', 'FERRY_INFLUX_PASSWORD', 'FERRY_INFLUX_CA', 'FERRY_THINGSPEAK_URL', 'FERRY_THINGSPEAK_CHANNEL_ID', 'FERRY_THINGSPEAK_WRITE_KEY', 'FERRY_FILE_PATH', 'FERRY_FILE_MAX_BYTES', 'FERRY_FILE_KEEP']) {
    t.ok(names.includes(n), n)
  }
  for (const r of rows) {
    t.ok(r.description.length > 10, `${r.name} has a description`)
    t.match(r.name, /^FERRY_(SINKS|INFLUX|THINGSPEAK|FILE)(_[A-Z0-9]+)*$/)
  }
  for (const secret of ['FERRY_INFLUX_TOKEN', 'FERRY_INFLUX_PASSWORD', 'FERRY_THINGSPEAK_WRITE_KEY', 'FERRY_THINGSPEAK_READ_KEY', 'FERRY_THINGSPEAK_CHANNELS']) {
    t.equal(rows.find((r) => r.name === secret)?.default, '(unset)', `${secret} has no default`)
  }
  t.equal(cfg({}).FERRY_THINGSPEAK_URL, 'https://api.thingspeak.com')
  t.equal(cfg({}).FERRY_THINGSPEAK_INTERVAL_MS, 15_000)
  t.equal(cfg({}).FERRY_THINGSPEAK_MAX_ENTRIES, 960)
})
