#!/usr/bin/env bash
# Installs what Ferry needs on a fresh Debian 12 machine that has only Node >= 20.18:
# Debian packages (when root and missing), npm dependencies (npm ci when node_modules is missing or
# older than the lock file), and the TypeScript build. Safe to run again; does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suite and the demo run for real. FERRY_SKIP_APT=1 skips this step.
# docker.io and debootstrap: the image test builds and runs the real images (test/docker/).
# libnss3-tools (certutil): the dashboard test makes Chromium trust the test CA (test/helpers/browser.ts).
APT_PACKAGES=(mosquitto mosquitto-clients openssl curl influxdb libmbedtls-dev doctest-dev g++ make docker.io docker-compose debootstrap chromium libnss3-tools)
if [[ "${FERRY_SKIP_APT:-0}" != 1 ]] && command -v dpkg-query >/dev/null; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]]; then
      echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    else
      echo "bootstrap: missing Debian packages (run as root or install them): ${missing[*]}" >&2
    fi
  fi
  # The Debian packages start system services we do not want holding ports; Ferry starts its own.
  if [[ $(id -u) == 0 ]] && command -v systemctl >/dev/null; then
    systemctl stop mosquitto influxdb >/dev/null 2>&1 || true
  fi
fi

if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "bootstrap: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi

if [[ ! -f dist/cli/ferry.js ]] || [[ -n "$(find common gateway ota-server cli scripts -name '*.ts' -newer dist/cli/ferry.js -print -quit 2>/dev/null)" ]]; then
  echo "bootstrap: building" >&2
  npm run --silent build >&2
fi
