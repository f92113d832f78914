import { parseCli } from '../../common/src/cli-args.js'
import { describeSchema } from '../../common/src/config/env.js'
import { knownSettingNames } from '../../common/src/config/known-names.js'
import { UnknownSettings } from '../../common/src/config/unknown.js'
import { createLogger } from '../../common/src/logger.js'
import { loadOtaServerConfig, otaServerConfigSchema, type OtaServerConfig } from './config.js'
import { startOtaServer } from './server.js'

function help(): string {
  const rows = describeSchema(otaServerConfigSchema)
  const width = Math.max(...rows.map((r) => r.name.length))
  return `usage: ferry ota-server

Serves signed OTA releases over HTTPS to devices holding a client certificate from the Ferry CA.
It holds no release private key: it hands out the envelopes "ferry ota publish" wrote into
FERRY_OTA_DIR. Configuration comes from the environment (and a .env file):

${rows.map((r) => `  ${r.name.padEnd(width)}  ${r.description} [${r.type}; default ${r.default}]`).join('\n')}

Signals: SIGHUP re-reads certificate, key, CA and CRL (the CRL is also re-read when it changes);
SIGINT/SIGTERM stop after in-flight requests. Exit codes: 0 stopped, 1 failed, 2 bad configuration.`
}

/** `ferry ota-server`: runs until SIGINT/SIGTERM. */
export async function run(argv: string[]): Promise<number> {
  const h = help()
  const { help: wantHelp } = parseCli(argv, {}, h, false)
  if (wantHelp) {
    process.stdout.write(h + '\n')
    return 0
  }
  // Misspelt FERRY_ names are reported with the closest known one; both services' names are known
  // (under docker-compose they read the same .env). Logged once the logger exists, else on stderr.
  const unknown = new UnknownSettings(knownSettingNames(), 'ferry ota-server --help')
  let config: OtaServerConfig
  try {
    config = loadOtaServerConfig(process.env, unknown.check)
  } catch (err) {
    throw unknown.explain(err, undefined, 'ferry ota-server')
  }
  const log = createLogger({ name: 'ferry-ota' })
  unknown.logTo(log)
  const server = await startOtaServer(config, { log })
  return new Promise<number>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, 'stopping the OTA server')
      server.close().then(() => resolve(0), (err) => {
        log.error({ err }, 'error while stopping')
        resolve(1)
      })
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGHUP', () => server.reloadTls())
  })
}
