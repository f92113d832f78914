# TEST SCAFFOLDING (see build.sh): stands in for node:22-bookworm-slim, which cannot be pulled here.
# Same layout as the official image: node and npm in /usr/local, user node with uid/gid 1000.
ARG BASE
FROM ${BASE}
ARG NODE_VERSION
ADD node.tar /
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
ENV NODE_VERSION=${NODE_VERSION}
CMD ["node"]
