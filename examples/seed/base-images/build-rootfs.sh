#!/usr/bin/env bash
# Builds the root of every image of this example, dockyard/debian:bookworm-local, without Docker Hub:
# a Debian bookworm root file system made by debootstrap (--variant=minbase), loaded with
# `docker import`. It is what `debian:bookworm-slim` is, built on this machine.
#
# On a machine that can pull from Docker Hub you do not need this script: replace
# `FROM dockyard/debian:bookworm-local` with `FROM debian:bookworm-slim` in the Dockerfiles of
# base-images/ and everything works the same.
#
# Idempotent: does nothing when the image exists (pass --force to build it again).
# Needs root (debootstrap chroots), a Docker engine, and Debian's package mirror; installs
# debootstrap with apt-get when it is missing. About 30 s on a good connection.
#
#   sudo bash examples/seed/base-images/build-rootfs.sh [--force]
#
# Environment: SEED_ROOT_IMAGE (default dockyard/debian:bookworm-local),
#              SEED_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

image="${SEED_ROOT_IMAGE:-dockyard/debian:bookworm-local}"
mirror="${SEED_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

say() { printf '==> %s\n' "$*"; }

if [ "$force" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
  say "$image exists already (pass --force to build it again)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "debootstrap needs root: run this script with sudo" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  say "installing debootstrap"
  install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null 2>&1; }
  install || { apt-get update -q >/dev/null 2>&1 && install; } \
    || { echo "cannot install debootstrap: run apt-get install debootstrap" >&2; exit 1; }
fi

start=$(date +%s)
work="$(mktemp -d /tmp/seed-rootfs.XXXXXX)"
trap 'rm -rf --one-file-system "$work"' EXIT
root="$work/rootfs"

say "debootstrap --variant=minbase $suite ($mirror)"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# What the official image has: the three suites in deb822 form, and no caches.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# Like the official image: no recommends, no documentation, no caches kept by apt.
cat >"$root/etc/apt/apt.conf.d/90-container" <<'APT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/* "$root"/var/log/*.log
: >"$root/etc/hostname"
: >"$root/etc/resolv.conf"

say "docker import -> $image"
tar --numeric-owner -C "$root" -c . \
  | docker import --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --message "debootstrap --variant=minbase $suite" - "$image" >/dev/null
say "$image is ready ($(( $(date +%s) - start )) s)"
