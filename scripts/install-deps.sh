#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages qaq builds with (uses sudo when not root).
set -euo pipefail
pkgs=(g++ cmake make pkg-config libfmt-dev libcli11-dev nlohmann-json3-dev libhwy-dev
      libgtest-dev libgmock-dev libbenchmark-dev libomp-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
