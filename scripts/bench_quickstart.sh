#!/usr/bin/env bash
# The quickstart built with the `quickstart` profile against the same code built `--release`:
# median times of its two queries and of the whole run, over N alternating runs, and ratios.
#
#   scripts/bench_quickstart.sh [N]      (default N=9; builds both binaries first)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-9}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hdfstream-target}"
for profile in quickstart release; do
    cargo build -q -p hdfstream --profile "$profile" --example quickstart --features polars
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((i = 0; i < N; i++)); do
    for profile in quickstart release; do
        t0=$EPOCHREALTIME
        "$CARGO_TARGET_DIR/$profile/examples/quickstart" > "$out/run.txt" 2>&1
        t1=$EPOCHREALTIME
        # "(70.9ms, 3200481 B over the wire" on the aggregation and join lines.
        agg=$(grep -m1 'per halo (' "$out/run.txt" | sed -E 's/.*\(([0-9.]+)(m?s), .*/\1 \2/')
        join=$(grep -m1 'joined with the catalogue' "$out/run.txt" | sed -E 's/.*\(([0-9.]+)(m?s), .*/\1 \2/')
        echo "$profile $agg $join $t0 $t1" >> "$out/times.txt"
    done
done
python3 - "$out/times.txt" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    p, a, au, j, ju, t0, t1 = line.split()
    wall = float(t1) - float(t0)
    ms = lambda v, u: float(v) * (1000 if u == "s" else 1)
    rows.setdefault(p, []).append((ms(a, au), ms(j, ju), wall * 1000))
names = ["aggregation query", "join query", "whole run (sample writing included)"]
med = {p: [statistics.median(r[k] for r in rs) for k in range(3)] for p, rs in rows.items()}
print(f"{'median of ' + str(len(rows['release'])) + ' runs':40} {'quickstart':>12} {'release':>12} {'ratio':>7}")
for k, name in enumerate(names):
    q, r = med["quickstart"][k], med["release"][k]
    print(f"{name:40} {q:10.1f}ms {r:10.1f}ms {q / r:7.2f}")
EOF
