#!/usr/bin/env bash
# Installs the one system library sbtg builds against: HDF5, for lab .h5 and NWB
# recordings (the hdf5-metno crate links to it). Does nothing when it is already there.
# Debian/Ubuntu: apt-get install libhdf5-dev. macOS: brew install hdf5 pkg-config.
# Without it, build the command line without HDF5: cargo build -p sbtg-cli --no-default-features
set -euo pipefail
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists hdf5; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: install the HDF5 C library and pkg-config (macOS: brew install hdf5 pkg-config)," >&2
    echo "       or build without HDF5 support: cargo build -p sbtg-cli --no-default-features" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi
echo "setup: installing libhdf5-dev and pkg-config (HDF5 and NWB recordings)" >&2
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libhdf5-dev pkg-config >/dev/null
