/**
 * MQTT topic-filter matching (MQTT 3.1.1 §4.7, MQTT 5 §4.7): `+` is one level, a trailing `#` is that
 * level and everything below it (including the parent), and a wildcard in the first level never
 * matches a topic that starts with `$`. The "topic" may itself be a filter: its `+` and `#` are then
 * plain words, matched only by a wildcard in `filter`. That is how both Mosquitto's ACL check and
 * EMQX's authorization of a SUBSCRIBE compare a rule's filter with what a client asks for.
 */
export function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i === f.length - 1
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}
