#!/usr/bin/env bash
# The whole test suite, as README.md gives it: the Rust workspace's tests with every library
# feature, then the Python package's tests (python/tests), which need the venv made by
# scripts/setup.sh. Extra arguments go to `cargo test` (e.g. `-- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --features hdfstream/polars,hdfstream/parquet "$@"
# The package is rebuilt into the venv from this tree (dev profile, the same target dir), and
# its tests start `hdfstream serve` with the CLI binary the command above built. pytest exits
# 5 when it collects no test, which fails here like any other failure.
VENV="${HDFSTREAM_VENV:-$HOME/.cache/hdfstream-venv}"
if [ ! -x "$VENV/bin/maturin" ]; then
    echo "test.sh: $VENV/bin/maturin is missing; run scripts/setup.sh first" >&2
    exit 1
fi
VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" develop -q -m python/Cargo.toml
"$VENV/bin/python" -m pytest -q python/tests
