#!/usr/bin/env bash
# `npm run test:arm64`: builds the project's Dockerfile for linux/arm64 (the Raspberry Pi 4) under qemu
# and runs the compose stack test (test/docker/compose-stack.test.ts) on that image. Slow (~20 min: the
# SQLite binding compiles under emulation), so not part of `npm test`; run it after changing the
# Dockerfile, the dependencies or the compose file. Prints the build time and the image size.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [[ $(id -u) == 0 ]] && ! dpkg-query -W -f='${Status}' qemu-user-static 2>/dev/null | grep -q "install ok installed"; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static binfmt-support >&2
fi
bash test/docker/dockerd.sh
docker=$(command -v /usr/bin/docker || command -v docker)
bash test/docker/standin/build.sh amd64   # the broker stand-in runs natively beside the arm64 services
bash test/docker/standin/build.sh arm64
tag=${FERRY_ARM64_TAG:-arm64}
start=$(date +%s)
"$docker" build --platform linux/arm64 --build-arg NODE_IMAGE=ferry-standin/node:22-bookworm-slim-arm64 \
  -t "ferry:$tag" . >"${TMPDIR:-/tmp}/ferry-arm64-build.log" 2>&1 \
  || { tail -40 "${TMPDIR:-/tmp}/ferry-arm64-build.log" >&2; exit 1; }
built=$(($(date +%s) - start))
arch=$("$docker" image inspect -f '{{.Architecture}}' "ferry:$tag")
size=$("$docker" image inspect -f '{{.Size}}' "ferry:$tag")
echo "arm64: built ferry:$tag in ${built} s; architecture $arch; size $((size / 1000000)) MB" >&2
[[ $arch == arm64 ]] || { echo "arm64: the image is $arch, not arm64" >&2; exit 1; }
FERRY_STACK_IMAGE_TAG=$tag npx tap --timeout 3600 test/docker/compose-stack.test.ts
