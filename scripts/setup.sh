#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks for building and testing hdfstream:
# a C toolchain and pkg-config (ring, zstd-sys and the HDF5 bindings build C), the system
# libhdf5 (for hdfstream-server), python3-venv, a Rust toolchain through rustup when there is
# no cargo (Debian's packaged rustc is too old), and a Python venv with the real Python
# hdfstream client, h5py and swiftsimio (for the compatibility checks), and headless Chromium
# with chromedriver (for the viewer's browser test). Safe to run again:
# each step runs only when its check fails.
set -euo pipefail

# Rust's minimum version for everything (Polars needs 1.95, DataFusion 1.94; the lean crates 1.88).
RUST_MIN=1.95

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
MISSING=()
command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || MISSING+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || MISSING+=(pkg-config)
dpkg -s libhdf5-dev >/dev/null 2>&1 || MISSING+=(libhdf5-dev)
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || MISSING+=(python3-venv)
command -v curl >/dev/null 2>&1 || MISSING+=(curl ca-certificates)
# Headless Chromium and its WebDriver for the viewer's browser test (server/tests/viewer_browser.rs).
command -v chromium >/dev/null 2>&1 || MISSING+=(chromium)
command -v chromedriver >/dev/null 2>&1 || MISSING+=(chromium-driver)
if [ ${#MISSING[@]} -gt 0 ]; then
    echo "setup: installing ${MISSING[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${MISSING[@]}" >/dev/null
fi

# Rust: rustup's stable toolchain when cargo is missing or older than RUST_MIN.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
rust_ok() {
    command -v cargo >/dev/null 2>&1 || return 1
    local v
    v=$(rustc --version | awk '{print $2}')
    [ "$(printf '%s\n%s\n' "$RUST_MIN" "$v" | sort -V | head -1)" = "$RUST_MIN" ]
}
if ! rust_ok; then
    if command -v rustup >/dev/null 2>&1; then
        echo "setup: updating the Rust toolchain (rustup update stable)"
        rustup update stable
        rustup default stable
    else
        # rustup-init itself from static.rust-lang.org (rustup's documented alternative to
        # the sh.rustup.rs script, which some networks do not reach), checked against its
        # published SHA-256.
        echo "setup: installing Rust (rustup, stable toolchain) into ~/.cargo"
        init_url="https://static.rust-lang.org/rustup/dist/$(uname -m)-unknown-linux-gnu/rustup-init"
        tmp=$(mktemp -d)
        curl --proto '=https' --tlsv1.2 -sSf -o "$tmp/rustup-init" "$init_url"
        sum=$(curl --proto '=https' --tlsv1.2 -sSf "$init_url.sha256" | awk '{print $1}')
        echo "$sum  $tmp/rustup-init" | sha256sum -c --quiet
        chmod +x "$tmp/rustup-init"
        "$tmp/rustup-init" -y --profile minimal --default-toolchain stable -c clippy -c rustfmt
        rm -rf "$tmp"
        . "$HOME/.cargo/env"
    fi
    rust_ok || { echo "setup: Rust >= $RUST_MIN is needed, found $(rustc --version 2>&1)" >&2; exit 1; }
    echo "setup: open a new shell, or run: . \"\$HOME/.cargo/env\""
fi

VENV="${HDFSTREAM_VENV:-$HOME/.cache/hdfstream-venv}"
if ! "$VENV/bin/python" -c "import hdfstream, h5py, numpy" >/dev/null 2>&1; then
    echo "setup: creating the Python venv $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "hdfstream==0.0.28" h5py numpy
fi

# The S3-compatible moto server for tests/export_s3.rs (required when CI=true), pyarrow
# and polars for the Python side of scripts/bench_export.sh and the scan benchmark, and
# duckdb for the Python package's Arrow-stream test.
if ! "$VENV/bin/python" -c "import moto, pyarrow, polars, duckdb" >/dev/null 2>&1; then
    echo "setup: installing moto[server], pyarrow, polars and duckdb into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "moto[server]" pyarrow polars duckdb
fi
# swiftsimio for the region-query truth (scripts/swift_mask.py) and its remote-file check
# (scripts/compat_swiftsimio.py, run by server/tests/swiftsimio_compat.rs).
if ! "$VENV/bin/python" -c "import swiftsimio, sys; sys.exit(swiftsimio.__version__ != '12.4.0')" >/dev/null 2>&1; then
    echo "setup: installing swiftsimio 12.4.0 into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "swiftsimio==12.4.0"
fi
# h5grove 4.0 (the API H5Web's H5GroveProvider speaks) as the truth for the server's
# h5grove-compatible endpoints (scripts/compat_h5grove.py, run by server/tests/h5grove_compat.rs).
if ! "$VENV/bin/python" -c "import h5grove, sys, importlib.metadata as m; sys.exit(m.version('h5grove') != '4.0.0')" >/dev/null 2>&1; then
    echo "setup: installing h5grove 4.0.0 into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "h5grove==4.0.0"
fi
# maturin and pytest for the Python package (python/), and the package itself, built into the
# venv in the dev profile when it is missing (.ci/run rebuilds it before its tests).
if ! "$VENV/bin/python" -c "import pytest" >/dev/null 2>&1 || [ ! -x "$VENV/bin/maturin" ]; then
    echo "setup: installing maturin and pytest into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "maturin>=1.9.4,<2" pytest
fi
if ! "$VENV/bin/python" -c "import polars_hdfstream" >/dev/null 2>&1; then
    echo "setup: building the Python package polars-hdfstream into $VENV"
    REPO="$(cd "$(dirname "$0")/.." && pwd)"
    VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" develop -q -m "$REPO/python/Cargo.toml"
fi
echo "setup: ok (libhdf5 $(dpkg-query -W -f='${Version}' libhdf5-dev), venv $VENV)"
