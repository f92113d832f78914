import createError from '@fastify/error'

/**
 * The errors the gateway API answers with: JSON `{"code","message"}` with a stable code and an HTTP
 * status. docs/api.md lists them.
 */
export const ApiErrors = {
  Unauthorized: createError('FERRY_ERR_API_UNAUTHORIZED', 'this route needs "Authorization: Bearer <FERRY_API_TOKEN>" (or, over HTTPS, a client certificate named in FERRY_HTTP_TLS_CLIENT_NAMES)', 401),
  NotFound: createError('FERRY_ERR_API_NOT_FOUND', '%s', 404),
  BrokerDown: createError('FERRY_ERR_API_BROKER_DOWN', 'the gateway is not connected to the broker; the LED command was not taken, try again when /healthz is ok', 503),
}

/** Codes the error handler derives from a status when the error has no Ferry code. */
export const STATUS_CODES: Record<number, string> = {
  400: 'FERRY_ERR_API_BAD_REQUEST',
  401: 'FERRY_ERR_API_UNAUTHORIZED',
  404: 'FERRY_ERR_API_NOT_FOUND',
  413: 'FERRY_ERR_API_TOO_LARGE',
  415: 'FERRY_ERR_API_BAD_REQUEST',
  429: 'FERRY_ERR_API_RATE_LIMITED',
}
