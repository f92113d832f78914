#!/usr/bin/env bash
# TEST SCAFFOLDING: makes sure a Docker engine answers, starting Debian's dockerd when none does (CI
# machines start with no services running). Installs docker.io when root and it is missing.
set -euo pipefail
docker=$(command -v /usr/bin/docker || command -v docker || true)
up() { [[ -n $docker ]] && "$docker" info >/dev/null 2>&1; }
up && exit 0
if [[ $(id -u) != 0 ]]; then
  echo "dockerd: no Docker engine answers, and only root can start one here" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null; then
  echo "dockerd: installing docker.io" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2; }
  docker=/usr/bin/docker
fi
# A service manager, when there is one; otherwise start the daemon ourselves, detached, logging to a file.
if command -v systemctl >/dev/null && systemctl start docker >/dev/null 2>&1 && up; then exit 0; fi
pidfile=/var/run/docker.pid
if [[ -s $pidfile ]] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then rm -f "$pidfile"; fi
log=/var/log/ferry-dockerd.log
echo "dockerd: starting (log: $log)" >&2
setsid dockerd >>"$log" 2>&1 </dev/null &
for _ in $(seq 120); do
  up && exit 0
  sleep 0.5
done
echo "dockerd: the daemon did not answer within 60 s; last lines of $log:" >&2
tail -n 20 "$log" >&2
exit 1
