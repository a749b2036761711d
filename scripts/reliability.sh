#!/usr/bin/env bash
# Reliability in figures (issue 11): fuzzers, hostile requests, load, injected faults, one table.
#
#   scripts/reliability.sh [--quick] [--debug] [--keep-logs DIR]
#
#   1. fuzz_decoders  every client response decoder, seeded structure-aware mutations
#                     (10^7 inputs; --quick: the tool's quick size)
#   2. fuzz_server    mutated HTTP requests against `hdfstream serve` (10^6; --quick 2.5·10^5)
#   3. hostile        the catalogue of hostile requests (server/tests/hostile.rs)
#   4. load           64 clients × 1000 mixed requests, every answer checked (--quick: 16 × 100)
#   5. faults         client reads through a fault-injecting proxy (tests/faults.rs) and the
#                     server-side faults (server/tests/{file_changes,slow_clients}.rs,
#                     tests/server_faults.rs: files changed mid-read, a restart during a read)
#
# The tools run against release binaries built from this checkout, copied aside first (the
# target directory may be shared with other checkouts). `--debug` uses the dev-profile
# binaries instead, which the test command has already built: CI runs `--quick --debug`, so
# that it does not build a second profile. Each tool's log is kept in the log directory
# (printed at the end); the exit status is non-zero if any part failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/hdfstream-target}"
export CARGO_TERM_COLOR=never

QUICK=0
PROFILE=release
LOG=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --debug) PROFILE=debug ;;
        --keep-logs) LOG="$2"; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "reliability.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$LOG" ] || LOG="$(mktemp -d -t hdfstream-reliability.XXXXXX)"
mkdir -p "$LOG/bin"

# The binaries under test. The CLI without its SQL feature is the server (`serve`) and the
# sample writer; the tools come from the reliability crate.
TOOLS=(fuzz_server load)
[ -f reliability/src/bin/fuzz_decoders.rs ] && TOOLS=(fuzz_decoders "${TOOLS[@]}")
if [ "$PROFILE" = release ]; then
    cargo build --release -q -p hdfstream-cli --no-default-features -p hdfstream-reliability \
        || exit 1
    for b in hdfstream "${TOOLS[@]}"; do
        cp "$CARGO_TARGET_DIR/release/$b" "$LOG/bin/$b" || exit 1
    done
else
    # The binaries the test command built for its integration tests (`cargo build --bins`
    # would resolve features without the dev-dependencies and build much of it again).
    cargo test -q --workspace --features hdfstream/polars,hdfstream/parquet --no-run \
        --message-format=json-render-diagnostics > "$LOG/bins.json" || exit 1
    for b in hdfstream "${TOOLS[@]}"; do
        exe=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and "bin" in t.get("kind", []) \
            and not m.get("profile", {}).get("test") \
            and t.get("name") == sys.argv[2] and m.get("executable"):
        print(m["executable"])
        break
' "$LOG/bins.json" "$b")
        [ -n "$exe" ] || { echo "reliability.sh: the test build made no binary $b" >&2; exit 1; }
        cp "$exe" "$LOG/bin/$b" || exit 1
    done
fi
BIN="$LOG/bin"

status=0
# step NAME COMMAND...: runs one part, its output into $LOG/NAME.log.
step() {
    local name=$1; shift
    local t0=$SECONDS
    echo "== $name: $*"
    if "$@" > "$LOG/$name.log" 2>&1; then
        echo "   ok ($((SECONDS - t0)) s)"
    else
        echo "   FAILED ($((SECONDS - t0)) s): last lines of $LOG/$name.log:"
        tail -n 15 "$LOG/$name.log" | sed 's/^/   | /'
        status=1
    fi
}
size() { if [ "$QUICK" = 1 ]; then echo "$1"; else echo "$2"; fi; }

if [ -x "$BIN/fuzz_decoders" ]; then
    # shellcheck disable=SC2046 # the size flags are meant to split
    step fuzz_decoders "$BIN/fuzz_decoders" --threads "$(nproc)" $(size --quick "--inputs 10000000")
fi
# shellcheck disable=SC2046
step fuzz_server "$BIN/fuzz_server" --binary "$BIN/hdfstream" $(size --quick "--requests 1000000")
# The test-based parts with the test command's features: nothing is built twice.
WS=(--workspace --features hdfstream/polars,hdfstream/parquet)
step hostile cargo test -q "${WS[@]}" --test hostile -- --nocapture
# shellcheck disable=SC2046
step load "$BIN/load" --server "$BIN/hdfstream" $(size --quick "--clients 64 --requests 1000")
step faults cargo test -q "${WS[@]}" --test faults -- --nocapture
step server_faults cargo test -q "${WS[@]}" --test file_changes --test slow_clients \
    --test server_faults -- --nocapture

python3 - "$LOG" "$QUICK" <<'EOF'
import json, pathlib, re, sys

log = pathlib.Path(sys.argv[1])

def result(name):
    """The RESULT line a tool printed last, as a dict ({} if none)."""
    path = log / f"{name}.log"
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    for line in reversed(lines):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    return {}

def text(name):
    path = log / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""

def num(v):
    return f"{v:,}" if isinstance(v, int) else str(v)

def mib(kib):
    return f"{kib / 1024:.0f} MiB" if isinstance(kib, (int, float)) else "?"

rows = []
d = result("fuzz_decoders")
rows.append(("client decoders fuzzed",
             f"{num(d.get('inputs', '?'))} inputs" if d else "no result",
             f"panics {d.get('panics', '?')}, hangs {d.get('hangs', '?')}, "
             f"over the allocation bound {d.get('over_alloc_bound', '?')} "
             f"(largest allocation {num(d.get('max_alloc_bytes', '?'))} B)" if d else "see log"))
s = result("fuzz_server")
rows.append(("server requests fuzzed",
             f"{num(s.get('requests', '?'))} requests" if s else "no result",
             f"5xx {s.get('status_5xx', '?')}, panics {s.get('panics', '?')}, hangs "
             f"{s.get('hangs', '?')}, failures {s.get('failures', '?')}, alive "
             f"{s.get('server_alive', '?')}, RSS {mib(s.get('rss_start_kib'))} → "
             f"max {mib(s.get('rss_max_kib'))}" if s else "see log"))
m = re.search(r"hostile requests: (\d+) tried, (\d+) answered as expected, server alive", text("hostile"))
rows.append(("hostile requests",
             f"{m.group(1)} tried" if m else "no result",
             f"{m.group(2)} answered as expected, server alive" if m else "see log"))
l = result("load")
rows.append(("load",
             f"{l.get('clients', '?')} clients × {l.get('requests_per_client', '?')} requests" if l else "no result",
             f"errors {l.get('errors', '?')}, {l.get('rps', 0):.0f} req/s, p50 {l.get('p50_ms', 0):.0f} ms, "
             f"p99 {l.get('p99_ms', 0):.0f} ms, server RSS {mib(l.get('rss_kib_before'))} → "
             f"{mib(l.get('rss_kib_after'))}, fds {l.get('fds_before', '?')} → {l.get('fds_after', '?')}"
             if l else "see log"))
reads = exact = clean = wrong = 0
for m in re.finditer(r"faults \[[^\]]*\]: (\d+) reads: (\d+) exact, (\d+) clean errors, (\d+) wrong", text("faults")):
    reads += int(m.group(1)); exact += int(m.group(2)); clean += int(m.group(3)); wrong += int(m.group(4))
rows.append(("faults injected (client side)", f"{reads} reads, 30% of responses faulted",
             f"exact {exact}, clean errors {clean}, wrong data {wrong}"))
sf = text("server_faults")
passed = sum(int(x) for x in re.findall(r"test result: ok\. (\d+) passed", sf))
failed = sum(int(x) for x in re.findall(r"(\d+) failed", sf))
rows.append(("server-side faults", f"{passed + failed} scenarios", f"{passed} passed, {failed} failed"))

width = max(len(r[0]) for r in rows)
print()
print("reliability figures" + (" (quick)" if sys.argv[2] == "1" else ""))
for name, size, figures in rows:
    print(f"  {name:<{width}}  {size:<28}  {figures}")
EOF
echo "logs: $LOG"
exit $status
