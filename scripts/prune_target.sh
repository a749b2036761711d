#!/usr/bin/env bash
# Frees disk space in the shared cargo target dir when its file system runs low, without
# throwing away the compiled dependencies: incremental caches, examples, and every test or
# binary executable but the newest of each name go. Usage: scripts/prune_target.sh [MIN_FREE_GIB]
# (default 30). Does nothing when at least MIN_FREE_GIB are free already.
set -euo pipefail
TARGET="${CARGO_TARGET_DIR:-$HOME/.cache/hdfstream-target}"
MIN_FREE_GIB="${1:-30}"
[ -d "$TARGET" ] || exit 0

free_gib() { df -Pk "$TARGET" | awk 'NR == 2 { print int($4 / 1048576) }'; }

before=$(free_gib)
if [ "$before" -ge "$MIN_FREE_GIB" ]; then
    echo "prune_target: $before GiB free in $TARGET, nothing to do"
    exit 0
fi
for profile in "$TARGET"/*/; do
    rm -rf "${profile}incremental" "${profile}examples"
    deps="${profile}deps"
    [ -d "$deps" ] || continue
    # Executables have no extension; several hashes of one name are old builds of one target.
    find "$deps" -maxdepth 1 -type f ! -name '*.*' -printf '%T@ %p\n' | sort -rn \
        | awk '{ n = $2; sub(/-[0-9a-f]+$/, "", n); if (seen[n]++) print $2 }' \
        | xargs -r rm -f
done
echo "prune_target: $before GiB free before, $(free_gib) GiB after"
