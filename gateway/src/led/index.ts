/**
 * LED commands, cloud → device: the relay publishes each command as a retained `led/set` and confirms
 * it when the device echoes it; the TalkBack poller (when configured) feeds it commands from
 * ThingSpeak. The API feeds it commands too (POST /api/devices/:id/led, api/routes/devices.ts). Wired here, in one place.
 */
import type Database from 'better-sqlite3'
import type { MqttClient } from 'mqtt'
import type { Registry } from 'prom-client'
import type { Logger } from '../../../common/src/logger.js'
import type { TalkBackSettings } from './config.js'
import { LedRelay, mqttPublisher } from './relay.js'
import { CommandStore } from './store.js'
import type { TalkBackPoller, TalkBackPollerOptions } from './talkback.js'

export { LedRelay } from './relay.js'
export type { TalkBackPoller, TalkBackStatus } from './talkback.js'

export interface LedOptions {
  db: Database.Database
  /** The gateway's MQTT session, which publishes the commands. */
  client: MqttClient
  log: Logger
  registry: Registry
  /** Makes the TalkBack poller (`loadTalkBack`), or undefined when no TalkBack is configured. */
  talkback?: TalkBackFactory | undefined
  /**
   * False while a TalkBack command could not be published or recorded (broker unreachable, disk
   * full): TalkBack commands then stay queued in the cloud.
   */
  ready: () => boolean
}

export interface Led {
  relay: LedRelay
  talkback: TalkBackPoller | undefined
  start(): void
  stop(): Promise<void>
}

/** A TalkBack poller for the relay it feeds, with the settings already bound (`loadTalkBack`). */
export type TalkBackFactory = (deps: Pick<TalkBackPollerOptions, 'relay' | 'log' | 'ready' | 'registry'>) => TalkBackPoller

/**
 * Imports the TalkBack poller and binds its settings. Called only when TalkBack is configured
 * (gateway/src/cli.ts), so a gateway without it never loads the poller's code.
 */
export async function loadTalkBack(settings: TalkBackSettings): Promise<TalkBackFactory> {
  const { TalkBackPoller } = await import('./talkback.js')
  return (deps) => new TalkBackPoller({ ...settings, ...deps })
}

export function createLed(opts: LedOptions): Led {
  const relay = new LedRelay({ store: new CommandStore(opts.db), publisher: mqttPublisher(opts.client), log: opts.log.child({ component: 'commands' }), registry: opts.registry })
  const talkback = opts.talkback?.({ relay, log: opts.log.child({ component: 'talkback' }), ready: opts.ready, registry: opts.registry })
  return {
    relay,
    talkback,
    start() {
      relay.start()
      talkback?.start()
    },
    async stop() {
      await talkback?.stop()
      await relay.stop()
    },
  }
}
