#!/usr/bin/env bash
# System packages the strategy sandbox needs (see docs/sandbox.md):
#   bubblewrap   - the `bwrap` binary: user/pid/net/ipc/uts namespaces and a read-only
#                  filesystem view for the fork server;
#   libseccomp2  - the C library the `pyseccomp` wheel loads to build the syscall filter.
#   util-linux   - `setpriv`, which a root server's sandbox uses to drop to SANDBOX_HOST_UID
#                  before bwrap makes the namespaces, and `unshare` (essential on Debian).
# And for the benchmarks (make bench):
#   wrk          - the C load generator bench/api.py measures the API with.
# Idempotent and quiet: installs only what is missing; prints nothing when all is present.
# Debian/Ubuntu (apt). Needs root or sudo.
set -euo pipefail

packages=(bubblewrap libseccomp2 util-linux wrk)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: apt-get not found; install ${missing[*]} with your package manager" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# apt's chatter (debconf notices included) is shown only when something fails.
if ! { "${sudo[@]}" apt-get update -qq &&
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-system-deps: could not install ${missing[*]}" >&2
  exit 1
fi
echo "install-system-deps: installed ${missing[*]}"
