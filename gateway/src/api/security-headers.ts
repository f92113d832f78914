import type { FastifyInstance } from 'fastify'

/**
 * The dashboard's Content Security Policy: scripts, styles, images and API calls from this origin
 * only (uPlot is served locally), no inline script or style, no plugin, no framing (clickjacking of
 * the LED slider), no `<base>` rewriting and no form submission anywhere, so even a form whose script
 * failed cannot put the token into a URL.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "style-src 'self'",
  "script-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ')

/** Headers on every answer of the API and dashboard. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  // frame-ancestors for browsers that predate CSP level 2.
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // Nothing of the page's address goes to another site.
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
}

/**
 * Adds SECURITY_HEADERS to every reply of `app`, errors and 404s included. No
 * Strict-Transport-Security: HSTS binds the host name, not the port, and on a Pi the same name also
 * serves plain-HTTP tools (Grafana on :3000), which browsers would then refuse to open.
 */
export function addSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.headers(SECURITY_HEADERS)
    return payload
  })
}
