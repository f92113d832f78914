/* Ferry dashboard. Plain browser JavaScript (no build step); talks only to the gateway's JSON API.
 * Polls /api/status and /api/devices every 2 s and each device's readings incrementally (?since=),
 * so the charts follow live. Every value from the API is written with textContent, never as HTML. */
/* global document, window, uPlot, ResizeObserver */
'use strict'

const POLL_MS = 2000
const WINDOW_MS = 10 * 60_000
const TOKEN_KEY = 'ferry.apiToken'

/** Per device: its card elements, chart and data. */
const devices = new Map()
let readOnly = false

const $ = (sel, root = document) => root.querySelector(sel)

function token() {
  return localStorage.getItem(TOKEN_KEY) || ''
}

async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { accept: 'application/json', ...(init.headers || {}) } })
  const body = await res.json().catch(() => ({}))
  return { status: res.status, body }
}

function ago(ms) {
  if (ms === null || ms === undefined) return '–'
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000))
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.round(s / 60)} min ago`
  return `${Math.round(s / 3600)} h ago`
}

function age(ms) {
  if (ms === null || ms === undefined) return '–'
  const s = Math.round(ms / 1000)
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`
}

/** The runway: "2 h at 12/s", "–" while nothing comes in, "0 s (paused)" while backpressure holds ingest. */
function runway(r) {
  if (!r) return '–'
  if (r.seconds === null) return '– (nothing coming in)'
  return `${age(r.seconds * 1000)} at ${r.ingestPerS}/s, then ${r.onFull === 'backpressure' ? 'pause' : 'drop'}`
}

function badge(el, ok, text) {
  el.textContent = text
  el.classList.remove('ok', 'bad', 'unknown')
  el.classList.add(ok === null ? 'unknown' : ok ? 'ok' : 'bad')
}

function renderStatus(s) {
  readOnly = s.api.readOnly
  badge($('#broker'), s.gateway.brokerConnected, s.gateway.brokerConnected ? 'connected' : 'disconnected')
  const paused = s.gateway.ingestPaused
  badge($('#ingest'), !paused, paused ? `paused (${paused.reason})` : 'running')
  $('#buffered').textContent = `${s.buffered.rows} readings`
  $('#runway').textContent = runway(s.runway)
  $('#dropped').textContent = String(s.dropped.total)
  $('#expired').textContent = String(s.expired.total)
  $('#dead').textContent = String(s.deadLetters.total)
  const tb = s.commands.talkback
  $('#talkback').textContent = tb ? `${tb.state}, ${tb.commands} commands${tb.lastError ? ` (${tb.lastError.message})` : ''}` : 'off'
  const tbody = $('#sinks tbody')
  const rows = s.sinks.map((sink) => {
    const d = s.drainers.find((x) => x.name === sink.name)
    const tr = document.createElement('tr')
    tr.dataset.sink = sink.name
    for (const [text, cls] of [
      [sink.name],
      [d ? d.state : '–'],
      [String(sink.rows)],
      [age(sink.oldestAgeMs)],
      [sink.drainEtaS === null ? '–' : age(sink.drainEtaS * 1000)],
      [String(sink.sentTotal)],
      [sink.lastErrorCode ? `${sink.lastErrorCode}: ${sink.lastError || ''}` : '', 'err'],
    ]) {
      const td = document.createElement('td')
      td.textContent = text
      if (cls) td.className = cls
      tr.append(td)
    }
    return tr
  })
  if (rows.length === 0) rows.push(emptyRow(7, 'no sinks configured (FERRY_SINKS)'))
  tbody.replaceChildren(...rows)
  renderOta(s.ota)
}

/** A table row that says the table is empty, across `columns` columns. */
function emptyRow(columns, text) {
  const tr = document.createElement('tr')
  const td = document.createElement('td')
  td.colSpan = columns
  td.className = 'muted'
  td.textContent = text
  tr.append(td)
  return tr
}

/** The OTA server's staged rollouts, as the gateway last read them (FERRY_OTA_URL); a halt stands out. */
function renderOta(ota) {
  const section = $('#ota')
  section.hidden = !ota
  if (!ota) return
  const when = ota.rolloutsAt === null ? 'not read yet' : `as of ${ago(ota.rolloutsAt)}`
  $('#ota-link').textContent = `${ota.url}: ${when}${ota.lastError ? `; unreachable: ${ota.lastError.message}` : ''}`
  const rows = ota.rollouts.map((r) => {
    const tr = document.createElement('tr')
    tr.dataset.deployment = r.deployment
    tr.dataset.status = r.status
    const c = r.counts
    const cells = [
      [r.deployment],
      [r.status === 'halted' ? 'HALTED' : r.status, 'state'],
      [r.stage ? `${r.stage.number} of ${r.stage.of} (${r.stage.description})` : '–'],
      [c ? `${c.installed} of ${c.started}` : '–'],
      [c ? String(c.failed + c.stalled) : '–'],
      [r.why, r.status === 'halted' ? 'err' : 'why'],
    ]
    for (const [text, cls] of cells) {
      const td = document.createElement('td')
      if (cls === 'state') {
        const b = document.createElement('span')
        b.className = 'badge'
        badge(b, r.status === 'halted' ? false : r.status === 'active' ? true : null, text)
        td.append(b)
      } else {
        td.textContent = text
        if (cls) td.className = cls
      }
      tr.append(td)
    }
    return tr
  })
  if (rows.length === 0) rows.push(emptyRow(6, 'no deployments'))
  $('#rollouts tbody').replaceChildren(...rows)
}

function makeChart(el) {
  const opts = {
    width: Math.max(200, el.clientWidth),
    height: 160,
    cursor: { drag: { x: false, y: false } },
    legend: { show: false },
    scales: { x: { time: true }, y: { range: [0, 4095] } },
    // Plain integers ("4000") fit the axis; the default "4,000" gets clipped on narrow screens.
    axes: [{ stroke: 'currentColor' }, { stroke: 'currentColor', size: 50, values: (_u, vals) => vals.map((v) => String(v)) }],
    series: [{}, { label: 'pot', stroke: '#2f6fde', width: 2, fill: 'rgba(47,111,222,0.12)', points: { show: false } }],
  }
  return new uPlot(opts, [[], []], el)
}

function addDevice(d) {
  const node = $('#device-template').content.firstElementChild.cloneNode(true)
  node.id = `device-${d.id}`
  node.dataset.device = d.id
  $('.name', node).textContent = d.id
  $('#devices').append(node)
  const entry = { node, chart: null, xs: [], ys: [], since: Date.now() - WINDOW_MS, loading: false, sending: null }
  entry.chart = makeChart($('.chart', node))
  new ResizeObserver(() => entry.chart.setSize({ width: Math.max(200, $('.chart', node).clientWidth), height: 160 })).observe($('.chart', node))

  const slider = $('.led-slider', node)
  const out = $('.led-value', node)
  slider.addEventListener('input', () => (out.textContent = slider.value))
  // 'change' fires when the user lets go: one command per gesture, not one per pixel.
  slider.addEventListener('change', () => sendLed(d.id, Number(slider.value)))
  devices.set(d.id, entry)
  $('#no-devices').hidden = true
  return entry
}

async function sendLed(id, brightness) {
  const entry = devices.get(id)
  const result = $('.led-result', entry.node)
  if (readOnly) return show(result, false, 'the API is read-only (FERRY_API_READ_ONLY)')
  if (!token()) return show(result, false, 'set the API token below first')
  show(result, null, `sending ${brightness}%…`)
  try {
    const r = await api(`/api/devices/${encodeURIComponent(id)}/led`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token()}` },
      body: JSON.stringify({ brightness }),
    })
    if (r.status === 202) {
      entry.sending = r.body.cmd
      show(result, true, `command ${r.body.cmd}: ${r.body.state}`)
    } else if (r.status === 401) show(result, false, 'the API token was refused; set it below')
    else show(result, false, `${r.status}: ${r.body.message || 'failed'}`)
  } catch (err) {
    show(result, false, `gateway unreachable: ${err.message}`)
  }
}

function show(el, ok, text) {
  el.textContent = text
  el.className = `led-result ${ok === false ? 'bad' : 'muted'}`
}

function renderDevice(d) {
  const entry = devices.get(d.id) || addDevice(d)
  const n = entry.node
  badge($('.online', n), d.online, d.online === null ? 'no status' : d.online ? 'online' : 'offline')
  $('.pot', n).textContent = d.lastReading ? String(d.lastReading.pot) : '–'
  $('.switch', n).textContent = d.lastReading ? (d.lastReading.switch ? 'on' : 'off') : '–'
  $('.led', n).textContent = d.led ? `${d.led.brightness}%` : '–'
  $('.seen', n).textContent = ago(d.lastSeen)
  const slider = $('.led-slider', n)
  slider.disabled = readOnly
  // Follow the device's reported brightness unless the user is dragging.
  if (d.led && document.activeElement !== slider && entry.sending === null) {
    slider.value = String(d.led.brightness)
    $('.led-value', n).textContent = String(d.led.brightness)
  }
  const c = d.lastCommand
  if (c && entry.sending === c.cmd && c.state !== 'pending') {
    show($('.led-result', n), c.state !== 'failed' && c.state !== 'expired', `command ${c.cmd}: ${c.state}`)
    if (c.state === 'confirmed' || c.state === 'failed' || c.state === 'expired' || c.state === 'superseded') entry.sending = null
  }
  void loadReadings(d.id, entry)
}

async function loadReadings(id, entry) {
  if (entry.loading) return
  entry.loading = true
  try {
    for (let page = 0; page < 10; page++) {
      const r = await api(`/api/devices/${encodeURIComponent(id)}/readings?since=${entry.since}&limit=2000`)
      if (r.status !== 200) break
      for (const x of r.body.readings) {
        entry.xs.push(x.ts / 1000)
        entry.ys.push(x.pot)
        entry.since = x.ts
      }
      if (!r.body.more) break
    }
    const from = (Date.now() - WINDOW_MS) / 1000
    let cut = 0
    while (cut < entry.xs.length && entry.xs[cut] < from) cut++
    if (cut) {
      entry.xs.splice(0, cut)
      entry.ys.splice(0, cut)
    }
    entry.chart.setData([entry.xs, entry.ys])
    const el = $('.chart', entry.node)
    el.dataset.points = String(entry.xs.length)
    el.dataset.last = entry.ys.length ? String(entry.ys[entry.ys.length - 1]) : ''
  } finally {
    entry.loading = false
  }
}

let timer
async function tick() {
  clearTimeout(timer)
  try {
    const [s, d] = await Promise.all([api('/api/status'), api('/api/devices')])
    if (s.status === 200) renderStatus(s.body)
    if (d.status === 200) for (const dev of d.body.devices) renderDevice(dev)
    badge($('#api-state'), true, `updated ${new Date().toLocaleTimeString()}`)
  } catch {
    badge($('#api-state'), false, 'gateway unreachable')
  }
  timer = setTimeout(tick, POLL_MS)
}

function initToken() {
  const input = $('#token')
  const state = $('#token-state')
  const refresh = () => (state.textContent = token() ? '(set)' : '(needed for the LED slider)')
  refresh()
  // Plain HTTP beyond this host (FERRY_HTTP_INSECURE): say so where the token is typed.
  $('#token-insecure').hidden = window.isSecureContext
  $('#token-form').addEventListener('submit', (e) => {
    e.preventDefault()
    if (input.value) localStorage.setItem(TOKEN_KEY, input.value.trim())
    else localStorage.removeItem(TOKEN_KEY)
    input.value = ''
    refresh()
  })
}

window.addEventListener('DOMContentLoaded', () => {
  initToken()
  void tick()
})
