// InfluxDB sink against a real influxd 1.6 (Debian package): the shared contract, then the failure
// modes a real 1.x server can produce — a field type conflict (400 partial write), bad credentials
// (401), a body over max-body-size (413) and a server that is gone (transport error).
import t from 'tap'
import { gzipSync } from 'node:zlib'
import { loadEnv } from '../../../../common/src/config/env.js'
import { startInfluxd } from '../../../../test/helpers/influxd.js'
import { sinkContract, makeRows, CONTRACT_START_US, type Delivered } from '../../../../test/sink-contract.js'
import { toLine } from '../line-protocol.js'
import { influxConfigSchema, type InfluxConfig } from './config.js'
import { createInfluxSink } from './influxdb.js'

const cfg = (env: Record<string, string>): InfluxConfig => loadEnv<InfluxConfig>(influxConfigSchema, { env, dotenvPath: '/nonexistent' })
const signal = () => new AbortController().signal
const WEEK_US = 7 * 86400e6

const influxd = await startInfluxd(t)
let dbCount = 0

async function freshDb(): Promise<string> {
  return influxd.createDatabase(`ferry_${++dbCount}`)
}

async function delivered(db: string): Promise<Delivered[]> {
  return (await influxd.select(db)).map((r) => ({
    device: r.device as string,
    pot: r.pot as number,
    switch: r.switch as number,
    led: (r.led as number | null) ?? null,
    timeMs: Math.floor((r.time as number) / 1000),
  }))
}

sinkContract(t, async (t) => {
  const db = await freshDb()
  const sink = createInfluxSink(cfg({ FERRY_INFLUX_URL: influxd.url, FERRY_INFLUX_DB: db }))
  t.teardown(() => sink.close())
  return { sink, delivered: () => delivered(db) }
})

t.test('writes exact microsecond timestamps, seq and boot (no float loss)', async (t) => {
  const db = await freshDb()
  const sink = createInfluxSink(cfg({ FERRY_INFLUX_URL: influxd.url, FERRY_INFLUX_DB: db }))
  t.teardown(() => sink.close())
  const rows = makeRows(3)
  await sink.write(rows, signal())
  const got = await influxd.select(db)
  t.same(got.map((r) => [r.time, r.seq, r.boot]), rows.map((r) => [r.tsUs, r.seq, r.boot]))
})

t.test('400 on one bad row in a batch of 100: exactly that row is rejected with the server message, 99 accepted', async (t) => {
  const db = await freshDb()
  const sink = createInfluxSink(cfg({ FERRY_INFLUX_URL: influxd.url, FERRY_INFLUX_DB: db }))
  t.teardown(() => sink.close())
  // Field types are fixed per shard (a week here). Make `pot` a string in the week after the batch,
  // so only a row dated in that week conflicts with a real "field type conflict" partial write.
  const badTsUs = CONTRACT_START_US + 2 * WEEK_US
  const pre = await fetch(`${influxd.url}/write?db=${db}&precision=u`, { method: 'POST', body: `telemetry,device=other pot="high" ${badTsUs - 1}\n` })
  t.equal(pre.status, 204, 'control: the string-typed pot was written')
  const rows = makeRows(100, { spacingMs: 1000 })
  const badIndex = 36
  rows[badIndex] = { ...(rows[badIndex] as (typeof rows)[number]), device: 'late', tsUs: badTsUs }
  const raw = await fetch(`${influxd.url}/write?db=${db}`, { method: 'POST', body: rows.map((r) => toLine(r)).join('\n') })
  t.equal(raw.status, 400, 'control: the whole batch sent as-is gets a 400 partial write')
  t.match(await raw.text(), /partial write: field type conflict.*dropped=1/)

  const r = await sink.write(rows, signal())
  t.same(r.rejected.map((x) => x.id), [rows[badIndex]?.id])
  t.match(r.rejected[0]?.reason, /^InfluxDB 400: partial write: field type conflict: input field "pot" on measurement "telemetry" is type integer, already exists as type string/)
  t.same(r.accepted, rows.filter((_, i) => i !== badIndex).map((x) => x.id))
  t.same(r.retryable, [])
  const stored = await influxd.select(db)
  t.equal(stored.filter((x) => x.device !== 'other').length, 99, 'the 99 good rows are stored once each')
  t.notOk(stored.some((x) => x.device === 'late'), 'the bad row is not stored')
})

t.test('401 with a wrong password: authError, nothing accepted, every row retryable', async (t) => {
  const secured = await startInfluxd(t, { auth: { user: 'admin', password: 'right-horse' } })
  const db = await secured.createDatabase('ferry')
  const rows = makeRows(5)
  const bad = createInfluxSink(cfg({ FERRY_INFLUX_URL: secured.url, FERRY_INFLUX_DB: db, FERRY_INFLUX_USER: 'admin', FERRY_INFLUX_PASSWORD: 'wrong' }))
  t.teardown(() => bad.close())
  const r = await bad.write(rows, signal())
  t.same(r.accepted, [])
  t.same(r.rejected, [])
  t.same(r.retryable, rows.map((x) => x.id))
  t.equal(r.errorClass, 'http_401')
  t.match(r.authError, /InfluxDB refused the credentials.*authorization failed.*FERRY_INFLUX_USER/)
  t.same(await secured.select(db), [])

  const good = createInfluxSink(cfg({ FERRY_INFLUX_URL: secured.url, FERRY_INFLUX_DB: db, FERRY_INFLUX_USER: 'admin', FERRY_INFLUX_PASSWORD: 'right-horse' }))
  t.teardown(() => good.close())
  t.same((await good.write(rows, signal())).accepted, rows.map((x) => x.id), 'control: the right password is accepted')
})

t.test('413 from max-body-size: the batch is split and every row delivered', async (t) => {
  const small = await startInfluxd(t, { maxBodySize: 4096 })
  const db = await small.createDatabase('ferry')
  const rows = makeRows(600, { spacingMs: 1000 })
  const body = gzipSync(rows.map((r) => toLine(r)).join('\n') + '\n')
  const raw = await fetch(`${small.url}/write?db=${db}`, { method: 'POST', body, headers: { 'content-encoding': 'gzip' } })
  t.equal(raw.status, 413, `control: the whole batch (${body.length} bytes gzipped) is too large`)
  const sink = createInfluxSink(cfg({ FERRY_INFLUX_URL: small.url, FERRY_INFLUX_DB: db }))
  t.teardown(() => sink.close())
  const r = await sink.write(rows, signal())
  t.same(r.accepted, rows.map((x) => x.id))
  t.same(r.rejected, [])
  t.equal((await small.select(db)).length, 600)
})

t.test('the sink byte cap splits a batch before the server has to refuse it', async (t) => {
  const small = await startInfluxd(t, { maxBodySize: 4096 })
  const db = await small.createDatabase('ferry')
  const rows = makeRows(300, { spacingMs: 1000 })
  // Uncompressed so the cap maps directly onto the server's Content-Length check.
  const sink = createInfluxSink(cfg({ FERRY_INFLUX_URL: small.url, FERRY_INFLUX_DB: db, FERRY_INFLUX_GZIP: 'false', FERRY_INFLUX_MAX_BODY_BYTES: '4000' }))
  t.teardown(() => sink.close())
  const r = await sink.write(rows, signal())
  t.same(r.accepted, rows.map((x) => x.id))
  t.equal((await small.select(db)).length, 300)
})

t.test('a database that does not exist is retryable (404, class target_missing), never dropped and never a stop', async (t) => {
  const sink = createInfluxSink(cfg({ FERRY_INFLUX_URL: influxd.url, FERRY_INFLUX_DB: 'missing_db' }))
  t.teardown(() => sink.close())
  const rows = makeRows(3)
  const r = await sink.write(rows, signal())
  t.same(r.retryable, rows.map((x) => x.id))
  t.equal(r.errorClass, 'target_missing')
  t.notOk(r.authError)
  t.match(r.errorMessage, /database not found.*CREATE DATABASE/)
})

t.test('a server that is gone makes write throw (the drainer retries), with nothing settled', async (t) => {
  const gone = await startInfluxd(t)
  const db = await gone.createDatabase('ferry')
  const sink = createInfluxSink(cfg({ FERRY_INFLUX_URL: gone.url, FERRY_INFLUX_DB: db, FERRY_INFLUX_TIMEOUT_MS: '2000' }))
  t.teardown(() => sink.close())
  t.same((await sink.write(makeRows(2), signal())).accepted, [1, 2], 'control: delivered while up')
  await gone.stop()
  await t.rejects(sink.write(makeRows(2, { firstId: 3 }), signal()), { code: 'FERRY_ERR_SINK', message: /InfluxDB request POST .*\/write failed: .*retried/ })
})

t.test('healthcheck answers true against a live influxd', async (t) => {
  const sink = createInfluxSink(cfg({ FERRY_INFLUX_URL: influxd.url }))
  t.teardown(() => sink.close())
  t.equal(await sink.healthcheck(signal()), true)
})
