#!/usr/bin/env bash
# Installs what sbtg builds and tests against, once; does nothing when it is there:
# - the HDF5 C library, for lab .h5 and NWB recordings (the hdf5-metno crate links to it);
#   Debian/Ubuntu: apt-get install libhdf5-dev; macOS: brew install hdf5 pkg-config.
#   Without it, build the command line without HDF5: cargo build -p sbtg-cli --no-default-features
# - NumPy for python3, which the test suite uses to read arrays.npz back as a user would.
set -euo pipefail
if ! python3 -c "import numpy" >/dev/null 2>&1; then
    echo "setup: installing numpy for python3 (the tests read arrays.npz with it)" >&2
    python3 -m pip install --quiet numpy || python3 -m pip install --quiet --user numpy
fi
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
