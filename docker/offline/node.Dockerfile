# Offline stand-in for node:20-bookworm-slim, built by scripts/build-offline-images.sh
# when the image registry cannot be reached: a minimal Debian bookworm (debootstrap
# --variant=minbase) with this machine's Node 20 in /usr/local, and the `node` user
# (uid 1000) of the official image.
FROM scratch
ADD rootfs.tar /
LABEL org.opencontainers.image.description="offline stand-in for node:20-bookworm-slim (scripts/build-offline-images.sh)"
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["node"]
