//! [`Memo`] over KV (prefix `registry:`; see docs/storage.md). Best effort: a failed read is
//! a miss and a failed write is dropped, since the answer can always be asked again.

use worker::KvStore;

use crate::analysis::exists::Memo;

/// KV refuses TTLs under 60 s.
const KV_MIN_TTL: u64 = 60;

pub struct KvMemo<'a> {
    pub kv: &'a KvStore,
}

impl Memo for KvMemo<'_> {
    async fn get(&self, key: &str) -> Option<String> {
        self.kv.get(key).text().await.ok().flatten()
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: u64) {
        if let Ok(put) = self.kv.put(key, value) {
            let _ = put.expiration_ttl(ttl_secs.max(KV_MIN_TTL)).execute().await;
        }
    }
}
