-- OAuth 2.1 for MCP clients (docs/oauth.md, docs/storage.md): the Worker is the
-- authorization server for every deployment's MCP URL. Codes and tokens are kept only as
-- SHA-256 digests; a grant is one client's consent for one deployment (the token family:
-- revoking it stops every access and refresh token issued under it).

-- Clients registered with Dynamic Client Registration (RFC 7591). Clients identified by a
-- Client ID Metadata Document (an https URL) are not stored here: their document is
-- fetched and cached in KV.
CREATE TABLE IF NOT EXISTS oauth_clients (
  client_id      TEXT PRIMARY KEY,                -- cwc_ + 32 hex
  client_name    TEXT,
  client_uri     TEXT,
  logo_uri       TEXT,
  redirect_uris  TEXT NOT NULL,                   -- JSON array, matched exactly
  created_at     INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS oauth_grants (
  id             TEXT PRIMARY KEY,                -- grt_ + 24 hex
  deployment_id  TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
  user_id        TEXT NOT NULL,                   -- the owner who consented
  client_id      TEXT NOT NULL,                   -- cwc_… or the metadata document URL
  client_name    TEXT,
  redirect_uri   TEXT NOT NULL,
  scope          TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  last_used_at   INTEGER,
  revoked_at     INTEGER,
  revoked_reason TEXT
);
CREATE INDEX IF NOT EXISTS oauth_grants_by_deployment ON oauth_grants(deployment_id, created_at);

CREATE TABLE IF NOT EXISTS oauth_codes (
  digest         TEXT PRIMARY KEY,                -- SHA-256 hex of the code
  grant_id       TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
  client_id      TEXT NOT NULL,
  redirect_uri   TEXT NOT NULL,
  code_challenge TEXT NOT NULL,                   -- S256 only
  expires_at     INTEGER NOT NULL,
  used_at        INTEGER
);

CREATE TABLE IF NOT EXISTS oauth_tokens (
  digest         TEXT PRIMARY KEY,                -- SHA-256 hex of the token
  grant_id       TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
  kind           TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
  created_at     INTEGER NOT NULL,
  expires_at     INTEGER NOT NULL,
  used_at        INTEGER                          -- refresh tokens: when rotated away
);
CREATE INDEX IF NOT EXISTS oauth_tokens_by_grant ON oauth_tokens(grant_id);
