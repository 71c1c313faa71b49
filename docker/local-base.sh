#!/usr/bin/env bash
# A stand-in for python:3.11-slim-bookworm where no registry is reachable (our CI):
# Debian bookworm's own Python 3.11 in a debootstrapped root, imported into podman.
# Usage: docker/local-base.sh [IMAGE]   (default localhost/rationalyst-base:bookworm)
# Idempotent: the image is kept in podman's store and its root filesystem as a
# tarball under ~/.cache/rationalyst-ci, so only a fresh machine pays the ~2 minutes.
set -euo pipefail
IMAGE=${1:-localhost/rationalyst-base:bookworm}
CACHE=${RATIONALYST_CI_CACHE:-$HOME/.cache/rationalyst-ci}
TARBALL=$CACHE/bookworm-python3.11.tar
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)

if "${PODMAN[@]}" image exists "$IMAGE"; then
  exit 0
fi
if [ ! -s "$TARBALL" ]; then
  mkdir -p "$CACHE"
  root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,libnuma1,ca-certificates,curl \
    bookworm "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  # What python:3.11-slim offers and our Dockerfiles rely on: `python` and `pip`
  # on PATH, and pip allowed to install into the system interpreter (PEP 668 marks
  # Debian's as externally managed; this image is nothing but a base for ours).
  ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
  ln -sf /usr/bin/pip3 "$root/usr/local/bin/pip"
  rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -cf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
fi
"${PODMAN[@]}" import -q --change 'CMD ["python3"]' "$TARBALL" "$IMAGE" >/dev/null
