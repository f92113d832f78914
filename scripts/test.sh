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
npx tap "$@"
