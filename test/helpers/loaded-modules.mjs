// Preload (`node --import <this file>`) that records every module the process loads, one URL or path
// a line, into the file named by LOADED_MODULES_FILE: ES modules as they are resolved (by a resolve
// hook, which runs on Node's loader thread and appends at once), CommonJS modules (a library's own
// require() calls, which no ESM hook sees on Node 20) from require.cache when the process exits.
// Plain JavaScript, so that it loads before any TypeScript loader is in place.
import { appendFileSync } from 'node:fs'
import { createRequire, register } from 'node:module'

const out = process.env.LOADED_MODULES_FILE
if (!out) throw new Error('loaded-modules.mjs needs LOADED_MODULES_FILE')
register(new URL('./loaded-modules-hooks.mjs', import.meta.url), { data: { out } })
const cache = createRequire(import.meta.url).cache
process.on('exit', () => appendFileSync(out, Object.keys(cache).map((p) => `${p}\n`).join('')))
