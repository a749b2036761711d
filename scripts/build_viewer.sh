#!/usr/bin/env bash
# Rebuilds the browser viewer (viewer/: H5Web + the directory listing) into server/viewer-dist/,
# which the server embeds. The build output is committed, so building or installing the server
# needs no Node; run this after changing viewer/ or its pinned packages, and commit the result.
# Needs Node >= 20 and npm (versions pinned by viewer/package-lock.json; `npm ci` installs
# exactly those). The output is the same bytes for the same sources and lock file.
set -euo pipefail
cd "$(dirname "$0")/../viewer"
command -v npm >/dev/null 2>&1 || { echo "build_viewer: npm is needed (Node >= 20)" >&2; exit 1; }
npm ci --no-audit --no-fund
npx vite build
ls -l ../server/viewer-dist ../server/viewer-dist/assets
