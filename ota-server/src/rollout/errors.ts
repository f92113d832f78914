import createError from '@fastify/error'

/**
 * The answers of the rollout routes besides those in http/errors.ts. Stable codes, listed in
 * ota-server/README.md and docs/errors.md.
 */
export const RolloutErrors = {
  NotFound: createError('FERRY_ERR_OTA_NOT_FOUND', '%s', 404),
  /** halt of a halted deployment, resume of one that is not, advance past the last stage or of a halted one. */
  Conflict: createError('FERRY_ERR_OTA_ROLLOUT_CONFLICT', '%s', 409),
}
