#!/usr/bin/env bash
# Builds etcd's own benchmark tool (tools/benchmark of the etcd release Debian ships, 3.4.23)
# from Debian packages only: Go and the etcd library sources come from apt, the tool's own
# directory from Debian's etcd source package (golang-etcd-server-dev ships the libraries but
# not tools/benchmark). GOPATH-mode build, no Go module proxy.
#
#   OUT=<path>        where the binary goes (default ~/.cache/etcd-bench/bin/etcd-benchmark)
#   BUILD_DIR=<dir>   downloads and build tree (default <cache>/etcd-bench/build)
#
# Installing the packages needs root (or sudo); downloading the source package does not. The
# system's apt sources are left untouched: the deb-src line is in a private list in BUILD_DIR.
set -euo pipefail

CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/etcd-bench
OUT=${OUT:-$CACHE/bin/etcd-benchmark}
BUILD_DIR=${BUILD_DIR:-$CACHE/build}
SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)

export DEBIAN_FRONTEND=noninteractive
# golang-etcd-server-dev depends on every Go library package the tool imports (clientv3, cobra,
# x/time/rate, cheggaaa/pb, grpc, ...).
PKGS=(golang-go golang-etcd-server-dev)
installed() { [ "$(dpkg-query -W -f='${Status}\n' "${PKGS[@]}" 2>/dev/null | grep -c 'install ok installed')" -eq "${#PKGS[@]}" ]; }
if ! installed; then
  APT_INSTALL=("${SUDO[@]}" apt-get install -y -o DPkg::Lock::Timeout=600 "${PKGS[@]}")
  "${APT_INSTALL[@]}" >/dev/null || { "${SUDO[@]}" apt-get update >/dev/null && "${APT_INSTALL[@]}" >/dev/null; }
fi

# The source package version that matches the installed library sources.
VERSION=$(dpkg-query -W -f='${Version}' golang-etcd-server-dev)
UPSTREAM=${VERSION%%-*}
SRC=$BUILD_DIR/src/etcd-$UPSTREAM

if [ ! -d "$SRC/tools/benchmark" ]; then
  APT_DIR=$BUILD_DIR/apt
  mkdir -p "$APT_DIR/lists/partial" "$BUILD_DIR/src"
  echo "deb-src $MIRROR $SUITE main" >"$APT_DIR/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
    -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")
  # As root, apt drops to the _apt user, who cannot write into BUILD_DIR; download as root instead.
  [ "$(id -u)" -ne 0 ] || APT_OPTS+=(-o "APT::Sandbox::User=root")
  apt-get "${APT_OPTS[@]}" update >/dev/null
  (cd "$BUILD_DIR/src" && apt-get "${APT_OPTS[@]}" source --download-only "etcd=$VERSION" >/dev/null)
  tar -xzf "$BUILD_DIR/src/etcd_$UPSTREAM.orig.tar.gz" -C "$BUILD_DIR/src"
fi
[ -d "$SRC/tools/benchmark" ] || { echo "build-benchmark: $SRC/tools/benchmark not found" >&2; exit 1; }

# GOPATH mode: a private GOPATH holding only tools/benchmark, then Debian's Go sources.
GOPATH_DIR=$BUILD_DIR/gopath
PKG=$GOPATH_DIR/src/go.etcd.io/etcd/tools/benchmark
rm -rf "$PKG"
mkdir -p "$(dirname "$PKG")" "$(dirname "$OUT")"
cp -r "$SRC/tools/benchmark" "$PKG"

export GO111MODULE=off GOPATH=$GOPATH_DIR:/usr/share/gocode GOPROXY=off GOSUMDB=off GOFLAGS= GOTOOLCHAIN=local
export GOCACHE=${GOCACHE:-$CACHE/gocache}
(cd "$PKG" && go build -o "$OUT.tmp" .)
mv "$OUT.tmp" "$OUT"
"$OUT" --help >/dev/null
echo "build-benchmark: built $OUT from etcd $VERSION with $(go version)"
