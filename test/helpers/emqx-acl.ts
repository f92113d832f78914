import { filterMatches } from './topic-match.js'

/** An Erlang term as EMQX's acl.conf uses them: strings, atoms, lists and tuples. */
export type Term = string | { atom: string } | Term[] | { tuple: Term[] }

const isAtom = (t: Term | undefined, name?: string): t is { atom: string } => typeof t === 'object' && t !== null && 'atom' in t && (name === undefined || t.atom === name)
const isTuple = (t: Term | undefined): t is { tuple: Term[] } => typeof t === 'object' && t !== null && 'tuple' in t

/**
 * Reads a file of Erlang terms, each ending with `.` (what `file:consult/1` accepts), restricted to
 * what acl.conf needs: atoms (bare or 'quoted'), "strings", [lists], {tuples} and `%` comments.
 * Anything else throws, so a construct this reader does not know fails the test instead of being
 * misread.
 */
export function parseErlangTerms(text: string): Term[] {
  const tokens = [...text.matchAll(/%[^\n]*|\s+|"((?:[^"\\]|\\.)*)"|'([^']*)'|([a-z][A-Za-z0-9_@]*)|([{}[\],.])|(.)/g)]
    .filter((m) => !/^(%|\s)/.test(m[0]))
  let i = 0
  const next = () => {
    const m = tokens[i++]
    if (!m) throw new Error('acl.conf ends in the middle of a term')
    if (m[5] !== undefined) throw new Error(`unexpected character ${JSON.stringify(m[5])} in acl.conf`)
    return m
  }
  const term = (): Term => {
    const m = next()
    if (m[1] !== undefined) return m[1].replace(/\\(.)/g, '$1')
    if (m[2] !== undefined) return { atom: m[2] }
    if (m[3] !== undefined) return { atom: m[3] }
    if (m[4] === '{' || m[4] === '[') {
      const close = m[4] === '{' ? '}' : ']'
      const items: Term[] = []
      if (tokens[i]?.[4] === close) i++
      else {
        for (;;) {
          items.push(term())
          const sep = next()[4]
          if (sep === close) break
          if (sep !== ',') throw new Error(`expected "," or "${close}" in acl.conf`)
        }
      }
      return m[4] === '{' ? { tuple: items } : items
    }
    throw new Error(`unexpected ${JSON.stringify(m[0])} in acl.conf`)
  }
  const out: Term[] = []
  while (i < tokens.length) {
    out.push(term())
    if (next()[4] !== '.') throw new Error('every term in acl.conf must end with "."')
  }
  return out
}

export interface EmqxClient {
  username: string
  clientid: string
}

function whoMatches(who: Term | undefined, c: EmqxClient): boolean {
  if (isAtom(who, 'all')) return true
  if (!isTuple(who)) throw new Error(`unknown client spec ${JSON.stringify(who)}`)
  const [kind, value] = who.tuple
  if (isAtom(kind, 'username') || isAtom(kind, 'user')) return value === c.username
  if (isAtom(kind, 'clientid') || isAtom(kind, 'client')) return value === c.clientid
  if (isAtom(kind, 'or') && Array.isArray(value)) return value.some((v) => whoMatches(v, c))
  if (isAtom(kind, 'and') && Array.isArray(value)) return value.every((v) => whoMatches(v, c))
  throw new Error(`unsupported client spec ${JSON.stringify(who)} (this reader knows all, username, clientid, or, and)`)
}

/** The "real" topic EMQX authorizes for a shared subscription: `$share/<group>/<filter>` → `<filter>`. */
export function realTopic(topic: string): string {
  const m = /^\$share\/[^/]+\/(.+)$/.exec(topic)
  return m ? m[1]! : topic
}

/**
 * EMQX's file authorizer for one request (docs: access-control/authz/file): the first rule whose
 * client spec, action and topic match decides; `{allow|deny, all}` matches everything; no match
 * falls to `noMatch` (authorization.no_match). Topic patterns may use ${username} and ${clientid};
 * `{eq, T}` matches T literally. A SUBSCRIBE is checked on its filter, a shared one without its
 * `$share/<group>/` prefix.
 */
export function emqxAuthorize(rules: Term[], c: EmqxClient, action: 'publish' | 'subscribe', topic: string, noMatch: 'allow' | 'deny'): 'allow' | 'deny' {
  const wanted = action === 'subscribe' ? realTopic(topic) : topic
  for (const rule of rules) {
    if (!isTuple(rule)) throw new Error(`a rule must be a tuple: ${JSON.stringify(rule)}`)
    const [perm, who, act, topics] = rule.tuple
    if (!isAtom(perm, 'allow') && !isAtom(perm, 'deny')) throw new Error(`a rule starts with allow or deny: ${JSON.stringify(rule)}`)
    if (rule.tuple.length === 2 && isAtom(who, 'all')) return perm.atom as 'allow' | 'deny'
    if (rule.tuple.length !== 4 || !Array.isArray(topics)) throw new Error(`a rule is {Permission, Who, Action, Topics}: ${JSON.stringify(rule)}`)
    if (!whoMatches(who, c)) continue
    if (!(isAtom(act, 'all') || isAtom(act, action))) {
      if (!isAtom(act, 'publish') && !isAtom(act, 'subscribe')) throw new Error(`unsupported action ${JSON.stringify(act)}`)
      continue
    }
    const hit = topics.some((t) => {
      if (typeof t === 'string') return filterMatches(t.replaceAll('${username}', c.username).replaceAll('${clientid}', c.clientid), wanted)
      if (isTuple(t) && isAtom(t.tuple[0], 'eq') && typeof t.tuple[1] === 'string') return t.tuple[1] === wanted
      throw new Error(`unsupported topic pattern ${JSON.stringify(t)}`)
    })
    if (hit) return perm.atom as 'allow' | 'deny'
  }
  return noMatch
}
