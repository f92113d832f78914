import createError from '@fastify/error'

/**
 * The errors the OTA server answers with. Each has a stable code (in the JSON body as `code`) and an
 * HTTP status; ota-server/README.md lists them. Messages never contain server paths.
 */
export const OtaErrors = {
  Unauthenticated: createError('FERRY_ERR_OTA_UNAUTHENTICATED', 'a valid client certificate (or, for reports, a bearer token) is required', 401),
  Forbidden: createError('FERRY_ERR_OTA_FORBIDDEN', '%s', 403),
  NotFound: createError('FERRY_ERR_OTA_NOT_FOUND', '%s', 404),
  TooManyDownloads: createError('FERRY_ERR_OTA_TOO_MANY_DOWNLOADS', 'this device already has %s downloads in progress, the most one device may hold; finish or close one, or retry after the Retry-After delay', 429),
  Busy: createError('FERRY_ERR_OTA_BUSY', 'the OTA server is busy (%s downloads in progress); retry after the Retry-After delay', 503),
  ImageCorrupt: createError('FERRY_ERR_OTA_IMAGE_CORRUPT', 'the image on the server does not match its sha256; the operator must publish the release again', 500),
  RangeNotSatisfiable: createError('FERRY_ERR_OTA_RANGE', 'the requested range starts beyond the image (%s bytes)', 416),
}
