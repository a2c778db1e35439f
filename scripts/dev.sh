#!/usr/bin/env bash
# `make dev`: builds the Worker, applies the local D1 migrations and runs the local stack
# in the foreground on http://127.0.0.1:8787 (state under .wrangler/state). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false

scripts/build.sh
npx wrangler d1 migrations apply DB --local >/dev/null
echo "==> Catwalk Edge on http://127.0.0.1:${PORT:-8787}  (make token prints a session JWT)" >&2
exec npx wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --test-scheduled
