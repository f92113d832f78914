/** Runs `fn` with process.stdout silenced (CLI commands called in-process print their results). */
export async function quiet<T>(fn: () => Promise<T>): Promise<T> {
  const w = process.stdout.write
  process.stdout.write = (() => true) as typeof w
  try {
    return await fn()
  } finally {
    process.stdout.write = w
  }
}
