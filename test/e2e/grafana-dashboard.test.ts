// The provisioned Grafana dashboard (deploy/grafana/dashboards) reads what the InfluxDB sink writes:
// points encoded by the sink's own line-protocol code go into a real influxd 1.x, and every panel's
// InfluxQL, with Grafana's macros expanded the way Grafana expands them, must run without error and
// return one series per device with the right values. Grafana itself cannot run here.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { startInfluxd } from '../helpers/influxd.js'
import { toLine } from '../../gateway/src/sinks/line-protocol.js'
import type { BufferedReading } from '../../gateway/src/sinks/types.js'

interface Dashboard {
  templating: { list: { name: string; query: string }[] }
  panels: { title: string; targets: { query: string }[] }[]
}

const dashboard = JSON.parse(readFileSync(fileURLToPath(new URL('../../deploy/grafana/dashboards/ferry-telemetry.json', import.meta.url)), 'utf8')) as Dashboard

/** Grafana's InfluxQL macro expansion for a 1-hour range, a 10 s interval and the devices chosen. */
function expand(q: string, devices: string[]): string {
  return q
    .replaceAll('$timeFilter', 'time > now() - 1h')
    .replaceAll('$__interval', '10s')
    .replaceAll('/^$device$/', `/^(${devices.join('|')})$/`)
}

t.test('every dashboard query runs on InfluxDB 1.x against the sink\'s points', async (t) => {
  const influx = await startInfluxd(t)
  await influx.createDatabase('ferry')

  // Two devices, 20 readings each, 10 s apart, ending a minute ago; node-02 rebooted halfway.
  const devices = ['node-01', 'node-02']
  const start = Date.now() - 60_000 - 19 * 10_000
  const rows: BufferedReading[] = devices.flatMap((device, d) =>
    Array.from({ length: 20 }, (_, i) => ({
      id: d * 100 + i,
      device,
      boot: d === 1 && i >= 10 ? 2 : 1,
      seq: i,
      tsUs: (start + i * 10_000) * 1000,
      receivedAt: start + i * 10_000,
      pot: (d + 1) * 1000 + i,
      switch: (i % 2) as 0 | 1,
      led: null,
      payload: '{}',
    })),
  )
  const res = await fetch(`${influx.url}/write?db=ferry&precision=ns`, { method: 'POST', body: rows.map((r) => toLine(r)).join('\n') })
  t.equal(res.status, 204, await res.text())

  t.test('the device variable lists both devices', async (t) => {
    const v = dashboard.templating.list.find((x) => x.name === 'device')!
    const r = await influx.query(v.query, 'ferry')
    t.same(r.results[0]?.series?.[0]?.values.map((row) => row[1]).sort(), devices)
  })

  for (const panel of dashboard.panels) {
    t.test(`panel "${panel.title}"`, async (t) => {
      for (const target of panel.targets) {
        const r = await influx.query(expand(target.query, devices), 'ferry')
        const result = r.results[0]!
        t.equal(result.error, undefined, 'the query is valid InfluxQL')
        const series = result.series ?? []
        t.same(series.map((s) => (s as { tags?: { device?: string } }).tags?.device).sort(), devices, 'one series per device, tagged by device')
        const values = (device: string) => {
          const s = series.find((x) => (x as { tags?: { device?: string } }).tags?.device === device)!
          return s.values.map((v) => v[1]).filter((v) => v !== null) as number[]
        }
        if (panel.title === 'Latest potentiometer value') {
          t.same(devices.map((d) => values(d)), [[1019], [2019]], 'the last pot of each device')
        }
        if (panel.title === 'Readings per minute per device') {
          t.same(devices.map((d) => values(d).reduce((a, b) => a + b, 0)), [20, 20], 'counts add up to the readings written')
        }
        if (panel.title === 'Boot counter per device') {
          t.equal(Math.max(...values('node-02')), 2, 'the reboot shows')
        }
        if (panel.title === 'Potentiometer per device') {
          t.ok(values('node-01').every((v) => v >= 1000 && v <= 1019), 'values are the pot readings')
        }
      }
    })
  }

  t.test('a query with a misspelt measurement finds nothing (the checks above can fail)', async (t) => {
    const q = expand(dashboard.panels[0]!.targets[0]!.query.replace('"telemetry"', '"telemetri"'), devices)
    const r = await influx.query(q, 'ferry')
    t.equal(r.results[0]?.series, undefined)
  })
})
