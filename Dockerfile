# The machine image every deployment runs: the catwalk-runner binary as entrypoint, with
# Node.js (npx) and uv (uvx) to start npm and PyPI MCP servers. Build and push:
#   fly apps create catwalk-machines            # the app named by FLY_APP
#   fly deploy --build-only --push --image-label runner-$(git rev-parse --short HEAD)
#   # then set FLY_RUNNER_IMAGE=registry.fly.io/catwalk-machines:runner-<sha> in wrangler.toml
# (or: docker build -t registry.fly.io/catwalk-machines:runner-<sha> . && docker push …
#  after `fly auth docker`).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY runner ./runner
# The workspace lists crates the runner does not need; give them empty stand-ins so cargo
# can resolve the workspace without copying the Worker's sources into the image. Cargo
# must read every member's manifest to load the workspace (a missing one is an error), but
# a target's source file only when that target is built, so `-p catwalk-runner` needs no
# stand-ins for the `[[bin]]` files of tests/ or bench/.
RUN mkdir -p src tests/src tools/dev-token/src \
 && touch src/lib.rs tests/src/lib.rs tools/dev-token/src/lib.rs
COPY tests/Cargo.toml tests/Cargo.toml
COPY bench/Cargo.toml bench/Cargo.toml
COPY tools/dev-token/Cargo.toml tools/dev-token/Cargo.toml
# The local machines service (catwalk-machines) is a workspace member that must never be
# built into this image: its manifest only, so the workspace loads. Its one target is a
# `[[bin]]` with an explicit path, which `-p catwalk-runner` never reads.
COPY tools/machines/Cargo.toml tools/machines/Cargo.toml
RUN mkdir -p tools/dev-token/src/bin && echo 'fn main() {}' > tools/dev-token/src/bin/dev-token.rs \
 && cargo build --release --locked -p catwalk-runner

FROM node:22-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 mcp \
 && useradd --create-home --uid 10001 --gid 10001 mcp \
 && mkdir -p /home/mcp/.npm /home/mcp/.cache/uv /home/mcp/.local/share/uv \
 && chown -R mcp:mcp /home/mcp
# uv's own image ships uv and uvx as static binaries; pinned for reproducible machines.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /usr/local/bin/
COPY --from=build /src/target/release/catwalk-runner /usr/local/bin/catwalk-runner
# Two users on purpose. The runner runs as root: its environment holds the upstream
# secret, and a process of the same uid could read it from /proc/<runner>/environ (or
# ptrace the runner). The MCP server, which is third-party code, runs as the unprivileged
# `mcp` user (the runner switches with CATWALK_CHILD_UID/GID; it refuses to start if it
# cannot), with /home/mcp as HOME and working directory for the npx and uv caches. The
# server still gets its own credentials, only never the runner's settings.
#
# Readiness (runner/src/ready.rs): at boot the runner starts the server once as a probe,
# which installs the package; every session's server then starts from the same caches.
# They are the defaults under HOME (npm: ~/.npm, npx: ~/.npm/_npx, uv: ~/.cache/uv, uv's
# own Pythons: ~/.local/share/uv), HOME is CATWALK_CHILD_HOME for the probe and for every
# session alike, and the directories above belong to `mcp`, so what the probe installed is
# reused. (Not set as variables on purpose: every value in the server's environment is
# masked in /logs, and "[REDACTED]/_logs/…" would hide where npm put its log.)
#
# TLS: one CA bundle for every tool — the system store from `ca-certificates` (add a
# corporate or proxy CA to it with update-ca-certificates). SSL_CERT_FILE / SSL_CERT_DIR
# for OpenSSL users (python's ssl, curl, uv), NODE_EXTRA_CA_CERTS so node and npm/npx
# trust it next to their built-in roots, REQUESTS_CA_BUNDLE for pip and requests (which
# ship their own roots otherwise), UV_NATIVE_TLS so uv reads the system store. The same
# settings are what the local machines service passes through from its host
# (tools/machines/src/host_env.rs). npm's update check is off: it is a registry round trip at
# every npx start that serves no one here.
WORKDIR /home/mcp
ENV PORT=8080 NODE_ENV=production \
    CATWALK_BIND=0.0.0.0 \
    CATWALK_CHILD_UID=10001 CATWALK_CHILD_GID=10001 CATWALK_CHILD_HOME=/home/mcp \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt SSL_CERT_DIR=/etc/ssl/certs \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
    UV_NATIVE_TLS=1 \
    npm_config_update_notifier=false
EXPOSE 8080
# Launch spec, upstream secret and credentials arrive as env from the machine config.
ENTRYPOINT ["/usr/local/bin/catwalk-runner", "serve"]
