#!/usr/bin/env bash
# Builds the Worker (Rust → WASM → build/worker/shim.mjs) with worker-build, pointing it at
# the locally installed wasm-bindgen, esbuild and wasm-opt instead of letting it download
# them (no internet here). Skips the build when no input is newer than the output (the
# inputs include docs/openapi.json, which the Worker serves compiled in). Then the
# dashboard (scripts/build-web.sh, which skips itself the same way).
set -euo pipefail
cd "$(dirname "$0")/.."

out=build/worker/shim.mjs
if [ -f "$out" ] && [ -z "${FORCE_BUILD:-}" ]; then
  newer=$(find src docs/openapi.json Cargo.toml Cargo.lock wrangler.toml -newer "$out" -print -quit 2>/dev/null)
  [ -z "$newer" ] && exec scripts/build-web.sh
fi

export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-$(command -v wasm-bindgen)}"
export ESBUILD_BIN="${ESBUILD_BIN:-$PWD/node_modules/.bin/esbuild}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
for bin in "$WASM_BINDGEN_BIN" "$ESBUILD_BIN" "$WASM_OPT_BIN"; do
  [ -x "$bin" ] || { echo "build.sh: missing $bin; run scripts/bootstrap.sh" >&2; exit 1; }
done
worker-build --release >&2
touch "$out"
exec scripts/build-web.sh
