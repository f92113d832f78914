/**
 * Wiring of the background check of the buffer database (buffer/background-check.ts,
 * docs/integrity.md) into the running gateway: what it finds goes into the gateway's state (for
 * /healthz, /api/status and the log's last error) and into two metrics.
 */
import { Gauge, type Registry } from 'prom-client'
import type { Logger } from '../../common/src/logger.js'
import { startBackgroundChecks } from './buffer/index.js'
import type { GatewayState } from './state.js'

export function watchBufferIntegrity(opts: { path: string; everyMs: number | null; state: GatewayState; registry: Registry; log: Logger }): { stop(): Promise<void> } {
  const damaged = new Gauge({ name: 'ferry_buffer_damaged', help: '1 once the background check found damage in the buffer database (FERRY_ERR_BUFFER_DAMAGED; docs/integrity.md), else 0.', registers: [opts.registry] })
  const checkedAt = new Gauge({ name: 'ferry_buffer_checked_timestamp_seconds', help: 'When the last background check of the whole buffer database completed (FERRY_DB_CHECK_EVERY), seconds since the epoch.', registers: [opts.registry] })
  damaged.set(0)
  return startBackgroundChecks({
    path: opts.path,
    everyMs: opts.everyMs,
    log: opts.log,
    onResult: (r) => {
      if (r.failed) return
      checkedAt.set(Math.round((r.at + r.ms) / 1000))
      // Damage stays reported until the restart that moves the file aside: a later check that passes
      // (a flaky read) does not clear it; the next start decides with a check of its own.
      if (r.ok) return
      damaged.set(1)
      opts.state.bufferDamage = { at: r.at, error: r.error! }
      opts.state.lastError = { code: 'FERRY_ERR_BUFFER_DAMAGED', message: `the background check found damage in the buffer database (${r.error}); restart the gateway once the sinks have caught up: the next start moves the file aside`, at: r.at }
    },
  })
}
