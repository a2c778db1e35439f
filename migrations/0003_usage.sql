-- Gateway usage per deployment: one counter per (deployment, metric), incremented with an
-- upsert so concurrent requests never lose counts. Metrics: `requests`, `errors`,
-- `tool:<name>` (tools/call by tool name), `latency:<bucket>` (see src/gateway/usage.rs).
-- No arguments, no results. Documented in docs/storage.md.

CREATE TABLE IF NOT EXISTS usage_counters (
  deployment_id  TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
  metric         TEXT NOT NULL,
  count          INTEGER NOT NULL DEFAULT 0,
  updated_at     INTEGER NOT NULL,
  PRIMARY KEY (deployment_id, metric)
);
