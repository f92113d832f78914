import { parseCli } from '../cli-args.js'
import { UsageError } from '../errors.js'
import { GATEWAY_REPLICA_MAX, isGatewayReplicaNumber } from '../ids.js'
import { initPki, issueDevice, issueGatewayReplica, issueServer, listPki, refreshCrl, revokeDevice } from './pki.js'

const HELP = `usage: ferry pki <action> --dir <pki dir> [options]

actions:
  init                 new CA (ca.crt, ca.key), empty crl.pem, gateway client cert (gateway.crt/.key)
  server               broker/OTA server cert (server.crt/.key); SANs from --host and --ip
  device <id>          device client cert devices/<id>.crt/.key with CN=<id>
  gateway <n>          gateway replica n (1-9) client cert gateway-<n>.crt/.key with CN=ferry-gateway-<n>,
                       for scale-out (docs/scale-out.md); the shipped ACL gives it the gateway's rights
  revoke <id>          add the certificate of device <id>, ferry-gateway or ferry-gateway-<n> to crl.pem
                       (SIGHUP the broker to apply)
  crl                  re-sign crl.pem with a fresh nextUpdate (do this before it expires)
  list                 every certificate: subject, serial, expiry, revoked; warns within 30 days

options:
  --dir <d>            PKI folder (required)
  --host <name>        DNS SAN for "server" (repeatable; default localhost)
  --ip <addr>          IP SAN for "server" (repeatable; default 127.0.0.1 and ::1 when no --host)
  --days <n>           validity in days (default: CA 3650, others 730)
  --force              replace an existing CA or certificate
  --json               "list" as JSON

Keys are written with mode 0600. Device ids match ^[a-z0-9][a-z0-9_-]{0,62}$; ids beginning
with ferry-gateway are reserved for the gateway and its replicas.`

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseCli(argv, {
    dir: { type: 'string' },
    host: { type: 'string', multiple: true },
    ip: { type: 'string', multiple: true },
    days: { type: 'string' },
    force: { type: 'boolean' },
    json: { type: 'boolean' },
  }, HELP)
  if (help) {
    process.stdout.write(HELP + '\n')
    return 0
  }
  const [action, id] = positionals
  const dir = values.dir
  if (!action) throw new UsageError(`missing action\n\n${HELP}`)
  if (!dir) throw new UsageError('--dir <pki dir> is required')
  const days = values.days === undefined ? undefined : Number(values.days)
  if (days !== undefined && !(Number.isInteger(days) && days > 0)) throw new UsageError(`--days must be a positive integer, got ${values.days}`)
  const needId = () => {
    if (!id) throw new UsageError(`"ferry pki ${action}" needs a device id`)
    return id
  }
  switch (action) {
    case 'init': {
      const r = await initPki(dir, { days, force: values.force })
      process.stdout.write(`CA written to ${r.caCert}; gateway certificate ${r.gatewayCert}\n`)
      return 0
    }
    case 'server': {
      const r = await issueServer(dir, { days, hosts: values.host, ips: values.ip, force: values.force })
      process.stdout.write(`server certificate written to ${r.cert}\n`)
      return 0
    }
    case 'device': {
      const r = await issueDevice(dir, needId(), { days, force: values.force })
      process.stdout.write(`device certificate written to ${r.cert} (serial ${r.serial})\n`)
      return 0
    }
    case 'gateway': {
      // Digits only, no leading zero: "01", "1.0" or "0x1" would become replica 1 through Number().
      if (!id || !/^[1-9][0-9]*$/.test(id) || !isGatewayReplicaNumber(Number(id))) {
        throw new UsageError(`"ferry pki gateway <n>" needs a replica number 1-${GATEWAY_REPLICA_MAX}${id ? `, got "${id}"` : ''}: the shipped ACLs grant gateway rights to ferry-gateway-1 … ferry-gateway-${GATEWAY_REPLICA_MAX} only. The main gateway's certificate (gateway.crt) comes from "ferry pki init".`)
      }
      const r = await issueGatewayReplica(dir, Number(id), { days, force: values.force })
      process.stdout.write(`gateway replica certificate written to ${r.cert} (CN=${r.cn}, serial ${r.serial}); give that replica FERRY_MQTT_CERT=${r.cert} and FERRY_MQTT_KEY=${r.key}\n`)
      return 0
    }
    case 'revoke': {
      const r = await revokeDevice(dir, needId())
      process.stdout.write(`revoked serial ${r.serial}; ${r.crl} updated. Send SIGHUP to the broker (or restart it) to apply.\n`)
      return 0
    }
    case 'crl':
      await refreshCrl(dir, days)
      process.stdout.write('crl.pem re-signed\n')
      return 0
    case 'list': {
      const rows = listPki(dir)
      if (values.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n')
      } else {
        for (const r of rows) {
          const state = r.revoked ? 'REVOKED' : r.warning ? `WARNING: ${r.warning}` : 'ok'
          process.stdout.write(`${r.role.padEnd(8)} ${r.subject.padEnd(32)} serial ${r.serial.padEnd(32)} expires ${r.notAfter.toISOString()}  ${state}\n`)
        }
      }
      const warnings = rows.filter((r) => r.warning)
      for (const w of warnings) process.stderr.write(`warning: ${w.file}: ${w.warning}\n`)
      return 0
    }
    default:
      throw new UsageError(`unknown action "${action}"\n\n${HELP}`)
  }
}
