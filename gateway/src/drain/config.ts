import { Type } from 'typebox'

/** Retry and progress settings of the drainers. Composed into the gateway's schema (core-config.ts). */
export const drainConfigSchema = Type.Object({
  FERRY_DRAIN_RETRY_MIN_MS: Type.Integer({ default: 1000, minimum: 10, description: 'First retry delay after a failed write (doubles, with jitter).' }),
  FERRY_DRAIN_RETRY_MAX_MS: Type.Integer({ default: 60_000, minimum: 10, description: 'Longest retry delay.' }),
  FERRY_DRAIN_RETRY_AFTER_CAP_MS: Type.Integer({ default: 300_000, minimum: 0, description: 'Longest pause a server Retry-After may impose.' }),
  FERRY_DRAIN_PROGRESS_MS: Type.Integer({ default: 5000, minimum: 100, description: 'How often backlog progress (rows left, rate, ETA) is logged while draining.' }),
})
