//! Fetching a Client ID Metadata Document (the `client_id` is the URL): 5 s, 5 KB, no
//! redirect followed (a redirect could point anywhere, including inside a network), the
//! validated result cached in KV for as long as its `Cache-Control` allows (key
//! `oauth-client:v1:{sha256(url)}`). The URL was vetted by `oauth::client::document_url`
//! before it gets here.

use std::time::Duration;

use worker::KvStore;

use crate::oauth::client::{cache_ttl_secs, document, Client, Refusal, MAX_DOCUMENT};
use crate::oauth::secret::digest;
use crate::outbound::UpstreamError;
use crate::platform::upstream::FetchUpstream;

const TIMEOUT: Duration = Duration::from_secs(5);

fn refused(description: String) -> Refusal {
    Refusal {
        error: "invalid_client",
        description,
    }
}

fn cache_key(url: &str) -> String {
    format!("oauth-client:v1:{}", digest(url))
}

/// The client the document at `url` describes.
pub async fn load(kv: &KvStore, url: &str) -> Result<Client, Refusal> {
    let key = cache_key(url);
    if let Ok(Some(text)) = kv.get(&key).text().await {
        if let Ok(c) = serde_json::from_str::<Client>(&text) {
            return Ok(c);
        }
    }
    let (body, cache_control) = get(url).await?;
    let client = document(url, &body)?;
    if let (Some(ttl), Ok(text)) = (
        cache_ttl_secs(cache_control.as_deref()),
        serde_json::to_string(&client),
    ) {
        if let Ok(put) = kv.put(&key, text) {
            let _ = put.expiration_ttl(ttl).execute().await;
        }
    }
    Ok(client)
}

async fn get(url: &str) -> Result<(Vec<u8>, Option<String>), Refusal> {
    let upstream = FetchUpstream { timeout: TIMEOUT };
    let (fetched, cache_control) = upstream
        .get_unfollowed(url, "application/json", MAX_DOCUMENT)
        .await
        .map_err(|e| match e {
            UpstreamError::Timeout => refused(format!(
                "The client metadata document did not answer within {} s.",
                TIMEOUT.as_secs()
            )),
            UpstreamError::TooLarge => refused(format!(
                "The client metadata document is larger than {MAX_DOCUMENT} bytes."
            )),
            UpstreamError::Unreachable(_) => {
                refused("The client metadata document could not be fetched.".into())
            }
        })?;
    match fetched.status {
        200 => Ok((fetched.body, cache_control)),
        300..=399 => Err(refused(
            "The client metadata document URL redirects; redirects are not followed.".into(),
        )),
        status => Err(refused(format!(
            "The client metadata document URL answered HTTP {status}."
        ))),
    }
}
