#!/usr/bin/env bash
# Installs what a fresh machine lacks for building and testing hdfstream:
# the system libhdf5 (for hdfstream-server) and a Python venv with the real Python
# hdfstream client, h5py and swiftsimio (for the compatibility checks). Safe to run again.
set -euo pipefail

if ! dpkg -s libhdf5-dev >/dev/null 2>&1 || ! command -v pkg-config >/dev/null 2>&1; then
    echo "setup: installing libhdf5-dev and pkg-config"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libhdf5-dev pkg-config >/dev/null
fi

VENV="${HDFSTREAM_VENV:-$HOME/.cache/hdfstream-venv}"
if ! "$VENV/bin/python" -c "import hdfstream, h5py, numpy" >/dev/null 2>&1; then
    echo "setup: creating the Python venv $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "hdfstream==0.0.28" h5py numpy
fi

# The S3-compatible moto server for tests/export_s3.rs (required when CI=true), and pyarrow
# and polars for the Python side of scripts/bench_export.sh and the scan benchmark.
if ! "$VENV/bin/python" -c "import moto, pyarrow, polars" >/dev/null 2>&1; then
    echo "setup: installing moto[server], pyarrow and polars into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]" pyarrow polars
fi
# swiftsimio for the region-query truth (scripts/swift_mask.py) and its remote-file check
# (scripts/compat_swiftsimio.py, run by server/tests/swiftsimio_compat.rs).
if ! "$VENV/bin/python" -c "import swiftsimio, sys; sys.exit(swiftsimio.__version__ != '12.4.0')" >/dev/null 2>&1; then
    echo "setup: installing swiftsimio 12.4.0 into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "swiftsimio==12.4.0"
fi
echo "setup: ok (libhdf5 $(dpkg-query -W -f='${Version}' libhdf5-dev), venv $VENV)"
