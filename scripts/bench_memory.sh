#!/usr/bin/env bash
# Peak memory of writing a whole table (5 columns of the gas particles) to Parquet, at N and
# 4N particles, three ways in one run:
#   sql     hdfstream sql URL "COPY (SELECT ...) TO 'x.parquet'"   (DataFusion, streaming)
#   export  hdfstream export URL GLOB PartType0 -o x.parquet       (Arrow reader, streaming)
#   polars  examples/collect (the Polars connector's collect(): holds the result)
# A streaming path should grow much less than 4x when the rows grow 4x.
#
# Usage: scripts/bench_memory.sh [N]   (default 10^7; HDFSTREAM_BENCH_PROFILE=bench shares
# the benches' build, =dev a debug one; HDFSTREAM_BENCH_NO_BUILD=1 uses the binaries already
# built; needs /usr/bin/time). Data goes to $TMPDIR (about 170 B per gas particle).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000000}
PROFILE=${HDFSTREAM_BENCH_PROFILE:-release}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/hdfstream-target}
build() { [ -n "${HDFSTREAM_BENCH_NO_BUILD:-}" ] || cargo build --profile "$PROFILE" "$@"; }
build -p hdfstream-cli
PATHS="sql export polars"
if [ -n "${HDFSTREAM_BENCH_SKIP_POLARS:-}" ]; then
  PATHS="sql export" # the Polars build is the longest; skip it on request
else
  build --example collect --features polars
fi
case $PROFILE in dev) DIR=debug ;; release | bench) DIR=release ;; *) DIR=$PROFILE ;; esac
BIN=$CARGO_TARGET_DIR/$DIR/hdfstream
COLLECT=$CARGO_TARGET_DIR/$DIR/examples/collect
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
COLS='ParticleIDs,Masses,Coordinates,Temperatures,HaloID'
SQLCOLS='"ParticleIDs", "Masses", "Coordinates", "Temperatures", "HaloID"'

peak_mb() { # command... -> peak RSS in MB of the command
  /usr/bin/time -f '%M' -o "$WORK/rss" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; return 1; }
  echo $(( $(tail -1 "$WORK/rss") / 1024 ))
}

declare -A RSS
for n in "$N" $((4 * N)); do
  mkdir -p "$WORK/$n"
  "$BIN" sample "$WORK/$n" --particles "$n" --files 4 >/dev/null 2>&1
  "$BIN" serve "$WORK/$n" --bind 127.0.0.1:0 >"$WORK/url" 2>/dev/null &
  for _ in $(seq 600); do [ -s "$WORK/url" ] && break; sleep 0.1; done
  URL=$(head -1 "$WORK/url")
  [ -n "$URL" ] || { echo "the server did not start" >&2; exit 1; }
  RSS[sql,$n]=$(peak_mb "$BIN" sql "$URL" "COPY (SELECT $SQLCOLS FROM read_hdfstream('snap_0000.*.hdf5', 'PartType0')) TO '$WORK/sql.parquet' STORED AS PARQUET")
  RSS[export,$n]=$(peak_mb "$BIN" export "$URL" 'snap_0000.*.hdf5' PartType0 -o "$WORK/export.parquet" --columns "$COLS")
  case $PATHS in *polars*) RSS[polars,$n]=$(peak_mb "$COLLECT" "$URL/msgpack/snap_0000.*.hdf5" PartType0 "$COLS") ;; esac
  kill %1 2>/dev/null || true; wait 2>/dev/null || true
  rm -rf "${WORK:?}/$n" "$WORK"/*.parquet
done
printf '\npeak RSS (MB) writing 5 columns of the gas particles, profile %s\n' "$PROFILE"
printf '%-8s %12s %12s %10s\n' path "$N rows" "$((4 * N)) rows" growth
for p in $PATHS; do
  a=${RSS[$p,$N]}; b=${RSS[$p,$((4 * N))]}
  printf '%-8s %12s %12s %9.2fx\n' "$p" "$a" "$b" "$(echo "$b / $a" | bc -l)"
done
