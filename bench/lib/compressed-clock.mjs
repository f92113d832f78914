/**
 * Preloaded into the gateway by bench/soak.bench.ts (`node --expose-gc --import <this file> …`), never
 * by the product: a compressed clock for a real process, so a few minutes stand for hours.
 *
 * - Ferry's own timers run BENCH_CLOCK_SCALE times faster: a `setTimeout`/`setInterval` (global,
 *   `node:timers` or `node:timers/promises`) called directly from Ferry's code (this checkout, not
 *   node_modules) has its delay divided by the scale. The drainer's 1-second idle poll, the TalkBack
 *   poll, group commit, the FERRY_BUFFER_MAX_AGE check, LED command expiry and the pause probes.
 * - Libraries' timers keep real time: they are mostly timeouts against hangs (MQTT.js connect and
 *   keepalive, Fastify's plugin timeout, undici), which a compressed clock would only trip.
 *   `Date.now`, `performance.now` and `AbortSignal.timeout` keep real time too.
 * - SIGUSR2 runs a full garbage collection (needs --expose-gc), so that the next /metrics scrape
 *   shows the heap that is still live rather than garbage waiting for the collector.
 *
 * Plain JavaScript, so the measured process does not load a TypeScript loader.
 */
import timers from 'node:timers'
import timersPromises from 'node:timers/promises'
import { syncBuiltinESMExports } from 'node:module'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const scale = Number(process.env.BENCH_CLOCK_SCALE ?? '1')
if (!(scale >= 1)) throw new Error(`BENCH_CLOCK_SCALE must be a number ≥ 1, not ${process.env.BENCH_CLOCK_SCALE}`)
/** This checkout, as it appears in stack frames (`file:///…/` URLs and plain paths alike). */
const checkout = fileURLToPath(new URL('../../', import.meta.url))

/** True when the function that called `wrapper` is Ferry's code, not a library's. */
function calledByFerry(wrapper) {
  const holder = {}
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 1
  Error.captureStackTrace(holder, wrapper)
  Error.stackTraceLimit = limit
  const caller = String(holder.stack).split('\n')[1] ?? ''
  return caller.includes(checkout) && !caller.includes('/node_modules/')
}

/** The delay `wrapper`'s caller asked for, compressed when that caller is Ferry. Node makes anything below 1 ms 1 ms anyway. */
const fast = (ms, wrapper) => (typeof ms === 'number' && ms > 0 && calledByFerry(wrapper) ? ms / scale : ms)

const real = {
  setTimeout: globalThis.setTimeout,
  setInterval: globalThis.setInterval,
  sleep: timersPromises.setTimeout,
  every: timersPromises.setInterval,
}

function compressedTimeout(fn, ms, ...args) {
  return real.setTimeout(fn, fast(ms, compressedTimeout), ...args)
}
function compressedInterval(fn, ms, ...args) {
  return real.setInterval(fn, fast(ms, compressedInterval), ...args)
}
function compressedSleep(ms, value, options) {
  return real.sleep(fast(ms, compressedSleep), value, options)
}
function compressedEvery(ms, value, options) {
  return real.every(fast(ms, compressedEvery), value, options)
}
compressedTimeout[promisify.custom] = compressedSleep

globalThis.setTimeout = compressedTimeout
globalThis.setInterval = compressedInterval
timers.setTimeout = compressedTimeout
timers.setInterval = compressedInterval
timersPromises.setTimeout = compressedSleep
timersPromises.setInterval = compressedEvery
// ES module imports of node:timers and node:timers/promises (`import { setTimeout } from …`) see these too.
syncBuiltinESMExports()

process.on('SIGUSR2', () => globalThis.gc?.())
