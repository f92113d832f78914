# Ferry gateway and OTA server: one image, two commands (`gateway`, `ota-server`; see docker-compose.yml).
#
# Targets linux/arm64 (Raspberry Pi 4/5 with a 64-bit OS) and linux/amd64. On the Pi itself a plain
# `docker compose build` is enough; to build both on a workstation:
#   docker buildx build --platform linux/arm64,linux/amd64 -t ferry:0.1.0 .
#
# Certificates, keys and .env never enter the image: they are mounted at run time (docker-compose.yml),
# and .dockerignore admits only the sources needed to build, so a key lying in the checkout cannot be
# copied in by accident.

# Node 22 LTS on Debian 12, slim variant, published for amd64 and arm64. Both stages use the same image
# so the native SQLite binding compiled in `build` matches the Node ABI, libc and CPU of `runtime`.
# For a release, pin the digest: --build-arg NODE_IMAGE=node:22-bookworm-slim@sha256:<digest>
ARG NODE_IMAGE=node:22-bookworm-slim

# ---- build: TypeScript and the native module -------------------------------------------------------
FROM ${NODE_IMAGE} AS build
# node-gyp needs python3, make and a C++ compiler for better-sqlite3; none of them reach the runtime.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app

# Dependencies first, so editing a source file does not reinstall them.
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` script would run tsc before the sources are copied. better-sqlite3 is
# the only dependency in the lock file with an install script, and it is built explicitly next.
RUN npm ci --ignore-scripts --no-audit --no-fund
# Compile the binding from source for this image instead of downloading a prebuilt binary, then load it
# once so a broken build fails here rather than when the gateway opens its buffer.
RUN npm_config_build_from_source=true npm rebuild better-sqlite3 \
 && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"

COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY cli ./cli
COPY common ./common
COPY gateway ./gateway
COPY ota-server ./ota-server
# The `ferry` command also carries the simulated device and the demo (tsconfig.build.json compiles them),
# so `docker compose exec gateway node bin/ferry.js device-sim …` works for a check on the Pi.
COPY device-sim ./device-sim
COPY scripts/demo.ts scripts/config-sections.ts ./scripts/
# Build, drop dev dependencies, and stage exactly what the runtime needs in /out: compiled JS, the
# launcher, production node_modules, and any non-TypeScript assets that live beside the sources (SQL
# migrations, static files), which tsc does not copy into dist/.
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
 && mkdir /out \
 && cp -r dist bin node_modules package.json package-lock.json /out/ \
 && find common gateway ota-server device-sim cli -type f ! -name '*.ts' -exec cp --parents {} /out/ \;

# ---- runtime ---------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="ferry" \
      org.opencontainers.image.description="Ferry gateway and OTA server" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
# Caps V8's old generation: left alone, it grows with a long backlog replay long before it collects
# (bench/README.md, backlog memory). The live heap after a collection stays near 20 MB.
# Caps each young-generation semi-space at 4 MB: Node 20+ sizes it from the host's memory (16 MB on a
# machine with more than 2 GB), and a full one stays resident; 4 MB saves 10-30 MB of RSS at no
# measurable CPU cost, where 2 MB and below (and --optimize-for-size) cost 20-60 % more CPU per replay.
ENV NODE_OPTIONS="--max-old-space-size=128 --max-semi-space-size=4"
# The package managers are not needed to run Ferry; removing them shrinks the attack surface and the
# list of components to track for advisories.
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
WORKDIR /app
# Owned by root and read-only to the service user: a compromised process cannot rewrite its own code.
COPY --from=build /out/ ./
# Writable state goes to named volumes, which inherit this ownership when first created:
# /var/lib/ferry (the buffer database) and /srv/ferry/ota (OTA reports; releases/ and images/ are
# read-only bind mounts over it). /run/ferry/pki is the mount point for the certificates.
RUN mkdir -p /var/lib/ferry /srv/ferry/ota /run/ferry/pki \
 && chown node:node /var/lib/ferry /srv/ferry/ota \
 && chmod 0700 /var/lib/ferry
# The base image's unprivileged `node` user (uid/gid 1000), numeric so that runtimes which insist on a
# non-root user (Kubernetes runAsNonRoot) can verify it.
USER 1000:1000
EXPOSE 8080 8443
ENTRYPOINT ["node", "bin/ferry.js"]
CMD ["gateway"]
