//! Fetching a Client ID Metadata Document (the `client_id` is the URL): 5 s, 5 KB, no
//! redirect followed (a redirect could point anywhere, including inside a network), the
//! validated result cached in KV for as long as its `Cache-Control` allows (key
//! `oauth-client:v1:{sha256(url)}`). The URL was vetted by `oauth::client::document_url`
//! before it gets here.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use worker::{
    AbortController, Delay, Fetch, Headers, KvStore, Method, Request, RequestInit, RequestRedirect,
};

use crate::oauth::client::{cache_ttl_secs, document, Client, Refusal, MAX_DOCUMENT};
use crate::oauth::secret::digest;

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
    let unreachable = |_| refused("The client metadata document could not be fetched.".into());
    let headers = Headers::new();
    headers
        .set("accept", "application/json")
        .map_err(unreachable)?;
    headers
        .set("user-agent", "catwalk-edge")
        .map_err(unreachable)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get)
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    let request = Request::new_with_init(url, &init).map_err(unreachable)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sending = Box::pin(fetch.send_with_signal(&signal));
    let timed_out = || {
        refused(format!(
            "The client metadata document did not answer within {} s.",
            TIMEOUT.as_secs()
        ))
    };
    let mut response = match select(sending, Box::pin(Delay::from(TIMEOUT))).await {
        Either::Left((r, _)) => r.map_err(unreachable)?,
        Either::Right(_) => {
            controller.abort();
            return Err(timed_out());
        }
    };
    let status = response.status_code();
    if (300..400).contains(&status) {
        return Err(refused(
            "The client metadata document URL redirects; redirects are not followed.".into(),
        ));
    }
    if status != 200 {
        return Err(refused(format!(
            "The client metadata document URL answered HTTP {status}."
        )));
    }
    let header = |name: &str| response.headers().get(name).ok().flatten();
    let too_large = || {
        refused(format!(
            "The client metadata document is larger than {MAX_DOCUMENT} bytes."
        ))
    };
    if header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|n| n > MAX_DOCUMENT)
    {
        controller.abort();
        return Err(too_large());
    }
    let cache_control = header("cache-control");
    let mut body = Vec::new();
    let mut stream = response.stream().map_err(unreachable)?;
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(unreachable)?;
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    match select(Box::pin(read), Box::pin(Delay::from(TIMEOUT))).await {
        Either::Left((r, _)) => r?,
        Either::Right(_) => {
            controller.abort();
            return Err(timed_out());
        }
    }
    Ok((body, cache_control))
}
