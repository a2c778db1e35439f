#!/usr/bin/env bash
# `make dev`: the whole system on one machine. Builds the Worker, the runner and the local
# machines service (catwalk-machines, the Fly Machines API stand-in), applies the local D1
# migrations, starts the machines service (http://127.0.0.1:4280) in the background and
# `wrangler dev` (http://127.0.0.1:8787) in the foreground. Ctrl-C stops both.
# State: .wrangler/state and .state/machines.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false

dev_var() { sed -n "s/^$1=\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" .dev.vars | tail -n 1; }

scripts/build.sh
# Both into target/release: catwalk-machines runs the catwalk-runner next to it.
cargo build --quiet --release -p catwalk-runner -p catwalk-machines
npx wrangler d1 migrations apply DB --local >/dev/null

machines_port=$(dev_var FLY_API_BASE | sed -n 's#.*:\([0-9]*\)$#\1#p')
# Machines find uv/uvx (bootstrap puts them in .tools/bin) and inherit this shell's TLS and
# proxy settings (see tools/machines/src/host_env.rs).
CATWALK_MACHINE_PATH="$PWD/.tools/bin" \
CATWALK_MACHINES_TOKEN="$(dev_var FLY_API_TOKEN)" PORT="${machines_port:-4280}" \
  CATWALK_STATE_DIR=.state/machines "${CARGO_TARGET_DIR:-target}/release/catwalk-machines" &
machines=$!
trap 'kill -TERM "$machines" 2>/dev/null; wait "$machines" 2>/dev/null' EXIT INT TERM

echo "==> Catwalk Edge on http://127.0.0.1:${PORT:-8787}, machines API on http://127.0.0.1:${machines_port:-4280}" >&2
echo "    (make token prints a session JWT)" >&2
npx wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --test-scheduled
