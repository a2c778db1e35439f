#!/usr/bin/env bash
# Builds the dashboard (web/) into build/web, which wrangler.toml's [assets] serves:
#   1. the API types, generated from the contract (docs/openapi.json) by openapi-typescript
#      into web/src/api/schema.gen.ts (gitignored; never edited by hand),
#   2. a typecheck of the whole UI against them (tsc --noEmit),
#   3. the unit tests of its pure modules (web/test/run.mjs: node:test),
#   4. the bundle (web/build.mjs: esbuild → hashed JS/CSS, index.html, _headers).
# Skips everything when no input is newer than build/web/index.html (FORCE_BUILD=1 builds
# anyway). OPENAPI_SPEC names another contract file (e.g. a draft) to build against.
set -euo pipefail
cd "$(dirname "$0")/.."

spec=${OPENAPI_SPEC:-docs/openapi.json}
out=build/web/index.html
types=web/src/api/schema.gen.ts
bin=node_modules/.bin

# One build at a time (test processes and wrangler dev may start it together); a second
# one waits, then finds the output fresh.
mkdir -p build
exec 9>build/.build-web.lock
flock 9

# Which contract the output was built from: another one means building again.
built_from=build/.web-spec
if [ -f "$out" ] && [ -z "${FORCE_BUILD:-}" ] && [ "$(cat "$built_from" 2>/dev/null)" = "$spec" ]; then
  newer=$(find web "$spec" package-lock.json scripts/build-web.sh -newer "$out" \
    -not -path "$types" -print -quit 2>/dev/null)
  [ -z "$newer" ] && exit 0
fi

for tool in openapi-typescript tsc esbuild; do
  [ -x "$bin/$tool" ] || { echo "build-web.sh: missing $bin/$tool; run scripts/bootstrap.sh" >&2; exit 1; }
done

# The UI is typed by the contract: a contract without paths (the placeholder) cannot type it.
if ! node -e 'const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  process.exit(Object.keys(d.paths || {}).length ? 0 : 1)' "$spec"; then
  echo "build-web.sh: $spec lists no paths; the dashboard's API types come from the" \
    "OpenAPI contract (set OPENAPI_SPEC to a complete one)" >&2
  exit 1
fi

"$bin/openapi-typescript" "$spec" --output "$types" >&2
"$bin/tsc" --noEmit --project web/tsconfig.json >&2
node web/test/run.mjs
node web/build.mjs >&2
printf '%s\n' "$spec" > "$built_from"
