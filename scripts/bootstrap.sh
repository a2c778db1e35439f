#!/usr/bin/env bash
# Installs what building and testing need, skipping whatever is already present.
# Idempotent and quiet when there is nothing to do; safe on a fresh machine of this kind.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

# Version of a package as recorded in Cargo.lock (the single source of truth for pins).
lock_version() {
  awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown >&2
fi

want_wb=$(lock_version wasm-bindgen)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want_wb" ]; then
  say "installing wasm-bindgen-cli $want_wb (matches Cargo.lock; takes a few minutes once)"
  # --locked first; the registry mirror may lack a crate version the upstream lockfile pins.
  cargo install --locked --quiet --force wasm-bindgen-cli --version "$want_wb" >&2 ||
    cargo install --quiet --force wasm-bindgen-cli --version "$want_wb" >&2
fi

want_worker=$(lock_version worker)
if [ "$(worker-build --version 2>/dev/null | awk '{print $NF}')" != "$want_worker" ]; then
  say "installing worker-build $want_worker (matches the worker crate in Cargo.lock)"
  cargo install --locked --quiet --force worker-build --version "$want_worker" >&2 ||
    cargo install --quiet --force worker-build --version "$want_worker" >&2
fi

# npm packages: wrangler (workerd), esbuild and binaryen's wasm-opt for worker-build.
# npm ci rewrites node_modules/.package-lock.json, so it is newer than the lockfile after.
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  say "installing npm packages from package-lock.json"
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# The MCP conformance suite and the Node 22 it needs (the system node may be older).
stamp=tests/conformance/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ tests/conformance/package-lock.json -nt "$stamp" ]; then
  say "installing the MCP conformance suite (tests/conformance)"
  npm ci --prefix tests/conformance --no-audit --no-fund --loglevel=error >&2
fi

# Debian's Chromium: the browser the dashboard's test drives (tests/browser/flow.mjs, with
# npm playwright-core; Playwright's own browser downloads are out of reach here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing chromium (apt) for the dashboard's browser test"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >&2 ||
      { apt-get update -q >&2 && apt-get install -y -q chromium >&2; }
  else
    say "chromium is missing and cannot be installed without root: apt-get install chromium"
  fi
fi

# Python: a project venv with the official MCP SDK (the tests' real Python client) and
# schemathesis (the API contract test), resolved together in one install.
venv=.venv
py_reqs=(tests/clients/requirements.txt tests/contract/requirements.txt)
stale=0 pip_args=()
[ -x "$venv/bin/python" ] || stale=1
for r in "${py_reqs[@]}"; do
  [ "$r" -nt "$venv/.installed" ] && stale=1
  pip_args+=(-r "$r")
done
if [ "$stale" = 1 ]; then
  say "installing the Python test tools (mcp, schemathesis) into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pip_args[@]}" >&2
  touch "$venv/.installed"
fi

# uv/uvx (PyPI), pinned to the version the machine image ships (Dockerfile), into the
# project's own tool dir: the local machines service puts .tools/bin on its machines' PATH
# so PyPI MCP servers (`uvx -- <package>`) run on the embedded default as they do on Fly.
want_uv=$(sed -n 's#.*astral-sh/uv:\([0-9.]*\).*#\1#p' Dockerfile | head -n 1)
if [ "$(.tools/bin/uv --version 2>/dev/null | awk '{print $2}')" != "$want_uv" ]; then
  say "installing uv $want_uv into .tools (from PyPI)"
  python3 -m venv .tools/uv-env >&2
  .tools/uv-env/bin/pip install --quiet --disable-pip-version-check "uv==$want_uv" >&2
  mkdir -p .tools/bin
  ln -sfn ../uv-env/bin/uv .tools/bin/uv
  ln -sfn ../uv-env/bin/uvx .tools/bin/uvx
fi

if [ ! -f .dev.vars ]; then
  say "generating .dev.vars with fresh random secrets"
  scripts/gen-dev-vars.sh > .dev.vars
elif ! grep -q '^ENVIRONMENT=' .dev.vars; then
  # .dev.vars from before ENVIRONMENT existed: local development is not production
  # (which requires a pinned JWT issuer and audience).
  say "adding ENVIRONMENT=development to .dev.vars"
  printf 'ENVIRONMENT="development"\n' >> .dev.vars
fi
if ! grep -q '^DEV_SIGN_IN=' .dev.vars; then
  # .dev.vars from before the dashboard: its local sign-in.
  say "adding DEV_SIGN_IN=true to .dev.vars"
  printf 'DEV_SIGN_IN="true"\n' >> .dev.vars
fi
