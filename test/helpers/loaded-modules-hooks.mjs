// Module hooks of loaded-modules.mjs: appends each resolved ES module URL to the file it was given.
import { appendFileSync } from 'node:fs'

let out

export function initialize(data) {
  out = data.out
}

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context)
  appendFileSync(out, `${resolved.url}\n`)
  return resolved
}
