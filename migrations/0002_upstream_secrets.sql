-- The per-machine upstream secret (what the gateway presents to the runner), sealed on its
-- own so the gateway can open it on every request without touching the server's
-- credentials. Documented in docs/storage.md.

CREATE TABLE IF NOT EXISTS upstream_secrets (
  deployment_id  TEXT PRIMARY KEY REFERENCES deployments(id) ON DELETE CASCADE,
  key_id         TEXT NOT NULL,                   -- which ENCRYPTION_KEYS entry sealed it
  nonce          TEXT NOT NULL,                   -- base64, 96-bit AES-GCM nonce
  ciphertext     TEXT NOT NULL,                   -- base64, AES-256-GCM with tag
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
);
