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
# can resolve the workspace without copying the Worker's sources into the image.
RUN mkdir -p src tests/src tools/dev-token/src \
 && touch src/lib.rs tests/src/lib.rs tools/dev-token/src/lib.rs
COPY tests/Cargo.toml tests/Cargo.toml
COPY tools/dev-token/Cargo.toml tools/dev-token/Cargo.toml
RUN mkdir -p tools/dev-token/src/bin && echo 'fn main() {}' > tools/dev-token/src/bin/dev-token.rs \
 && cargo build --release --locked -p catwalk-runner

FROM node:22-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 mcp \
 && useradd --create-home --uid 10001 --gid 10001 mcp
# uv's own image ships uv and uvx as static binaries; pinned for reproducible machines.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /usr/local/bin/
COPY --from=build /src/target/release/catwalk-runner /usr/local/bin/catwalk-runner
# Two users on purpose. The runner runs as root: its environment holds the upstream
# secret, and a process of the same uid could read it from /proc/<runner>/environ (or
# ptrace the runner). The MCP server, which is third-party code, runs as the unprivileged
# `mcp` user (the runner switches with CATWALK_CHILD_UID/GID; it refuses to start if it
# cannot), with /home/mcp as HOME and working directory for the npx and uv caches. The
# server still gets its own credentials, only never the runner's settings.
WORKDIR /home/mcp
ENV PORT=8080 NODE_ENV=production \
    CATWALK_BIND=0.0.0.0 \
    CATWALK_CHILD_UID=10001 CATWALK_CHILD_GID=10001 CATWALK_CHILD_HOME=/home/mcp
EXPOSE 8080
# Launch spec, upstream secret and credentials arrive as env from the machine config.
ENTRYPOINT ["/usr/local/bin/catwalk-runner", "serve"]
