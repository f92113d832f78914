#!/usr/bin/env bash
# `npm test`: installs what is missing, builds, type-checks, lints, runs the firmware host tests and
# the ESP32 header check, and the whole tap suite. Any failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Firmware: the host tests (make), then the ESP32 header check. The check is
# ../shared/esp32-sdk/check.sh, found beside the repository root (CI puts a read-only copy of shared/
# next to its clone; check.sh extracts its headers into a temp dir, so the folder needs no write
# access) or in FERRY_ESP32_SDK=<dir> (relative paths from the repository root). It syntax-checks
# firmware/src against real Arduino-ESP32 3.0.4 / ESP-IDF 5.1 / arduino-mqtt 2.5.2 headers and
# cross-compiles lib/ferry_core with -Werror -Wconversion; as root it installs its Debian packages.
# Without the folder it is skipped with a note, since developers outside CI may not have it.
firmware_checks() {
  if [[ -f firmware/Makefile ]]; then
    echo "== firmware host tests" >&2
    make -C firmware test
  fi
  local sdk=${FERRY_ESP32_SDK:-../shared/esp32-sdk}
  if [[ ! -f $sdk/check.sh ]]; then
    if [[ -n ${FERRY_ESP32_SDK:-} ]]; then
      echo "esp32 header check: FAILED — FERRY_ESP32_SDK=$FERRY_ESP32_SDK has no check.sh" >&2
      return 1
    fi
    echo "esp32 header check: SKIPPED — ../shared/esp32-sdk not found (set FERRY_ESP32_SDK)" >&2
    return 0
  fi
  echo "== esp32 header check" >&2
  local start=$SECONDS
  if ! bash "$sdk/check.sh" firmware; then
    echo "esp32 header check: FAILED ($(cd "$sdk" && pwd)/check.sh)" >&2
    return 1
  fi
  echo "esp32 header check: passed in $((SECONDS - start)) s ($(cd "$sdk" && pwd))" >&2
}

bash scripts/bootstrap.sh
echo "== typecheck" >&2
npx tsc -p tsconfig.json
echo "== lint" >&2
npx eslint .
firmware_checks
echo "== tap" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
npx tap "$@" 2>&1 | tee "$log" || status=$?
# One plain summary line for CI: "N passed, N failed".
summary=$(grep -Eo '# \{ total: [0-9]+(, pass: [0-9]+)?(, fail: [0-9]+)?' "$log" | tail -n 1 || true)
passed=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary")
echo "${passed:-0} passed, ${failed:-0} failed"
if [[ $status -ne 0 || -z "$summary" || ${passed:-0} -eq 0 ]]; then
  echo "tap failed (exit $status)" >&2
  exit 1
fi
