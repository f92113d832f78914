/**
 * Text that came from a device or a remote server (a dead letter's payload and reason, a sink's error
 * message, an OTA report), made safe to print on an operator's terminal. A device can put any byte in
 * its payload; printed raw, `ESC [ 2 J` clears the screen, `ESC ] … BEL` retitles the window or plants
 * a link, `U+009B` is an 8-bit CSI for terminals that honour C1, and so on. Each character below is
 * shown as an escape instead, so the operator sees exactly what was sent and the terminal obeys none
 * of it:
 *
 * - C0 controls U+0000..U+001F and DEL U+007F: `\x1b`, `\x07`, … (`\n`, `\r`, `\t` by their names);
 * - C1 controls U+0080..U+009F: `\u009b`, …;
 * - bidirectional overrides and isolates (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069),
 *   which reorder what the terminal shows, and the line and paragraph separators U+2028, U+2029.
 *
 * A backslash is left alone (JSON payloads are full of them), so `\x1b` typed by a device looks the
 * same as an escaped ESC; `--json` output has the exact text.
 */

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
/** What JSON.stringify leaves raw (it escapes only C0, `"` and `\`): DEL, C1, bidi controls, U+2028/9. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }

function escapeChar(c: string): string {
  const code = c.charCodeAt(0)
  return NAMED[c] ?? (code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`)
}

/**
 * `text` with every control character escaped (see above). `keep` lists characters that are structure
 * where this text is printed, e.g. `'\n'` for a multi-line message; a field in a line (a payload in
 * `ferry dlq list`) keeps nothing, so a device cannot start a line of its own.
 */
export function printable(text: string, keep = ''): string {
  return text.replace(UNSAFE, (c) => (keep.includes(c) ? c : escapeChar(c)))
}

/**
 * Escapes what JSON.stringify leaves raw, as `\uXXXX`: in JSON text these characters can only stand
 * inside strings, where the escape means the same character, so the result is the same JSON.
 */
export function printableJsonText(json: string): string {
  return json.replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** `JSON.stringify(value, null, space)`, safe for a terminal (see printableJsonText). */
export function printableJson(value: unknown, space?: number): string {
  return printableJsonText(JSON.stringify(value, null, space))
}
