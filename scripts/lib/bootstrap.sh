#!/usr/bin/env bash
# Installs everything netd needs on Debian 12, then returns. Sourced by scripts/netd
# and scripts/test. Idempotent: a second run only checks and returns in well under a
# second (dpkg-query plus a stamp of pyproject.toml).
set -euo pipefail

NETD_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NETD_VENV=${NETD_VENV:-$NETD_ROOT/.venv}
export NETD_ROOT NETD_VENV

# Debian packages the daemon and its tests call: nft, ip, dig/nslookup, curl, ping,
# iperf3 (benchmarks), python3-venv (the virtualenv itself).
NETD_APT_PACKAGES=(nftables iproute2 dnsutils curl iputils-ping procps python3-venv iperf3)

_netd_log() { printf 'netd-bootstrap: %s\n' "$*" >&2; }

_netd_apt() {
  local missing=() p
  for p in "${NETD_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  if [ "$(id -u)" != 0 ]; then
    _netd_log "missing Debian packages (${missing[*]}); run as root to install them"
    return 1
  fi
  _netd_log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

_netd_python() {
  # Python >= 3.11: Debian 12's python3 is 3.11.
  local py
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$py"; return 0
    fi
  done
  _netd_log "no Python >= 3.11 found"; return 1
}

_netd_venv() {
  local stamp="$NETD_VENV/.netd-stamp" want
  want=$(sha256sum "$NETD_ROOT/pyproject.toml" | cut -c1-16)
  if [ -x "$NETD_VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local py; py=$(_netd_python)
  _netd_log "creating virtualenv $NETD_VENV"
  "$py" -m venv "$NETD_VENV"
  "$NETD_VENV/bin/pip" install -q --disable-pip-version-check -e "$NETD_ROOT[test]"
  echo "$want" > "$stamp"
}

# The test suite drives the real kubectl. Debian 12 ships only an old one
# (kubernetes-client 1.20); a newer kubectl already on the machine is kept.
_netd_test_tools() {
  command -v kubectl >/dev/null && return 0
  NETD_APT_PACKAGES=(kubernetes-client) _netd_apt
}

netd_bootstrap() {
  _netd_apt
  [ "${NETD_WITH_TEST_TOOLS:-0}" = 1 ] && _netd_test_tools
  _netd_venv
}
