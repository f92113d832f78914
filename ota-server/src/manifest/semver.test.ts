import t from 'tap'
import { compareSemver, isSemver } from './semver.js'

t.test('orders versions by semver 2.0.0 precedence (spec §11 example chain)', async (t) => {
  const chain = ['1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-alpha.beta', '1.0.0-beta', '1.0.0-beta.2', '1.0.0-beta.11', '1.0.0-rc.1', '1.0.0', '1.0.1', '1.1.0', '1.10.0', '2.0.0']
  for (let i = 0; i < chain.length; i++) {
    for (let j = 0; j < chain.length; j++) {
      t.equal(compareSemver(chain[i]!, chain[j]!), Math.sign(i - j), `${chain[i]} vs ${chain[j]}`)
    }
  }
})

t.test('ignores build metadata when comparing', async (t) => {
  t.equal(compareSemver('1.2.3+a', '1.2.3+b'), 0)
  t.equal(compareSemver('1.2.3-rc.1+x', '1.2.3-rc.1'), 0)
})

t.test('compares numeric parts numerically, not as text', async (t) => {
  t.equal(compareSemver('1.9.0', '1.10.0'), -1)
  t.equal(compareSemver('10.0.0', '9.99.99'), 1)
})

t.test('refuses what is not semver', async (t) => {
  for (const bad of ['1.0', 'v1.0.0', '01.0.0', '1.0.0-', '1.0.0-01', '1.0.0+', '', ' 1.0.0', '1.0.0\n', '../1.0.0', '99999999999999999999.0.0', `1.0.0-${'a'.repeat(70)}`]) {
    t.notOk(isSemver(bad), JSON.stringify(bad))
  }
  t.throws(() => compareSemver('1.0', '1.0.0'), TypeError)
  for (const good of ['0.0.0', '1.2.3', '1.2.3-rc.1', '1.2.3+build.5', '1.0.0-x-y.7+z'])
    t.ok(isSemver(good), good)
})
