/** A value of the HOCON subset read here: a string (quoted or bare), an array, or an object. */
export type HoconValue = string | HoconValue[] | { [key: string]: HoconValue }

type Token = { nl: true } | { str: string } | { word: string } | { punct: string }

/**
 * Reads the small subset of HOCON (https://github.com/lightbend/config/blob/main/HOCON.md) that
 * deploy/emqx/emqx.conf keeps to: `a.b.c = value`, `a.b { ... }`, values that are "quoted" or bare
 * words, `[arrays]` and `{inline objects}` with `,` or newlines between items, and `#` or `//`
 * comments. Returns every leaf under its full dotted path (`listeners.ssl.default.bind`); arrays are
 * leaves. Includes, substitutions, `+=` and multi-line strings throw: a file this reader cannot follow
 * fails the test rather than being misread.
 */
export function readHocon(text: string): Map<string, HoconValue> {
  const tokens = [...text.matchAll(/(?:#|\/\/)[^\n]*|[ \t\r]+|(\n)|"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_.\-:/@]+)|([{}[\]=,:])|(.)/g)]
    .filter((m) => m[1] !== undefined || m[2] !== undefined || m[3] !== undefined || m[4] !== undefined || m[5] !== undefined)
    .map((m): Token => {
      if (m[5] !== undefined) throw new Error(`HOCON: unsupported character ${JSON.stringify(m[5])}`)
      if (m[1] !== undefined) return { nl: true }
      if (m[2] !== undefined) return { str: m[2].replace(/\\(.)/g, '$1') }
      if (m[3] !== undefined) return { word: m[3] }
      return { punct: m[4]! }
    })
  let i = 0
  const skipNl = () => {
    while (tokens[i] && 'nl' in tokens[i]!) i++
  }
  const value = (): HoconValue => {
    skipNl()
    const t = tokens[i++]
    if (!t) throw new Error('HOCON: value expected at end of file')
    if ('str' in t) return t.str
    if ('word' in t) return t.word
    if ('punct' in t && t.punct === '{') return object('}')
    if ('punct' in t && t.punct === '[') {
      const items: HoconValue[] = []
      for (;;) {
        skipNl()
        if ((tokens[i] as { punct?: string } | undefined)?.punct === ']') {
          i++
          return items
        }
        items.push(value())
        skipNl()
        if ((tokens[i] as { punct?: string } | undefined)?.punct === ',') i++
      }
    }
    throw new Error(`HOCON: unexpected ${JSON.stringify(t)}`)
  }
  const object = (close: '}' | undefined): { [key: string]: HoconValue } => {
    const obj: { [key: string]: HoconValue } = {}
    for (;;) {
      skipNl()
      const t = tokens[i]
      if (!t) {
        if (close) throw new Error('HOCON: unclosed {')
        return obj
      }
      if ('punct' in t && t.punct === close) {
        i++
        return obj
      }
      if ('punct' in t && t.punct === ',') {
        i++
        continue
      }
      if (!('word' in t)) throw new Error(`HOCON: key expected, got ${JSON.stringify(t)}`)
      i++
      const path = t.word.split('.')
      const sep = tokens[i] as { punct?: string } | undefined
      if (sep?.punct === '=' || sep?.punct === ':') i++
      else if (sep?.punct !== '{') throw new Error(`HOCON: "=" or "{" expected after ${t.word}`)
      let target = obj
      for (const k of path.slice(0, -1)) target = (target[k] ??= {}) as { [key: string]: HoconValue }
      const last = path[path.length - 1]!
      const v = value()
      const old = target[last]
      // Objects given twice merge (HOCON §duplicate keys); anything else: the later one wins.
      target[last] = old && typeof old === 'object' && !Array.isArray(old) && typeof v === 'object' && !Array.isArray(v) ? { ...old, ...v } : v
    }
  }
  const flat = new Map<string, HoconValue>()
  const walk = (o: { [key: string]: HoconValue }, prefix: string) => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'object' && !Array.isArray(v)) walk(v, `${prefix}${k}.`)
      else flat.set(prefix + k, v)
    }
  }
  walk(object(undefined), '')
  return flat
}
