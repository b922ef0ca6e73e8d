# Image of one workload host of the tutorial (broker-webapp or stock-quotes-service): the
# Node service, running as its own non-root user, plus a SPIRE Agent that
# 1-start-spire-agents.sh starts inside the container with `compose exec`.
# Built by `./build.sh --mode docker` after it compiled the TypeScript on the host.
# SPIRE_VERSION comes from .env through docker-compose.yml; there is no default, so that a
# build that does not pass it fails instead of using another release.
ARG SPIRE_VERSION

FROM ghcr.io/spiffe/spire-agent:${SPIRE_VERSION} AS spire

# The production dependencies, installed in a stage of their own so that the optional
# extra CA bundle (docker/build-ca/README.md) never reaches the final image.
FROM node:20-bookworm-slim AS dependencies
ARG SERVICE
WORKDIR /app
COPY package.json package-lock.json ./
COPY spiffe/package.json spiffe/
COPY service-kit/package.json service-kit/
COPY stock-quotes-service/package.json stock-quotes-service/
COPY broker-webapp/package.json broker-webapp/
COPY docker/build-ca/ /tmp/build-ca/
RUN test -n "$SERVICE" \
  && if [ -s /tmp/build-ca/extra-ca.pem ]; then export NODE_EXTRA_CA_CERTS=/tmp/build-ca/extra-ca.pem; fi \
  && npm ci --omit=dev --no-audit --no-fund --workspace spiffe --workspace service-kit \
    --workspace "$SERVICE" \
  && npm cache clean --force

FROM node:20-bookworm-slim
# SERVICE: the npm workspace to run; SERVICE_USER: the unix user the registration entry
# selects (unix:user:webapp or unix:user:quotes-service).
ARG SERVICE
ARG SERVICE_USER
RUN test -n "$SERVICE" && test -n "$SERVICE_USER" \
  && useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SERVICE_USER"

# The official release binary (statically linked).
COPY --from=spire /opt/spire/bin/spire-agent /opt/spire/bin/spire-agent
COPY docker/${SERVICE}/agent.conf /opt/spire/conf/agent/agent.conf
RUN mkdir -p /opt/spire/data/agent

WORKDIR /app
COPY --from=dependencies /app ./
COPY spiffe/proto spiffe/proto
COPY spiffe/dist spiffe/dist
COPY service-kit/dist service-kit/dist
COPY ${SERVICE}/dist ${SERVICE}/dist

ENV SERVICE=${SERVICE}
USER ${SERVICE_USER}
# docker-compose.yml gives the flags; this default names the entry point, with the young
# generation size the launchers use (see the services' READMEs, "Memory and CPU under load").
CMD ["sh", "-c", "exec node --max-semi-space-size=4 --heap-growing-percent=10 \"/app/$SERVICE/dist/main.js\""]
