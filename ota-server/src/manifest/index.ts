/**
 * The OTA manifest library: build, sign (offline) and verify release envelopes. Used by the OTA
 * server, `ferry ota`, the device simulator and the firmware's test-vector generator.
 *
 * ```ts
 * import { generateReleaseKey, signManifest, verifyEnvelope } from './ota-server/src/manifest/index.js'
 * const key = generateReleaseKey()
 * const { envelope } = signManifest({ hw: 'esp32dev', version: '1.2.0', secureVersion: 1,
 *   image: { size, sha256 }, expires: Date.now() + 30 * 86400e3 }, key.privateKeyPem)
 * const { manifest } = verifyEnvelope(envelope, key.publicKeyPem, { hw: 'esp32dev', currentVersion: '1.1.0', secureVersion: 1 })
 * ```
 */
export * from './envelope.js'
export * from './errors.js'
export * from './keys.js'
export * from './report.js'
export * from './rollout.js'
export * from './semver.js'
export * from './sign.js'
export * from './verify.js'
