# Offline stand-in for ghcr.io/spiffe/spire-agent:$SPIRE_VERSION (.env), built by
# scripts/build-offline-images.sh when the image registry cannot be reached. Laid out like
# the official image: FROM scratch (no shell), the static binary, CA certificates, the
# same folders, user and entry point.
FROM scratch
COPY agent-root/ /
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY spire-agent /opt/spire/bin/spire-agent
ARG SPIRE_VERSION
LABEL org.opencontainers.image.description="offline stand-in for ghcr.io/spiffe/spire-agent:${SPIRE_VERSION} (scripts/build-offline-images.sh)"
USER 0:0
WORKDIR /opt/spire
ENTRYPOINT ["/opt/spire/bin/spire-agent", "run"]
CMD []
