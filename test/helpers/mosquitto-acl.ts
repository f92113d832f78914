import { filterMatches } from './topic-match.js'

/** One `topic` or `pattern` line of a Mosquitto ACL file. */
export interface AclLine {
  access: 'read' | 'write' | 'readwrite' | 'deny'
  topic: string
}

/** A Mosquitto `acl_file`: the lines of each `user` block (by name), and the `pattern` lines. */
export interface MosquittoAcl {
  users: Map<string, AclLine[]>
  /** `topic` lines before the first `user` line: they apply to anonymous clients only. */
  anonymous: AclLine[]
  patterns: AclLine[]
}

function aclLine(words: string[], raw: string): AclLine {
  // `topic [read|write|readwrite|deny] <topic>`; the access word is optional (readwrite).
  const [first, ...rest] = words
  if (first === 'read' || first === 'write' || first === 'readwrite' || first === 'deny') return { access: first, topic: rest.join(' ') }
  if (first === undefined) throw new Error(`ACL line without a topic: ${raw}`)
  return { access: 'readwrite', topic: words.join(' ') }
}

/** Parses the syntax of mosquitto.conf(5) `acl_file`: `user`, `topic`, `pattern` and `#` comments. */
export function parseMosquittoAcl(text: string): MosquittoAcl {
  const acl: MosquittoAcl = { users: new Map(), anonymous: [], patterns: [] }
  let current: AclLine[] = acl.anonymous
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const [keyword, ...words] = line.split(/\s+/)
    if (keyword === 'user') {
      const name = words.join(' ')
      if (acl.users.has(name)) throw new Error(`user ${name} has two blocks`)
      current = []
      acl.users.set(name, current)
    } else if (keyword === 'topic') current.push(aclLine(words, raw))
    else if (keyword === 'pattern') acl.patterns.push(aclLine(words, raw))
    else throw new Error(`unknown ACL line: ${raw}`)
  }
  return acl
}

/**
 * Whether Mosquitto 2.0's default ACL check lets certificate identity `user` (username and client id
 * alike, as use_identity_as_username + use_username_as_clientid make them) read or write `topic`:
 * deny lines first, then the user's grants, then the patterns with %u and %c filled in.
 */
export function mosquittoAllows(acl: MosquittoAcl, user: string, want: 'read' | 'write', topic: string): boolean {
  const own = acl.users.get(user) ?? []
  const patterns = acl.patterns.map((p) => ({ ...p, topic: p.topic.replaceAll('%u', user).replaceAll('%c', user) }))
  const all = [...own, ...patterns]
  if (all.some((l) => l.access === 'deny' && filterMatches(l.topic, topic))) return false
  return all.some((l) => (l.access === want || l.access === 'readwrite') && filterMatches(l.topic, topic))
}
