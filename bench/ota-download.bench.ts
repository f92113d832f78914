/**
 * OTA: firmware image download throughput over TLS.
 *
 * Ferry: `ferry ota-server` (a real process) serving an image published with `ferry ota publish`.
 * Baseline: nginx (one worker, like Ferry's one Node thread) serving the very same file with the same
 * server certificate and key. Both sides require a client certificate from the same CA
 * (`ssl_verify_client on` + the CRL for nginx), because the OTA server always does mutual TLS and a
 * benchmark without it would compare different work. That is also why the client is curl and not
 * wrk: wrk cannot present a client certificate. The same curl runs against both: each client process
 * downloads the image several times over one keep-alive connection (one handshake), several clients
 * at once stand for several devices updating together. Throughput = bytes received / wall time.
 */
import { randomBytes, createHash } from 'node:crypto'
import { mkdirSync, writeFileSync, copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { makePki, type TestPki } from '../test/helpers/pki.js'
import { freePort } from '../test/helpers/ports.js'
import { tempDir } from '../test/helpers/tmp.js'
import { run as ota } from '../ota-server/src/release-cli.js'
import { fmt, measure, result, withScope, type Result, type Scope } from './lib/harness.js'
import { start, startFerry, waitListening } from './lib/procs.js'
import type { Bench, BenchContext } from './lib/context.js'
import { quiet } from '../test/helpers/quiet.js'

const MB = 1_000_000

/** `clients` curl processes at once, each fetching `url` `times` times; returns MB/s over all of them. */
async function download(s: Scope, pki: TestPki, url: string, clients: number, times: number, size: number): Promise<number> {
  const f = pki.files
  const args = ['-sS', '--http1.1', '--cacert', f.caCert, '--cert', f.deviceCert('dev1'), '--key', f.deviceKey('dev1'), '-w', '%{http_code} %{size_download}\\n']
  for (let i = 0; i < times; i++) args.push('-o', '/dev/null', url)
  const started = performance.now()
  const procs = Array.from({ length: clients }, () => start(s, 'curl', args))
  const ends = await Promise.all(procs.map((p) => p.exited))
  const ms = performance.now() - started
  for (const [i, p] of procs.entries()) {
    const ok = p.lines.filter((l) => l === `200 ${size}`).length
    if (ends[i]!.code !== 0 || ok !== times) throw new Error(`curl download from ${url} failed (exit ${ends[i]!.code}, ${ok}/${times} complete): ${p.lines.slice(-3).join(' / ')}`)
  }
  return (clients * times * size) / MB / (ms / 1000)
}

async function startNginx(s: Scope, pki: TestPki, root: string, image: string): Promise<string> {
  const dir = tempDir(s, 'ferry-bench-nginx-')
  const port = await freePort()
  const f = pki.files
  mkdirSync(join(dir, 'www', 'ota', 'images'), { recursive: true })
  copyFileSync(join(root, 'ota', 'images', image), join(dir, 'www', 'ota', 'images', image))
  for (const [src, dst] of [[f.serverCert, 'server.crt'], [f.serverKey, 'server.key'], [f.caCert, 'ca.crt'], [f.crl, 'crl.pem']] as const) copyFileSync(src, join(dir, dst))
  const conf = `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp-body;
  proxy_temp_path ${dir}/tmp-proxy;
  fastcgi_temp_path ${dir}/tmp-fcgi;
  uwsgi_temp_path ${dir}/tmp-uwsgi;
  scgi_temp_path ${dir}/tmp-scgi;
  sendfile on;
  keepalive_requests 10000;
  server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;
    ssl_certificate ${dir}/server.crt;
    ssl_certificate_key ${dir}/server.key;
    ssl_client_certificate ${dir}/ca.crt;
    ssl_crl ${dir}/crl.pem;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    root ${dir}/www;
    location /ota/images/ { default_type application/octet-stream; }
  }
}
`
  writeFileSync(join(dir, 'nginx.conf'), conf)
  const nginx = start(s, 'nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir, '-e', join(dir, 'error.log')], { cores: 'ferry' }) // --cpus: stands in for the OTA server
  await waitListening(nginx, port, 10_000)
  return `https://localhost:${port}/ota/images/${image}`
}

async function run(ctx: BenchContext): Promise<Result[]> {
  const samples = ctx.quick ? 2 : 5
  const size = 1_500_000 // a typical ESP32 application image
  const times = ctx.quick ? 10 : 20
  // Both client counts in --quick too: every ratio issue 18 asks for is in a quick run's JSON.
  const concurrency = [1, 4]
  return withScope(async (s) => {
    const pki = await makePki(s, ['dev1'])
    const root = tempDir(s, 'ferry-bench-ota-')
    const img = randomBytes(size)
    const sha = createHash('sha256').update(img).digest('hex')
    writeFileSync(join(root, 'fw.bin'), img)
    await quiet(() => ota(['keygen', '--out', join(root, 'keys')]))
    await quiet(() => ota(['publish', join(root, 'fw.bin'), '--version', '2.0.0', '--hw', 'esp32dev', '--secure-version', '1', '--key', join(root, 'keys/release.key'), '--dir', join(root, 'ota')]))
    const port = await freePort()
    const server = startFerry(s, ['ota-server'], {
      FERRY_OTA_PORT: String(port),
      FERRY_OTA_HOST: '127.0.0.1',
      FERRY_OTA_DIR: join(root, 'ota'),
      FERRY_OTA_CERT: pki.files.serverCert,
      FERRY_OTA_KEY: pki.files.serverKey,
      FERRY_OTA_CA: pki.files.caCert,
      FERRY_OTA_CRL: pki.files.crl,
      FERRY_OTA_PUB: join(root, 'keys/release.pub'),
      FERRY_OTA_DOWNLOAD_RATE_LIMIT_MAX: '1000000',
      FERRY_OTA_MAX_DOWNLOADS: '64',
      // Every curl client presents dev1's certificate, standing for several devices.
      FERRY_OTA_MAX_DOWNLOADS_PER_DEVICE: '64',
      FERRY_LOG_LEVEL: 'warn',
      FERRY_ENV_FILE: join(root, 'no.env'),
    })
    await waitListening(server, port, 20_000)
    const ferryUrl = `https://localhost:${port}/ota/images/${sha}.bin`
    const nginxUrl = await startNginx(s, pki, root, `${sha}.bin`)
    // One download each first: the server hashes the image on its first open (then caches the check).
    await download(s, pki, ferryUrl, 1, 1, size)
    await download(s, pki, nginxUrl, 1, 1, size)
    const out: Result[] = []
    for (const clients of concurrency) {
      const base: number[] = []
      const ferry: number[] = []
      for (let i = 0; i < samples; i++) {
        base.push(await download(s, pki, nginxUrl, clients, times, size))
        ferry.push(await download(s, pki, ferryUrl, clients, times, size))
        ctx.log(`ota: ${clients} client(s) sample ${i + 1}/${samples} nginx ${fmt(base.at(-1))} MB/s, ferry ${fmt(ferry.at(-1))} MB/s`)
      }
      out.push(result({
        id: `ota.download-${clients}`,
        title: `${(size / MB).toFixed(1)} MB image over mutual TLS, ${clients} curl client${clients > 1 ? 's' : ''} × ${times} downloads on one keep-alive connection each`,
        unit: 'MB/s',
        ferry: measure(ferry),
        baseline: { name: 'nginx, same file and certificate', ...measure(base) },
        targets: [{ of: 'ratio', op: '>=', value: 0.8 }],
      }))
    }
    return out
  })
}

export const bench: Bench = { name: 'ota', description: 'OTA image download over mutual TLS vs nginx serving the same file', needs: ['nginx', 'curl'], onFerryCores: 'the OTA server and the baseline nginx (its master and worker); the curl clients on the others', run }
