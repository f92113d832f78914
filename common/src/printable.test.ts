import t from 'tap'
import { Writable } from 'node:stream'
import { RAW_CONTROL } from '../../test/helpers/cli-output.js'
import { createLogger } from './logger.js'
import { printable, printableJson, printableJsonText } from './printable.js'

t.test('control characters are shown as escapes, everything else as it is', async (t) => {
  t.equal(printable('\x1b[2J\x07\u009b31m'), '\\x1b[2J\\x07\\u009b31m', 'ESC, BEL and an 8-bit CSI')
  t.equal(printable('a\tb\r\nc\0\x7f'), 'a\\tb\\r\\nc\\x00\\x7f', 'tab, CR, LF by name; NUL and DEL in hex')
  t.equal(printable('evil\u202etxt.exe \u2066x\u2069 \u2028'), 'evil\\u202etxt.exe \\u2066x\\u2069 \\u2028', 'bidi overrides and separators')
  t.equal(printable('{"pot":1,"note":"a\\"b"} ünï 日本 🙂'), '{"pot":1,"note":"a\\"b"} ünï 日本 🙂', 'printable text, backslashes and non-ASCII are untouched')
  t.equal(printable('line 1\nline 2\x1b[0m\n', '\n'), 'line 1\nline 2\\x1b[0m\n', 'keep: newlines stay where they are structure')
  let all = ''
  for (let c = 0; c < 0x3000; c++) all += String.fromCharCode(c)
  t.notMatch(printable(all), RAW_CONTROL, 'nothing a terminal acts on is left')
  t.notMatch(printable(all), /[\n\t]/, 'not even a line or column break')
})

t.test('JSON: the result is the same value, with no raw control character in the text', async (t) => {
  const value = { payload: '\x1b[2J\x07\u009b\x7f\u202e', reason: 'ok' }
  const plain = JSON.stringify(value, null, 2)
  t.match(plain, /\u009b/, 'JSON.stringify alone leaves C1 raw')
  const safe = printableJson(value, 2)
  t.notMatch(safe, RAW_CONTROL, 'no raw control character besides the line breaks of the layout')
  t.same(JSON.parse(safe), value, 'parses back to the same value')
  t.equal(printableJsonText(plain), safe)
})

t.test('log lines: the same JSON, with no raw control character', async (t) => {
  const lines: string[] = []
  const log = createLogger({ level: 'info', destination: new Writable({ write: (chunk: Buffer, _e, cb) => cb(void lines.push(chunk.toString())) }) })
  const reason = 'sink said \x1b]0;owned\x07 \u009b2J \u202e'
  log.child({ component: 'drain' }).warn({ reason }, 'write refused')
  t.equal(lines.length, 1)
  t.notMatch(lines[0]!.trimEnd(), RAW_CONTROL, 'no raw control character')
  t.equal((JSON.parse(lines[0]!) as { reason: string }).reason, reason, 'the same value')
})
