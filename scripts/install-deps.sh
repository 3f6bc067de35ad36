#!/usr/bin/env bash
# Installs everything hilo needs to build and test, from Debian's packages and PyPI only.
# Used by the README's two commands and by CI; safe to run again.
set -euo pipefail

apt_packages=(cmake g++ make ninja-build ccache pkg-config
  nlohmann-json3-dev libcli11-dev libfmt-dev libgtest-dev libbenchmark-dev libeigen3-dev libicu-dev)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

# Python side of the tests: peers for bit-exact dtype and safetensors checks.
python3 -m pip install -q --disable-pip-version-check -r "$(dirname "$0")/../tests/python/requirements.txt"
