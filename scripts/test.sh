#!/usr/bin/env bash
# `npm test`: installs what is missing, builds, type-checks, lints, runs the firmware host tests
# and the whole tap suite. Any failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "== typecheck" >&2
npx tsc -p tsconfig.json
echo "== lint" >&2
npx eslint .
if [[ -f firmware/Makefile ]]; then
  echo "== firmware host tests" >&2
  make -C firmware test
fi
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
