// `ferry gateway` loads only the parts its configuration uses (gateway/src/cli.ts `loadParts`): every
// module it imports stays in memory for the life of the process, and on a Pi the HTTP API's fastify
// or the cloud sinks' undici are megabytes a file-only gateway would carry for nothing. Each case runs
// the real gateway against a real broker, with a preload that records every module it loads.
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTestBroker, type TestBroker } from '../helpers/mosquitto.js'
import { gatewayEnv } from '../helpers/gateway.js'
import { freePort } from '../helpers/ports.js'
import { start } from '../helpers/process.js'
import { tempDir } from '../helpers/tmp.js'

const ROOT = join(import.meta.dirname, '..', '..')

/** Optional parts: a module of each that only that part loads. */
const PARTS = {
  fastify: /\/node_modules\/fastify\//,
  undici: /\/node_modules\/undici\//,
  api: /\/gateway\/src\/api\/main\.[jt]s$/,
  talkback: /\/gateway\/src\/led\/talkback\.[jt]s$/,
  otaLink: /\/gateway\/src\/ota\/link\.[jt]s$/,
  fileSink: /\/gateway\/src\/sinks\/file\/file\.[jt]s$/,
  influxSink: /\/gateway\/src\/sinks\/influxdb\/influxdb\.[jt]s$/,
  thingspeakSink: /\/gateway\/src\/sinks\/thingspeak\/thingspeak\.[jt]s$/,
}
type Part = keyof typeof PARTS

/**
 * Runs `ferry gateway` with `extra` settings until it is connected to the broker (and, when `ready`
 * is given, has logged a line matching it), stops it, and returns the parts whose modules it loaded.
 */
async function partsLoaded(t: Test, broker: TestBroker, extra: Record<string, string>, ready?: RegExp): Promise<Part[]> {
  const dir = tempDir(t)
  const list = join(dir, 'modules.txt')
  const gw = start(t, process.execPath, ['--import', join(ROOT, 'test/helpers/loaded-modules.mjs'), '--import', 'tsx', join(ROOT, 'cli/main.ts'), 'gateway'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOADED_MODULES_FILE: list, ...gatewayEnv(broker, dir, { FERRY_FILE_PATH: join(dir, 'out.lp'), ...extra }) },
  })
  await gw.waitFor(/gateway started/, 60_000)
  await gw.waitFor(/connected to the broker/, 30_000)
  if (ready) await gw.waitFor(ready, 30_000)
  await gw.stop()
  t.equal((await gw.exited).code, 0, 'the gateway stopped cleanly')
  const modules = readFileSync(list, 'utf8').split('\n')
  return (Object.keys(PARTS) as Part[]).filter((p) => modules.some((m) => PARTS[p].test(m)))
}

t.test('ferry gateway loads only the parts its configuration uses', async (t) => {
  const broker = await startTestBroker(t, { devices: ['dev1'] })
  // Nothing listens on it: the cloud parts may try and fail, which changes nothing about what they load.
  const nowhere = `127.0.0.1:${await freePort()}`

  t.test('file sink, no API: neither fastify nor undici', async (t) => {
    t.same(await partsLoaded(t, broker, { FERRY_SINKS: 'file', FERRY_HTTP_PORT: '0' }), ['fileSink'])
  })

  t.test('InfluxDB sink: its code and undici, still no fastify', async (t) => {
    t.same(await partsLoaded(t, broker, { FERRY_SINKS: 'influxdb', FERRY_INFLUX_URL: `http://${nowhere}`, FERRY_INFLUX_DB: 'ferry', FERRY_HTTP_PORT: '0' }), ['undici', 'influxSink'])
  })

  t.test('API, TalkBack and the OTA link when configured, and no sink with FERRY_SINKS=none', async (t) => {
    const parts = await partsLoaded(
      t,
      broker,
      {
        FERRY_SINKS: 'none',
        FERRY_HTTP_PORT: String(await freePort()),
        FERRY_API_READ_ONLY: 'true',
        FERRY_THINGSPEAK_URL: `http://${nowhere}`,
        FERRY_THINGSPEAK_TALKBACK_ID: '1',
        FERRY_THINGSPEAK_TALKBACK_KEY: 'K',
        FERRY_OTA_URL: `https://${nowhere}`,
      },
      /HTTP API and dashboard listening/,
    )
    t.same(parts, ['fastify', 'undici', 'api', 'talkback', 'otaLink'])
  })
})
