/**
 * Runs a sub-command's `run(argv)` (gateway/src/*-cli.ts) in this process and captures what it
 * writes. Only what it writes before its first `await` is captured: the status and dlq commands do
 * all their work synchronously.
 */
export async function captureRun(run: (argv: string[]) => Promise<number>, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const write = { out: process.stdout.write, err: process.stderr.write }
  process.stdout.write = ((s: string) => ((stdout += s), true)) as typeof process.stdout.write
  process.stderr.write = ((s: string) => ((stderr += s), true)) as typeof process.stderr.write
  let p: Promise<number>
  try {
    p = run(argv)
  } finally {
    process.stdout.write = write.out
    process.stderr.write = write.err
  }
  return { code: await p, stdout, stderr }
}

/** Any character a terminal may act on: C0 (but the line and column breaks), DEL, C1, bidi controls, U+2028/9. */
// eslint-disable-next-line no-control-regex -- looking for control characters is the point
export const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/
