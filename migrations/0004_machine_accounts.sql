-- The Fly token a deployment's machines were created with, when that is the owner's own
-- token (settings) rather than the operator's: sealed like the other secrets, bound to the
-- deployment. Every later machine operation (stop, start, credentials, teardown, reconcile,
-- re-provisioning) uses this account, so changing settings never strands a machine.
-- The app and which kind of account it is live in deployments.config. Documented in
-- docs/storage.md.

CREATE TABLE IF NOT EXISTS machine_accounts (
  deployment_id  TEXT PRIMARY KEY REFERENCES deployments(id) ON DELETE CASCADE,
  key_id         TEXT NOT NULL,                   -- which ENCRYPTION_KEYS entry sealed it
  nonce          TEXT NOT NULL,                   -- base64, 96-bit AES-GCM nonce
  ciphertext     TEXT NOT NULL,                   -- base64, AES-256-GCM with tag
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL
);
