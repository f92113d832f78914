// The check that mosquitto, started as root and dropped to its own user, can reach its data folder:
// a fake /etc/passwd, /etc/group and stat(), so every case runs on any machine and as any user.
import t from 'tap'
import { assertBrokerCanReach, brokerReachProblem, lookupAccount, type HostView } from './broker.js'

const PASSWD = ['root:x:0:0:root:/root:/bin/bash', 'mosquitto:x:101:105::/var/lib/mosquitto:/usr/sbin/nologin', 'alice:x:1000:1000::/home/alice:/bin/bash', ''].join('\n')
const GROUP = ['root:x:0:', 'mosquitto:x:105:', 'alice:x:1000:', 'ferry:x:200:alice,mosquitto', 'other:x:300:alice', 'tail:x:400:alice, mosquitto', ''].join('\n')

type Stat = { mode: number; uid: number; gid: number; isDirectory?: boolean }

function view(tree: Record<string, Stat>, opts: { euid?: number; passwd?: string; group?: string } = {}): HostView {
  return {
    euid: opts.euid ?? 0,
    readText: (p) => (p === '/etc/passwd' ? (opts.passwd ?? PASSWD) : p === '/etc/group' ? (opts.group ?? GROUP) : ''),
    stat: (p) => {
      const s = tree[p]
      return s && { isDirectory: true, ...s }
    },
    realpath: (p) => p,
  }
}

const SYS = { '/': { mode: 0o755, uid: 0, gid: 0 }, '/srv': { mode: 0o755, uid: 0, gid: 0 }, '/tmp': { mode: 0o1777, uid: 0, gid: 0 } }

t.test('lookupAccount reads uid, primary gid and supplementary groups', async (t) => {
  t.same(lookupAccount('mosquitto', PASSWD, GROUP), { name: 'mosquitto', uid: 101, gid: 105, groups: [200, 400] })
  t.same(lookupAccount('alice', PASSWD, GROUP)?.groups, [200, 300, 400])
  t.equal(lookupAccount('nobody', PASSWD, GROUP), undefined)
  t.same(lookupAccount('mosquitto', PASSWD, '')?.groups, [], 'no /etc/group: no supplementary groups')
})

t.test('a root-owned 0700 home folder is reported with the first blocking folder and the chmod', async (t) => {
  const v = view({ ...SYS, '/root': { mode: 0o700, uid: 0, gid: 0 }, '/root/ferry': { mode: 0o755, uid: 0, gid: 0 } })
  const p = brokerReachProblem('/root/ferry/.ferry-demo/broker', v)
  t.ok(p)
  t.equal(p!.folder, '/root')
  t.equal(p!.fix, 'chmod o+x /root')
  t.equal(
    p!.message,
    'mosquitto runs as user mosquitto (uid 101) and cannot enter /root (mode 0700): choose a --data folder it can reach (e.g. /var/lib/ferry/broker) or allow it in: chmod o+x /root',
  )
  t.throws(() => assertBrokerCanReach('/root/ferry/x', v), { code: 'FERRY_ERR_BROKER', message: /cannot enter \/root \(mode 0700\).*chmod o\+x \/root/ })
})

t.test('the first blocking folder from / down is named, not a later one', async (t) => {
  const v = view({ ...SYS, '/srv/a': { mode: 0o750, uid: 0, gid: 0 }, '/srv/a/b': { mode: 0o700, uid: 0, gid: 0 } })
  t.equal(brokerReachProblem('/srv/a/b/data', v)?.folder, '/srv/a')
})

t.test('folders every user may enter, and folders not created yet, pass', async (t) => {
  const v = view({ ...SYS, '/srv/ferry': { mode: 0o711, uid: 0, gid: 0 } })
  t.equal(brokerReachProblem('/srv/ferry/broker', v), undefined, '--x for others is enough to pass through')
  t.equal(brokerReachProblem('/srv/ferry/not/yet/created', v), undefined)
  t.equal(brokerReachProblem('/tmp/ferry-test-1/data', view(SYS)), undefined)
})

t.test('group bits count for the primary group and for supplementary groups from /etc/group', async (t) => {
  const primary = view({ ...SYS, '/srv/m': { mode: 0o750, uid: 0, gid: 105 } })
  t.equal(brokerReachProblem('/srv/m/data', primary), undefined, 'primary group 105 has r-x')
  const supplementary = view({ ...SYS, '/srv/f': { mode: 0o750, uid: 0, gid: 200 } })
  t.equal(brokerReachProblem('/srv/f/data', supplementary), undefined, 'member of ferry (200)')
  const spaced = view({ ...SYS, '/srv/t': { mode: 0o710, uid: 0, gid: 400 } })
  t.equal(brokerReachProblem('/srv/t/data', spaced), undefined, 'member list with a space after the comma')
  const notMember = view({ ...SYS, '/srv/o': { mode: 0o750, uid: 0, gid: 300 } })
  const p = brokerReachProblem('/srv/o/data', notMember)
  t.equal(p?.folder, '/srv/o', 'not in group other (300)')
  t.equal(p?.fix, 'chmod o+x /srv/o')
  const noGroupFile = view({ ...SYS, '/srv/f': { mode: 0o750, uid: 0, gid: 200 } }, { group: '' })
  t.equal(brokerReachProblem('/srv/f/data', noGroupFile)?.folder, '/srv/f', 'without /etc/group the membership is unknown')
})

t.test('the class that applies is the only one that counts (owner, then group, then others)', async (t) => {
  const ownerNoX = view({ ...SYS, '/srv/own': { mode: 0o071, uid: 101, gid: 105 } })
  const p = brokerReachProblem('/srv/own/data', ownerNoX)
  t.equal(p?.folder, '/srv/own', 'owner without x is refused although group and others have x')
  t.equal(p?.fix, 'chmod u+x /srv/own')
  const groupNoX = view({ ...SYS, '/srv/grp': { mode: 0o701, uid: 0, gid: 200 } })
  t.equal(brokerReachProblem('/srv/grp/data', groupNoX)?.fix, 'chmod g+x /srv/grp', 'group member without group x is refused although others have x')
  const ownerX = view({ ...SYS, '/srv/mine': { mode: 0o700, uid: 101, gid: 105 } })
  t.equal(brokerReachProblem('/srv/mine/data', ownerX), undefined, 'a folder the user owns with u+x')
})

t.test('root rights do not count: a 0700 data folder itself is reported', async (t) => {
  const v = view({ ...SYS, '/srv/data': { mode: 0o700, uid: 0, gid: 0 } })
  t.equal(brokerReachProblem('/srv/data', v)?.fix, 'chmod o+x /srv/data')
})

t.test('no check when mosquitto does not change user', async (t) => {
  const tree = { ...SYS, '/root': { mode: 0o700, uid: 0, gid: 0 } }
  t.equal(brokerReachProblem('/root/x', view(tree, { euid: 1000 })), undefined, 'not root: mosquitto keeps our user')
  t.equal(brokerReachProblem('/root/x', view(tree, { passwd: 'root:x:0:0::/root:/bin/sh\n' })), undefined, 'no mosquitto user: it stays root')
  t.doesNotThrow(() => assertBrokerCanReach('/root/x', view(tree, { euid: 1000 })))
})

t.test('a path that is not a folder ends the walk (mkdir reports it)', async (t) => {
  const v = view({ ...SYS, '/srv/file': { mode: 0o600, uid: 0, gid: 0, isDirectory: false } })
  t.equal(brokerReachProblem('/srv/file/data', v), undefined)
})
