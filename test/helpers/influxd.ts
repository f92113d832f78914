import { startLocalInfluxd, type InfluxdOptions, type LocalInfluxd } from '../../common/src/influxd.js'
import { tempDir } from './tmp.js'

export type { QueryResult } from '../../common/src/influxd.js'
export type TestInfluxd = LocalInfluxd

interface T {
  teardown(fn: () => unknown): void
}

/** A real influxd 1.x in a temp folder, stopped at teardown (see common/src/influxd.ts). */
export async function startInfluxd(t: T, opts: Omit<InfluxdOptions, 'dir'> = {}): Promise<TestInfluxd> {
  const influx = await startLocalInfluxd({ ...opts, dir: tempDir(t, 'ferry-influxd-') })
  t.teardown(() => influx.stop())
  return influx
}
