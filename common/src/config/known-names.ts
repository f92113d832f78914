import type { TObject } from 'typebox'

/**
 * `FERRY_` names that some Ferry program reads but that are not in a service's config schema. With the
 * gateway's and the OTA server's schemas they make up every name a Ferry program knows: anything else
 * found in the environment or the dotenv file is reported at start as an unknown setting (a typo such as
 * `FERRY_SINKZ` would otherwise be ignored without a word). `known-names.test.ts` fails when
 * docker-compose.yml or a program in this repository reads a `FERRY_` name that is missing here.
 *
 * Not here on purpose: the firmware's `FERRY_*` macros (FERRY_MQTT_HOST, FERRY_OTA_URL, FERRY_LED_PIN…)
 * are compile-time constants in firmware/include, never read from an environment, and the `FERRY_ERR_*`
 * names are error codes.
 */
export const OTHER_KNOWN_NAMES = {
  /** loadEnv itself: which dotenv file to read (default ./.env). */
  loader: ['FERRY_ENV_FILE'],
  /**
   * Host-side settings that docker-compose.yml reads from .env for itself (ports, bind-mount folders,
   * the image tag, Grafana's password). Compose also hands the whole .env to both containers
   * (`env_file: .env`), so the gateway and the OTA server see these names too.
   */
  compose: [
    'FERRY_HOST_PKI_DIR',
    'FERRY_HOST_OTA_DIR',
    'FERRY_PUBLISH_HTTP',
    'FERRY_PUBLISH_OTA',
    'FERRY_PUBLISH_MQTT',
    'FERRY_PUBLISH_GRAFANA',
    'FERRY_GRAFANA_ADMIN_PASSWORD',
    'FERRY_IMAGE_TAG',
  ],
  /** scripts/bootstrap.sh (npm test, npm run demo, npm run bench): skip the Debian packages step. */
  bootstrap: ['FERRY_SKIP_APT'],
  /**
   * Knobs of the benchmark harness (bench/) and of the tests (the dashboard test's browser, the Compose
   * stack test's prebuilt image and scripts/test-arm64.sh's tag for it, the stand-in images of
   * test/docker/standin/build.sh, scripts/test.sh's ESP32 header-check folder), exported in the shell
   * that then starts the gateway or the OTA server as a child with the same environment.
   */
  benchAndTests: [
    'FERRY_BENCH_NODE_ARGS',
    'FERRY_BENCH_TRACE',
    'FERRY_SKIP_BENCH_INSTALL',
    'FERRY_CHROMIUM',
    'FERRY_STACK_IMAGE_TAG',
    'FERRY_ARM64_TAG',
    'FERRY_STANDIN_CACHE',
    'FERRY_STANDIN_MIRROR',
    'FERRY_ESP32_SDK',
  ],
} as const

/**
 * Every `FERRY_` name a Ferry program reads: the given config schemas (pass both services' schemas:
 * under docker-compose they read the same .env) plus OTHER_KNOWN_NAMES.
 */
export function knownSettingNames(schemas: readonly TObject[]): Set<string> {
  const names = new Set<string>(Object.values(OTHER_KNOWN_NAMES).flat())
  for (const s of schemas) for (const name of Object.keys(s.properties)) names.add(name)
  return names
}
