#!/usr/bin/env node
// The `ferry` command. Runs the compiled TypeScript in dist/ (npm run build, done by npm test and npm run demo).
import { main } from '../dist/cli/ferry.js'

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`ferry: ${err?.stack ?? err}\n`)
    process.exit(1)
  },
)
