import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { FerryError } from '../errors.js'

/**
 * The repo's broker config, the single source of truth for container and native brokers alike: the
 * nearest folder above this file with a `mosquitto/mosquitto.conf` (works from src and dist). Looked
 * up on use, not at import, so importing this module never fails where the folder is absent (the
 * gateway's container image does not carry it).
 */
export function repoMosquittoFile(name: 'mosquitto.conf' | 'acl'): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'mosquitto', 'mosquitto.conf'))) {
    const up = dirname(dir)
    if (up === dir) {
      throw new FerryError(
        'FERRY_ERR_BROKER',
        `cannot find the Ferry package root (a folder holding mosquitto/mosquitto.conf) above ${dirname(fileURLToPath(import.meta.url))}; run the broker from a full Ferry checkout or install (the gateway's container image does not carry it: use the mosquitto container there)`,
      )
    }
    dir = up
  }
  return join(dir, 'mosquitto', name)
}

export interface NativePaths {
  /** Folder holding ca.crt, server.crt, server.key, crl.pem (readable by the broker's user). */
  certsDir: string
  /** The ACL file to use. */
  aclFile: string
  /** Where mosquitto.db lives. */
  persistDir: string
  port: number
  /** Bind address; omitted = all interfaces, as in the container. */
  bind?: string
}

/**
 * Rewrites the container config for a native broker: only paths, the port and the log destination
 * change, so whatever we test is what ships. Throws if a container path survives the rewrite, which
 * would mean the config grew a path this function does not know about.
 */
export function renderNativeConfig(containerConf: string, p: NativePaths): string {
  const out = containerConf
    .replaceAll('/mosquitto/config/certs/', p.certsDir.replace(/\/?$/, '/'))
    .replaceAll('/mosquitto/config/acl', p.aclFile)
    .replaceAll('/mosquitto/data/', p.persistDir.replace(/\/?$/, '/'))
    .replace(/^listener 8883$/m, `listener ${p.port}${p.bind ? ` ${p.bind}` : ''}`)
    // Mosquitto before 2.0.16 block-buffers stdout when it is not a TTY (Debian 12 ships 2.0.11), so
    // the "running" line we wait for would never arrive. stderr is unbuffered.
    .replace(/^log_dest stdout$/m, 'log_dest stderr')
  const leftover = /^[^#\n]*?(\/mosquitto\/\S*)/m.exec(out)
  // Invariant (a programming bug if broken): every container path of mosquitto.conf is rewritten above.
  if (leftover) throw new Error(`renderNativeConfig: container path ${leftover[1]} was not rewritten; teach renderNativeConfig the new path`)
  return out
}

export function readRepoConfig(): string {
  return readFileSync(repoMosquittoFile('mosquitto.conf'), 'utf8')
}
