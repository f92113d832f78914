import type { ConfigSection } from '../common/src/config/docs.js'
import { gatewayConfigSchema } from '../gateway/src/config.js'
import { otaServerConfigSchema } from '../ota-server/src/config.js'

/** The processes whose configuration is documented, in README order. */
export const configSections: ConfigSection[] = [
  { key: 'gateway', title: 'Gateway (`ferry gateway`)', intro: 'MQTT ingest, the SQLite ring buffer, the sinks and the HTTP API.', schema: gatewayConfigSchema },
  { key: 'otaServer', title: 'OTA server (`ferry ota-server`)', intro: 'Serves signed firmware envelopes and images over HTTPS with client certificates.', schema: otaServerConfigSchema },
]
