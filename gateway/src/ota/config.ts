import { Type, type Static } from 'typebox'

/**
 * The gateway's link to the OTA server (ota/link.ts). Optional: without FERRY_OTA_URL the gateway
 * still records ota/status reports in its own buffer, but the OTA server's staged rollouts never see
 * the reports devices send over MQTT, and the dashboard shows no rollout.
 */
export const otaLinkConfigSchema = Type.Object({
  FERRY_OTA_URL: Type.Optional(Type.String({
    pattern: '^https://[^\\s/]+/?$',
    description: "The OTA server's origin (e.g. https://ota-server:8443). When set, the gateway forwards the devices' MQTT ota/status reports to it (its staged rollouts advance and halt on them) and shows its rollouts, a halt above all, on /api/status, ferry status and the dashboard. It connects with the gateway's own certificate (FERRY_MQTT_CERT, FERRY_MQTT_KEY) and trusts FERRY_MQTT_CA; the OTA server's certificate must name the host in this URL.",
  })),
  FERRY_OTA_SYNC_INTERVAL_MS: Type.Integer({ minimum: 200, default: 5000, description: 'How often the gateway forwards new ota/status reports to FERRY_OTA_URL and reads its rollouts back, in ms.' }),
})

export type OtaLinkConfig = Static<typeof otaLinkConfigSchema>

/** What startGateway needs for the link, or undefined when FERRY_OTA_URL is unset. */
export function otaLinkSettings(c: OtaLinkConfig): { url: string; intervalMs: number } | undefined {
  return c.FERRY_OTA_URL ? { url: c.FERRY_OTA_URL.replace(/\/$/, ''), intervalMs: c.FERRY_OTA_SYNC_INTERVAL_MS } : undefined
}
