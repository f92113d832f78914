/**
 * `ferry`: one command, one sub-command per part. Each sub-command lives beside the code it drives and
 * exports `run(argv)`, imported lazily so `ferry pki` does not load the gateway's native modules.
 *
 * Exit codes (all sub-commands): 0 success, 1 failure at run time, 2 bad usage or configuration.
 */
import { hasCode } from '../common/src/errors.js'
import { printable } from '../common/src/printable.js'

type Runner = (argv: string[]) => Promise<number>

const commands: Record<string, { summary: string; load: () => Promise<{ run: Runner }> }> = {
  pki: { summary: 'certificate authority for the broker, gateway and devices', load: () => import('../common/src/pki/cli.js') },
  broker: { summary: 'run the system mosquitto with the repo config and a PKI folder', load: () => import('../common/src/broker/cli.js') },
  gateway: { summary: 'ingest MQTT into the SQLite buffer and drain it to the sinks', load: () => import('../gateway/src/cli.js') },
  status: { summary: 'show buffer depth, backlog per sink, drops and errors (read-only)', load: () => import('../gateway/src/status-cli.js') },
  dlq: { summary: 'list or re-queue dead letters', load: () => import('../gateway/src/dlq-cli.js') },
  config: { summary: 'print the configuration reference (every FERRY_* variable)', load: () => import('../gateway/src/config-cli.js') },
  'device-sim': { summary: 'a simulated ESP32 node speaking the device protocol', load: () => import('../device-sim/src/cli.js') },
  'ota-server': { summary: 'serve signed OTA releases over HTTPS to devices with client certificates', load: () => import('../ota-server/src/cli.js') },
  ota: { summary: 'release keys, signing and verification of firmware releases (offline)', load: () => import('../ota-server/src/release-cli.js') },
  demo: { summary: 'the whole native stack with simulated devices', load: () => import('../scripts/demo.js') },
}

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length))
  return [
    'usage: ferry <command> [options]   (ferry <command> --help for details)',
    '',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'exit codes: 0 success, 1 failure, 2 bad usage or configuration',
  ].join('\n')
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n')
    return name ? 0 : 2
  }
  const cmd = commands[name]
  if (!cmd) {
    process.stderr.write(`ferry: unknown command "${name}"\n\n${usage()}\n`)
    return 2
  }
  try {
    return await (await cmd.load()).run(rest)
  } catch (err) {
    const e = err as Error & { code?: string }
    // A message may quote remote text (a sink's answer, a file's content): no control character gets through.
    process.stderr.write(`ferry ${name}: ${printable(e.message, '\n')}\n`)
    return hasCode(err, 'FERRY_ERR_USAGE') || hasCode(err, 'FERRY_ERR_CONFIG') || hasCode(err, 'FERRY_ERR_DEVICE_ID') ? 2 : 1
  }
}
