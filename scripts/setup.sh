#!/usr/bin/env bash
# Installs the Debian packages the toolkit builds against. Idempotent; needs root or sudo.
# The CUDA toolkit (nvcc, cuBLAS, NCCL) is expected preinstalled and is optional.
set -euo pipefail
pkgs=(build-essential pkg-config libzstd-dev libjansson-dev libopenblas-dev
      libopenmpi-dev openmpi-bin libcurl4-openssl-dev python3 python3-numpy zstd clang libclang-rt-dev
      chromium)  # chromium: graph2html's in-browser tests (headless)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: all packages present"
