/**
 * Soak: memory of one real `ferry gateway` over simulated hours, idle and then under load, against
 * the same gateway's memory earlier in the same run. Whatever leaks with time (a listener left on a
 * long-lived signal at every idle poll, a timer or a closure per message) makes the end larger than
 * the start; a gateway that leaks nothing stays flat.
 *
 * Time is compressed for the gateway process only: bench/lib/compressed-clock.mjs (preloaded) divides
 * the delay of every timer Ferry's own code sets by SCALE, so the drainer's 1-second idle poll, the
 * TalkBack poll, group commit, the FERRY_BUFFER_MAX_AGE check and LED command expiry run SCALE times
 * as often, and a minute stands for SCALE minutes of their work (libraries' timers, mostly timeouts
 * against hangs, keep real time). Readings and LED commands arrive at a real, steady rate. Memory is read from the gateway's own /metrics (process_resident_memory_bytes,
 * nodejs_heap_size_used_bytes), each read right after a full GC (SIGUSR2 → gc() in the preload),
 * three reads a second apart per point; /metrics is scraped every second throughout, as Prometheus
 * would.
 */
import type { MqttClient } from 'mqtt'
import { get as httpGet } from 'node:http'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { startTestBroker } from '../test/helpers/mosquitto.js'
import { deviceClient, gatewayEnv } from '../test/helpers/gateway.js'
import { freePort } from '../test/helpers/ports.js'
import { tempDir } from '../test/helpers/tmp.js'
import { FakeTalkBack } from '../test/fakes/talkback.js'
import { fmt, measure, result, withScope, type Measure, type Result } from './lib/harness.js'
import { cpuMsOf, ROOT, startFerry, waitListening, waitUntil, type Proc } from './lib/procs.js'
import { reading } from './lib/load.js'
import type { Bench, BenchContext } from './lib/context.js'

/** Timers in the gateway run this many times faster than the wall clock. */
const SCALE = 200
const MB = 1_000_000
const DEVICES = ['dev1', 'dev2', 'dev3', 'dev4']
/** Readings per device per second during the load phase (real time). */
const RATE = 20
const TALKBACK = { talkbackId: '7', apiKey: 'TALKBACKKEY12345' }

/**
 * GET on a new connection each time: the gateway's keep-alive timeout runs on the compressed clock
 * too, and a reused connection it has just closed would fail the request.
 */
function fetchText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    }).on('error', reject)
  })
}

/** The value of an unlabelled sample in Prometheus text. */
function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  if (!m) throw new Error(`the gateway's /metrics has no ${name}`)
  return Number(m[1])
}

/** RSS and live heap (MB) from the gateway's /metrics, each read right after a full GC; three reads. */
async function memory(gw: Proc, url: string): Promise<{ rss: Measure; heap: Measure }> {
  const rss: number[] = []
  const heap: number[] = []
  for (let i = 0; i < 3; i++) {
    gw.child.kill('SIGUSR2')
    await sleep(1000)
    const { body: text } = await fetchText(`${url}/metrics`)
    rss.push(metric(text, 'process_resident_memory_bytes') / MB)
    heap.push(metric(text, 'nodejs_heap_size_used_bytes') / MB)
  }
  return { rss: measure(rss), heap: measure(heap) }
}

/** Scrapes /metrics once a second for `seconds`, failing if the gateway stops answering or exits. */
async function scrape(gw: Proc, url: string, seconds: number): Promise<void> {
  const end = Date.now() + seconds * 1000
  while (Date.now() < end) {
    if (!gw.alive()) throw new Error(`the gateway exited during the soak; last lines:\n${gw.lines.slice(-10).join('\n')}`)
    const res = await fetchText(`${url}/metrics`)
    if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
    await sleep(1000)
  }
}

/**
 * Every device publishes RATE readings a second (QoS 1) while `running()`, and TalkBack gets an LED
 * command every 2 s; resolves with the last seq once every publish is acknowledged.
 */
async function steadyLoad(clients: MqttClient[], talkback: FakeTalkBack, fromSeq: number, running: () => boolean): Promise<number> {
  let seq = fromSeq
  const acked: Array<Promise<unknown>> = []
  for (let tick = 0; running(); tick++) {
    seq++
    for (const [i, c] of clients.entries()) acked.push(c.publishAsync(`sensors/${DEVICES[i]}/telemetry`, reading(seq, 1, Date.now()), { qos: 1 }))
    if (tick % (RATE * 2) === 0) talkback.add(`LED=${tick % 101}`)
    await sleep(1000 / RATE)
  }
  await Promise.all(acked)
  return seq
}

/** Waits until the file sink has been sent `n` readings (the gateway's /api/status). */
async function delivered(url: string, n: number): Promise<void> {
  await waitUntil(async () => {
    const s = JSON.parse((await fetchText(`${url}/api/status`)).body) as { sinks: Array<{ name: string; sentTotal: number }> }
    return (s.sinks.find((x) => x.name === 'file')?.sentTotal ?? 0) >= n
  }, `${n} readings delivered to the file sink`, 60_000, 200)
}

const hours = (seconds: number) => fmt((seconds * SCALE) / 3600)

async function run(ctx: BenchContext): Promise<Result[]> {
  const idleS = ctx.quick ? 20 : 120
  const loadS = ctx.quick ? 20 : 120
  const warmS = ctx.quick ? 5 : 20
  return withScope(async (s) => {
    const broker = await startTestBroker(s, { devices: DEVICES })
    const talkback = new FakeTalkBack(TALKBACK)
    const tbUrl = await talkback.start()
    s.teardown(() => talkback.close())
    const dir = tempDir(s, 'ferry-bench-soak-')
    const port = await freePort()
    const env = gatewayEnv(broker, dir, {
      FERRY_SINKS: 'file',
      FERRY_FILE_PATH: join(dir, 'telemetry.lp'),
      FERRY_HTTP_PORT: String(port),
      FERRY_HTTP_HOST: '127.0.0.1',
      FERRY_API_READ_ONLY: 'true',
      FERRY_BUFFER_MAX_AGE: '1h',
      FERRY_THINGSPEAK_URL: tbUrl,
      FERRY_THINGSPEAK_TALKBACK_ID: TALKBACK.talkbackId,
      FERRY_THINGSPEAK_TALKBACK_KEY: TALKBACK.apiKey,
      FERRY_TALKBACK_DEFAULT_DEVICE: DEVICES[0]!,
    })
    const clock = pathToFileURL(join(ROOT, 'bench', 'lib', 'compressed-clock.mjs')).href
    const gw = startFerry(s, ['gateway'], { ...env, BENCH_CLOCK_SCALE: String(SCALE) }, { nodeArgs: ['--expose-gc', `--import=${clock}`] })
    await waitListening(gw, port)
    await gw.waitFor(/connected to the broker/)
    const url = `http://127.0.0.1:${port}`
    const clients = await Promise.all(DEVICES.map((d) => deviceClient(s, broker, d)))

    // Warm-up: readings and a command through the whole path, then idle; the baseline is read after it.
    const warmEnd = Date.now() + 5000
    let seq = await steadyLoad(clients, talkback, 0, () => Date.now() < warmEnd)
    await delivered(url, seq * DEVICES.length)
    await scrape(gw, url, warmS)
    const start = await memory(gw, url)
    ctx.log(`soak: baseline after warm-up RSS ${fmt(start.rss.median)} MB, heap ${fmt(start.heap.median)} MB; idling ${idleS} s (${hours(idleS)} h of timers)`)
    const cpu0 = cpuMsOf(gw.pid) ?? NaN
    await scrape(gw, url, idleS)
    const idleCpuPct = ((cpuMsOf(gw.pid) ?? NaN) - cpu0) / (idleS * 10)
    const idle = await memory(gw, url)
    ctx.log(`soak: after idling RSS ${fmt(idle.rss.median)} MB, heap ${fmt(idle.heap.median)} MB; load for ${warmS + loadS} s`)

    // Load: the first warmS seconds warm up, then loadS seconds are measured; memory is read under load.
    let loading = true
    const loadStarted = Date.now()
    const load = steadyLoad(clients, talkback, seq, () => loading)
    load.catch(() => {}) // awaited below; a failure must not be an unhandled rejection meanwhile
    await scrape(gw, url, warmS)
    const loadStart = await memory(gw, url)
    await scrape(gw, url, loadS)
    const loadEnd = await memory(gw, url)
    loading = false
    const loadedS = (Date.now() - loadStarted) / 1000
    const lastSeq = await load
    const published = (lastSeq - seq) * DEVICES.length
    seq = lastSeq
    await delivered(url, seq * DEVICES.length)
    const health = await fetchText(`${url}/healthz`)
    if (health.status !== 200) throw new Error(`/healthz answered ${health.status} after the soak: ${health.body}`)
    ctx.log(`soak: under load RSS ${fmt(loadStart.rss.median)} → ${fmt(loadEnd.rss.median)} MB, heap ${fmt(loadStart.heap.median)} → ${fmt(loadEnd.heap.median)} MB; ${published} readings, all delivered`)
    await gw.stop()

    const flat = [{ of: 'ratio' as const, op: '<=' as const, value: 1.1 }]
    const idleNote = `${idleS} s idle with timers ×${SCALE}: ~${hours(idleS)} h of 1-second drainer polls (${(idleS * SCALE).toLocaleString('en-US')}), ~${fmt(SCALE / 15)} TalkBack polls a second; /metrics scraped every second; gateway CPU while idle ${fmt(idleCpuPct)} % of a core`
    const loadNote = `${loadS} s of ${DEVICES.length} devices × ${RATE} readings/s (${published.toLocaleString('en-US')} readings in ${fmt(loadedS)} s with the warm-up and the memory reads, all delivered to the file sink) and an LED command from TalkBack every 2 s, timers ×${SCALE} (~${hours(loadS)} h)`
    return [
      result({ id: 'soak.idle-heap', title: 'live heap after idling vs after warm-up (same gateway)', unit: 'MB', ferry: idle.heap, baseline: { name: 'same gateway after warm-up', ...start.heap }, targets: flat, notes: [idleNote, 'heap = nodejs_heap_size_used_bytes right after a full GC'] }),
      result({ id: 'soak.idle-rss', title: 'RSS after idling vs after warm-up (same gateway)', unit: 'MB', ferry: idle.rss, baseline: { name: 'same gateway after warm-up', ...start.rss }, targets: flat }),
      result({ id: 'soak.load-heap', title: `live heap at the end of ${loadS} s of load vs ${warmS} s into it`, unit: 'MB', ferry: loadEnd.heap, baseline: { name: `same gateway ${warmS} s into the load`, ...loadStart.heap }, targets: flat, notes: [loadNote] }),
      result({ id: 'soak.load-rss', title: `RSS at the end of ${loadS} s of load vs ${warmS} s into it`, unit: 'MB', ferry: loadEnd.rss, baseline: { name: `same gateway ${warmS} s into the load`, ...loadStart.rss }, targets: flat }),
    ]
  })
}

export const bench: Bench = { name: 'soak', description: 'memory of one gateway over simulated hours, idle and under load, vs itself after warm-up', needs: ['mosquitto'], run }
