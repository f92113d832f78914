import { parseCli } from '../../common/src/cli-args.js'
import { knownSettingNames } from '../../common/src/config/known-names.js'
import { UnknownSettings } from '../../common/src/config/unknown.js'
import { createLogger, type Logger } from '../../common/src/logger.js'
import { loadGatewayConfig, gatewayConfigHelp, type GatewayConfig } from './config.js'
import { startGateway, type OtaLinkFactory } from './gateway.js'
import { createSinks } from './sinks/registry.js'
import { apiMode, type ApiMode } from './api/config.js'
import { talkbackSettings, type TalkBackSettings } from './led/config.js'
import { loadTalkBack } from './led/index.js'
import { otaLinkSettings } from './ota/config.js'

const HELP = `usage: ferry gateway [--env-file <path>]

Runs the gateway: MQTT ingest (mutual TLS, persistent session, ack after commit) into the SQLite ring
buffer, one drainer per configured sink, and the HTTP API/dashboard. Configured by FERRY_* variables
(and a dotenv file, default ./.env); "ferry config" lists them all.

Signals: SIGTERM/SIGINT stop taking messages, commit and acknowledge what is pending, disconnect and
exit 0 within 5 seconds.
One gateway per buffer database: a second one on the same FERRY_DB exits 1, naming the first.
Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration.`

export async function run(argv: string[]): Promise<number> {
  const { values, help } = parseCli(argv, { 'env-file': { type: 'string' } }, HELP, false)
  if (help) {
    process.stdout.write(`${HELP}\n\n${gatewayConfigHelp()}\n`)
    return 0
  }
  // Config first: a bad value stops here, before the buffer or the network is touched.
  const { config, log, parts } = await configure(values['env-file'])
  const gw = startGateway(config, { log, sinks: parts.sinks, talkback: parts.talkback, ota: parts.ota })
  const api = await parts.startApi?.(config, { gateway: gw, log, ...(gw.talkback ? { talkback: gw.talkback } : {}) })

  return new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: string) => {
      if (stopping) return
      stopping = true
      log.info({ signal }, 'stopping')
      // Hard limit: whatever happens, exit within 5 s.
      setTimeout(() => {
        log.error('shutdown took longer than 4.5 s; exiting anyway (unacknowledged messages stay with the broker)')
        resolve(1)
      }, 4500).unref()
      void (async () => {
        await api?.close()
        await gw.stop()
        resolve(0)
      })().catch((err) => {
        log.error({ err }, 'error while stopping')
        resolve(1)
      })
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
}

/**
 * Reads and checks the configuration, then makes the logger and loads the parts it uses (the sinks
 * check their own settings). A misspelt FERRY_ name is logged as a warning with the closest known
 * name; if start-up stops here instead, the warning goes to stderr and the error names the look-alike
 * of a missing setting.
 */
async function configure(envFile: string | undefined) {
  // Both services' names are known: under docker-compose they read the same .env.
  const unknown = new UnknownSettings(knownSettingNames())
  let config: GatewayConfig | undefined
  try {
    config = loadGatewayConfig(process.env, envFile, unknown.check)
    const api = apiMode(config) // a state-changing API without a token stops here, before the buffer is opened
    const talkback = talkbackSettings(config)
    const log = createLogger({ level: config.FERRY_LOG_LEVEL, name: 'ferry-gateway' })
    unknown.logTo(log)
    return { config, log, parts: await loadParts(config, { api, talkback, log }) }
  } catch (err) {
    const set = config as Record<string, unknown> | undefined
    throw unknown.explain(err, set && ((name) => set[name] !== undefined), 'ferry gateway')
  }
}

/**
 * The one place that decides which optional parts of the gateway are loaded: the HTTP API and
 * dashboard (FERRY_HTTP_PORT not 0), TalkBack polling (FERRY_THINGSPEAK_TALKBACK_ID), the link to the
 * OTA server (FERRY_OTA_URL) and each sink FERRY_SINKS names. A part the configuration does not use is
 * never imported: its code and libraries (fastify, undici, …) would stay in memory for the life of the
 * process, on a Pi with little of it (bench/README.md, backlog memory; test/e2e/gateway-lazy-load.test.ts).
 */
async function loadParts(config: GatewayConfig, use: { api: ApiMode; talkback: TalkBackSettings | undefined; log: Logger }) {
  const ota = otaLinkSettings(config)
  const startApi = use.api.kind === 'off' ? undefined : (await import('./api/main.js')).startApi
  const talkback = use.talkback && (await loadTalkBack(use.talkback))
  let otaLink: OtaLinkFactory | undefined
  if (ota) {
    const { OtaLink } = await import('./ota/link.js')
    otaLink = (deps) => new OtaLink({ ...ota, ...deps })
  }
  // Each sink checks its own settings as it is made (a ConfigError naming them), before anything is opened.
  const sinks = await createSinks(config, { log: use.log })
  return { startApi, talkback, ota: otaLink, sinks }
}
