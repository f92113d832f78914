import type Database from 'better-sqlite3'
import { DeviceReads, type DeviceReading, type DeviceRecord } from '../buffer/index.js'
import { CommandStore, type CommandRecord } from '../led/store.js'

/** One device as the API shows it. Times are ms since the epoch. */
export interface DeviceView {
  id: string
  lastSeen: number
  /** From the retained LWT status: true `online`, false `offline`, null never reported. */
  online: boolean | null
  statusAt: number | null
  lastReading: DeviceReading | null
  lastReadingAt: number | null
  /** The device's last `led/state` report. */
  led: { brightness: number; cmd: string | null } | null
  /** The device's last `ota/status` report, as sent. */
  ota: unknown
  lastCommand: CommandSummary | null
}

export type CommandSummary = Pick<CommandRecord, 'cmd' | 'source' | 'brightness' | 'state' | 'createdAt' | 'expiresAt' | 'confirmedAt' | 'reason'>

/**
 * What the device routes show: the buffer's device rows and readings (buffer/devices.ts) with each
 * device's latest LED command (led/store.ts). The queries are prepared once, by their owners.
 */
export class DeviceQueries {
  private readonly reads: DeviceReads

  /** `commands`: the running gateway's command store; by default one on `db`. */
  constructor(db: Database.Database, private readonly commands: Pick<CommandStore, 'latestFor'> = new CommandStore(db)) {
    this.reads = new DeviceReads(db)
  }

  devices(): DeviceView[] {
    return this.reads.devices().map((d) => this.view(d))
  }

  device(id: string): DeviceView | undefined {
    const d = this.reads.device(id)
    return d ? this.view(d) : undefined
  }

  /** See `DeviceReads.readings`: after `sinceMs` (exclusive), oldest first, at most `limit`. */
  readings(device: string, sinceMs: number, limit: number): { readings: DeviceReading[]; more: boolean } {
    return this.reads.readings(device, sinceMs, limit)
  }

  private view(d: DeviceRecord): DeviceView {
    const led = d.ledState as { brightness?: unknown; cmd?: unknown } | null
    const c = this.commands.latestFor(d.device)
    return {
      id: d.device,
      lastSeen: d.lastSeen,
      online: d.online,
      statusAt: d.statusAt,
      lastReading: d.lastReading,
      lastReadingAt: d.lastReadingAt,
      led: led && typeof led.brightness === 'number' ? { brightness: led.brightness, cmd: typeof led.cmd === 'string' ? led.cmd : null } : null,
      ota: d.otaState,
      lastCommand: c
        ? { cmd: c.cmd, source: c.source, brightness: c.brightness, state: c.state, createdAt: c.createdAt, expiresAt: c.expiresAt, confirmedAt: c.confirmedAt, reason: c.reason }
        : null,
    }
  }
}
