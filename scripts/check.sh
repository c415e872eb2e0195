#!/usr/bin/env bash
# The project's one test command: installs what a fresh Debian machine lacks, then runs
# the type check, the linter, the generated-code check and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need_apt+=(etcd-client)
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
# The JSON gateway's reference client (test/http/etcd3gw.test.ts), for Debian's python.
/usr/bin/python3 -c 'import etcd3gw' >/dev/null 2>&1 || need_apt+=(python3-etcd3gw)
# The gRPC python client (test/compat/python-etcd3.test.ts), likewise.
/usr/bin/python3 -c 'import etcd3' >/dev/null 2>&1 || need_apt+=(python3-etcd3)
# Go and etcd's Go client library, clientv3 (test/compat/go-clientv3.test.ts), built from
# Debian's sources.
{ command -v go >/dev/null 2>&1 && [ -d /usr/share/gocode/src/go.etcd.io/etcd/clientv3 ]; } ||
  need_apt+=(golang-go golang-etcd-server-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Debian's etcd-server package starts a system etcd on 2379; the tests use their own ports,
# but a system service on the default port would confuse a developer's `npm start`.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
fi

# `npm ci` refuses a lock file that lacks the optional packages of other platforms, which a
# registry mirror serving only this platform cannot resolve; `npm install` honours the lock.
npm install --no-audit --no-fund
npm run typecheck
npm run lint
if npm run | grep -q 'proto:check'; then npm run proto:check; fi
npm test
