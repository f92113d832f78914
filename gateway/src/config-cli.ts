import { parseCli } from '../../common/src/cli-args.js'
import { gatewayConfigHelp } from './config.js'

const HELP = `usage: ferry config [--help]

Prints every FERRY_* variable the gateway reads, with its type, default and meaning. The same table
is in docs/configuration.md and .env.example (generated from the one schema by npm run docs:config).`

export async function run(argv: string[]): Promise<number> {
  const { help } = parseCli(argv, {}, HELP, false)
  process.stdout.write(help ? `${HELP}\n` : `${gatewayConfigHelp()}\n`)
  return 0
}
