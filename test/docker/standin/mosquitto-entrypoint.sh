#!/bin/sh
# TEST SCAFFOLDING (see build.sh): the eclipse-mosquitto image's entry point.
set -e
if [ "$(id -u)" = '0' ]; then
  [ -d /mosquitto ] && chown -R mosquitto:mosquitto /mosquitto 2>/dev/null || true
fi
exec "$@"
