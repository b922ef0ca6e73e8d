# Offline stand-in for ghcr.io/spiffe/spire-server:$SPIRE_VERSION (.env), built by
# scripts/build-offline-images.sh when the image registry cannot be reached. Laid out like
# the official image: FROM scratch (no shell), the static binary, CA certificates, the
# same folders, user and entry point.
FROM scratch
COPY --chown=1000:1000 server-root/ /
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY spire-server /opt/spire/bin/spire-server
ARG SPIRE_VERSION
LABEL org.opencontainers.image.description="offline stand-in for ghcr.io/spiffe/spire-server:${SPIRE_VERSION} (scripts/build-offline-images.sh)"
USER 1000:1000
WORKDIR /opt/spire
ENTRYPOINT ["/opt/spire/bin/spire-server", "run"]
CMD []
