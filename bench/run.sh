#!/usr/bin/env bash
# Benchmarks the runner against other ways of putting a stdio MCP server on HTTP, one after
# another on this machine, with the same server (npm server-everything) and the same Rust
# load generator (mcp-load): tools/call echo latency p50/p99 at concurrency 1, throughput
# and p99 at 16 and 64, the time to open 64 sessions, and memory per session.
#   (a) catwalk-runner serve          one child per session
#   (b) mcp-proxy (PyPI)              one shared child
#   (c) supergateway --stateful (npm) one child per session
#   (d) server-everything streamableHttp, no bridge: the floor
# usage: bench/run.sh [SECONDS_PER_LEVEL] [CONCURRENCY_LIST]   (make bench)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
levels=${2:-1,16,64}
se=$PWD/node_modules/@modelcontextprotocol/server-everything/dist/index.js

mkdir -p .bench
[ -x .bench/node_modules/.bin/supergateway ] ||
  npm install --prefix .bench --no-audit --no-fund --loglevel=error supergateway@4.0.0 >&2
[ -x .bench/venv/bin/mcp-proxy ] ||
  { python3 -m venv .bench/venv && .bench/venv/bin/pip install --quiet mcp-proxy==0.13.0 >&2; }
cargo build --quiet --release -p catwalk-runner -p mcp-bench

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

results=$(mktemp)
run() { # label port pid [header]
  local label=$1 port=$2 pid=$3; shift 3
  wait_port "$port"
  sleep 1
  target/release/mcp-load --url "http://127.0.0.1:$port/mcp" --label "$label" --pid "$pid" \
    --seconds "$secs" --concurrency "$levels" --open 64 "$@" | tee -a "$results"
  kill -TERM "$pid" 2>/dev/null || true
  pkill -TERM -P "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  sleep 1
}

port=$(free_port); secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
CATWALK_LAUNCH="{\"argv\":[\"node\",\"$se\",\"stdio\"]}" CATWALK_UPSTREAM_SECRET=$secret CATWALK_BIND=127.0.0.1 \
  PORT=$port CATWALK_MAX_SESSIONS=200 target/release/catwalk-runner serve 2>/dev/null &
run "a-runner" "$port" $! --header "Authorization: Bearer $secret"

port=$(free_port)
.bench/venv/bin/mcp-proxy --host 127.0.0.1 --port "$port" -- node "$se" stdio >/dev/null 2>&1 &
run "b-mcp-proxy" "$port" $!

port=$(free_port)
.bench/node_modules/.bin/supergateway --stdio "node $se stdio" --outputTransport streamableHttp --stateful \
  --port "$port" --logLevel none >/dev/null 2>&1 &
run "c-supergateway" "$port" $!

port=$(free_port)
PORT=$port node "$se" streamableHttp >/dev/null 2>&1 &
run "d-direct" "$port" $!

echo
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labels = sorted({r["label"] for r in rows})
def get(label, phase, c=None):
    for r in rows:
        if r["label"] == label and r["phase"] == phase and (c is None or r.get("concurrency") == c):
            return r
    return {}
levels = sorted({r["concurrency"] for r in rows if r["phase"] == "load" and "concurrency" in r})
head = f"{'target':16} {'open64 ms':>9} {'MiB/sess':>8}" + "".join(f" {'c'+str(c)+' p50':>9} {'p99':>7} {'calls/s':>8}" for c in levels)
print(head)
for l in labels:
    o = get(l, "open")
    line = f"{l:16} {o.get('ms', float('nan')):9.0f} {o.get('mib_per_session') or float('nan'):8.1f}"
    for c in levels:
        r = get(l, "load", c)
        line += f" {r.get('p50_ms', float('nan')):9.2f} {r.get('p99_ms', float('nan')):7.1f} {r.get('calls_per_s', float('nan')):8.0f}"
    print(line)
PY
rm -f "$results"
