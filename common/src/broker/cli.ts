import { parseCli } from '../cli-args.js'
import { UsageError } from '../errors.js'
import { printable } from '../printable.js'
import { startBroker } from './broker.js'

const HELP = `usage: ferry broker --pki <pki dir> --data <data dir> [--port 8883] [--bind <addr>]

Runs the system mosquitto with the repo's mosquitto/mosquitto.conf, its paths pointed at the PKI
folder (ca.crt, server.crt, server.key, crl.pem) and the data folder (persistence, staged copies of
the certificates readable by the broker's user). Waits until the port accepts connections, then
forwards SIGINT/SIGTERM and SIGHUP (re-copies crl.pem first, so "ferry pki revoke" + SIGHUP takes
effect) and exits with mosquitto's status.

Run as root, mosquitto drops to its own user (mosquitto) before it opens the data folder, so that
user must be able to enter every folder above it; ferry broker checks this first and names the
folder it cannot enter (a folder under /root, mode 0700, is the usual one).`

export async function run(argv: string[]): Promise<number> {
  const { values, help } = parseCli(argv, {
    pki: { type: 'string' },
    data: { type: 'string' },
    port: { type: 'string', default: '8883' },
    bind: { type: 'string' },
  }, HELP, false)
  if (help) {
    process.stdout.write(HELP + '\n')
    return 0
  }
  if (!values.pki || !values.data) throw new UsageError(`--pki and --data are required\n\n${HELP}`)
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port must be 1-65535, got ${values.port}`)
  const broker = await startBroker({
    pkiDir: values.pki,
    dataDir: values.data,
    port,
    bind: values.bind,
    onLog: (line) => process.stderr.write(printable(line) + '\n'), // client ids and topics are the clients' text
  })
  process.stderr.write(`ferry broker: mosquitto (pid ${broker.process.pid}) accepting connections on port ${port}\n`)
  const forward = (sig: NodeJS.Signals) => () => {
    if (sig === 'SIGHUP') void broker.reload()
    else broker.process.kill(sig)
  }
  process.on('SIGINT', forward('SIGINT'))
  process.on('SIGTERM', forward('SIGTERM'))
  process.on('SIGHUP', forward('SIGHUP'))
  const code = await broker.exited
  return code ?? 1
}
