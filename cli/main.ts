// Runs the `ferry` CLI from the TypeScript sources (tests and development: node --import tsx cli/main.ts ...).
import { main } from './ferry.js'

const code = await main(process.argv.slice(2))
// Exit explicitly: a long-running command has already closed what it owns, and a stray handle
// (a socket in TIME_WAIT teardown, a timer in a dependency) must not keep the process alive.
process.exit(code)
