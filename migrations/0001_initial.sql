-- Catwalk Edge: the initial schema. Documented table by table in docs/storage.md.
-- Times are INTEGER milliseconds since the Unix epoch (UTC).
-- Every statement is idempotent (IF NOT EXISTS) so re-running the file by hand is harmless;
-- wrangler also records applied migrations in d1_migrations and skips them.

CREATE TABLE IF NOT EXISTS users (
  id            TEXT PRIMARY KEY,                 -- usr_<30 hex>
  subject       TEXT UNIQUE,                      -- the JWT `sub` we first saw, if any
  email         TEXT UNIQUE COLLATE NOCASE,       -- lowercased; the sync-user upsert key
  name          TEXT,
  avatar_url    TEXT,
  github_id     TEXT,
  created_at    INTEGER NOT NULL,
  last_seen_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS deployments (
  id                 TEXT PRIMARY KEY,            -- dep_<30 hex>
  owner_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name               TEXT NOT NULL,
  source             TEXT NOT NULL,               -- normalized repo URL or npm:/pypi: spec
  package            TEXT NOT NULL,
  runtime            TEXT NOT NULL CHECK (runtime IN ('npm', 'python')),
  status             TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'deploying', 'running', 'stopped', 'failed', 'deleting')),
  machine_id         TEXT UNIQUE,
  config             TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
  access_token_hash  TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the access token
  error_message      TEXT,
  created_at         INTEGER NOT NULL,
  updated_at         INTEGER NOT NULL,
  UNIQUE (owner_id, name)
);
CREATE INDEX IF NOT EXISTS deployments_owner_idx ON deployments (owner_id, created_at DESC);
CREATE INDEX IF NOT EXISTS deployments_status_idx ON deployments (status, updated_at);

CREATE TABLE IF NOT EXISTS credentials (
  deployment_id  TEXT NOT NULL UNIQUE REFERENCES deployments(id) ON DELETE CASCADE,
  key_id         TEXT NOT NULL,                   -- which ENCRYPTION_KEYS entry sealed it
  nonce          TEXT NOT NULL,                   -- base64, 96-bit AES-GCM nonce
  ciphertext     TEXT NOT NULL,                   -- base64, AES-256-GCM with tag
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS analysis_cache (
  source_key   TEXT NOT NULL UNIQUE,              -- normalized source + analyzer version
  result       TEXT NOT NULL CHECK (json_valid(result)),
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS analysis_cache_expires_idx ON analysis_cache (expires_at);

CREATE TABLE IF NOT EXISTS audit_log (
  id           TEXT PRIMARY KEY,                  -- aud_<30 hex>
  user_id      TEXT,                              -- NULL for anonymous events (failed MCP auth)
  action       TEXT NOT NULL,                     -- e.g. user.created, deployment.deleted
  resource     TEXT,                              -- e.g. deployment:dep_…
  metadata     TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  created_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_user_time_idx ON audit_log (user_id, created_at DESC);

CREATE TABLE IF NOT EXISTS user_settings (
  user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  key              TEXT NOT NULL,
  value            TEXT,                          -- plain value, for non-secret settings
  key_id           TEXT,                          -- set together with nonce + ciphertext
  nonce            TEXT,
  ciphertext       TEXT,
  updated_at       INTEGER NOT NULL,
  PRIMARY KEY (user_id, key),
  CHECK ((value IS NOT NULL AND ciphertext IS NULL AND nonce IS NULL AND key_id IS NULL)
      OR (value IS NULL AND ciphertext IS NOT NULL AND nonce IS NOT NULL AND key_id IS NOT NULL))
);
