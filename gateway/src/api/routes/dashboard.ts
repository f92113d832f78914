import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'

/**
 * The dashboard: static files from `gateway/src/dashboard/` at `/`, and uPlot from its npm package at
 * `/vendor/uplot/` (served locally: the gateway often has no internet, and a CDN would be a third
 * party on an operator page). The page itself only calls the JSON API.
 */
export const dashboardRoutes: FastifyPluginAsync<{ dir?: string }> = async (app, opts) => {
  const dir = opts.dir ?? dashboardDir()
  const uplot = join(dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist')
  // The CSP and the other security headers are set for every reply in app.ts (security-headers.ts).
  await app.register(fastifyStatic, { root: dir, prefix: '/', index: ['index.html'], wildcard: false, cacheControl: true, maxAge: 0 })
  await app.register(fastifyStatic, { root: uplot, prefix: '/vendor/uplot/', decorateReply: false, wildcard: false, allowedPath: (p) => /^\/uPlot\.(iife\.min\.js|min\.css)$/.test(p), maxAge: 86_400_000 })
}

/**
 * Where the dashboard files are: beside this module's folder when running from the sources, or in
 * the source tree when running the compiled `dist/` (tsc does not copy static files).
 */
export function dashboardDir(): string {
  const here = import.meta.dirname
  const candidates = [join(here, '..', '..', 'dashboard'), join(here, '..', '..', '..', '..', '..', 'gateway', 'src', 'dashboard')]
  return candidates.find((c) => existsSync(join(c, 'index.html'))) ?? candidates[0]!
}
