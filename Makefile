# The two commands (see README): `make dev` runs the whole system locally, `make test`
# runs every check and test. Both install what is missing first and skip what is there.
SHELL := /bin/bash
export WRANGLER_SEND_METRICS := false

.PHONY: dev test token build bootstrap lint unit integration bench bench-ready bench-analyze bench-deploy bench-gateway web-size soak

bootstrap:
	@scripts/bootstrap.sh

build: bootstrap
	@scripts/build.sh

dev: bootstrap
	@scripts/dev.sh

lint: bootstrap
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --quiet -- -D warnings
	cargo clippy --lib --target wasm32-unknown-unknown --quiet -- -D warnings

unit: bootstrap
	cargo test --workspace --lib --test schema

integration: build
	cargo test -p edge-tests --test api --test runner

# Runner vs mcp-proxy vs supergateway vs the server's own HTTP mode (prints a table).
bench: bootstrap
	bench/run.sh

# The runner's first initialize without / with a warm spare, and wake -> first answer for
# an npm and a PyPI server (prints a table; see bench/src/ready.rs).
bench-ready: bootstrap
	cargo build --quiet --release -p catwalk-runner -p mcp-bench
	"$${CARGO_TARGET_DIR:-target}/release/ready-bench"

test: lint build
	cargo test --workspace

# /api/analyze cache miss vs hit on the local stack (fake upstreams).
bench-analyze: build
	cargo run --quiet --release -p edge-tests --bin analyze-bench

# The deployment lifecycle on the local stack: create, time to running, get, rotate, delete.
bench-deploy: build
	cargo build --quiet --release -p catwalk-runner
	cargo run --quiet --release -p edge-tests --bin deploy-bench

# What the MCP gateway adds over a direct runner: echo p50/p99 and first SSE event, c=1 and 32.
bench-gateway: bootstrap build
	cargo build --quiet --release -p catwalk-runner -p mcp-bench
	cargo run --quiet --release -p edge-tests --bin gateway-bench

# N sessions calling echo through the gateway for M minutes while the machine is
# restarted, a server process killed, the machine stopped and the Machines API down:
# make soak [ARGS="--sessions 32 --minutes 3 --rounds 2"] (a short round runs in make test).
soak: build
	cargo build --quiet -p catwalk-runner -p catwalk-machines
	cargo run --quiet --release -p edge-tests --bin soak -- $(ARGS)

# The dashboard's first load, gzipped, against its 100 KB budget.
web-size: build
	@scripts/web-size.sh

# Prints a session JWT for the local stack: make token [ARGS="--sub me --email me@example.com"]
token:
	@cargo run --quiet -p dev-token -- $(ARGS)
