//! [`Upstream`] over the Worker's `fetch`: a per-request timeout (the request is aborted,
//! not just abandoned), the body read as a stream and refused past its cap, and
//! `Retry-After` surfaced. URLs are built by the callers from configured bases only.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use worker::wasm_bindgen::JsValue;
use worker::{
    AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect,
};

use crate::outbound::{Fetched, Upstream, UpstreamError};

/// Registries answer within this or are treated as unreachable (5 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// A model needs longer than a registry to answer.
pub const LLM_TIMEOUT: Duration = Duration::from_secs(45);

pub struct FetchUpstream {
    pub timeout: Duration,
}

impl Default for FetchUpstream {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

fn unreachable(e: worker::Error) -> UpstreamError {
    UpstreamError::Unreachable(e.to_string())
}

impl FetchUpstream {
    /// One request: `timeout` for the head and again for the body, the body refused past
    /// `max`. Also gives the answer's `Cache-Control` (for callers that cache by it).
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: Headers,
        body: Option<&str>,
        max: usize,
        timeout: Duration,
        redirect: RequestRedirect,
    ) -> Result<(Fetched, Option<String>), UpstreamError> {
        headers
            .set("user-agent", "catwalk-edge")
            .map_err(unreachable)?;
        let mut init = RequestInit::new();
        init.with_method(method)
            .with_headers(headers)
            .with_redirect(redirect);
        if let Some(b) = body {
            init.with_body(Some(JsValue::from_str(b)));
        }
        let request = Request::new_with_init(url, &init).map_err(unreachable)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(request);
        let sending = Box::pin(fetch.send_with_signal(&signal));
        let mut response = match select(sending, Box::pin(Delay::from(timeout))).await {
            Either::Left((result, _)) => result.map_err(unreachable)?,
            Either::Right(_) => {
                controller.abort();
                return Err(UpstreamError::Timeout);
            }
        };
        let status = response.status_code();
        let header = |name: &str| response.headers().get(name).ok().flatten();
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u32>().ok());
        let cache_control = header("cache-control");
        if header("content-length")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .is_some_and(|len| len > max)
        {
            controller.abort();
            return Err(UpstreamError::TooLarge);
        }
        let mut body = Vec::new();
        if let Ok(mut stream) = response.stream() {
            let read = async {
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(unreachable)?;
                    if body.len() + chunk.len() > max {
                        return Err(UpstreamError::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(())
            };
            match select(Box::pin(read), Box::pin(Delay::from(timeout))).await {
                Either::Left((result, _)) => result?,
                Either::Right(_) => {
                    controller.abort();
                    return Err(UpstreamError::Timeout);
                }
            }
        }
        let fetched = Fetched {
            status,
            body,
            retry_after,
        };
        Ok((fetched, cache_control))
    }

    /// A GET that does not follow redirects (a 3xx comes back as it is), with the answer's
    /// `Cache-Control`: for documents fetched from URLs a stranger named.
    pub async fn get_unfollowed(
        &self,
        url: &str,
        accept: &str,
        max: usize,
    ) -> Result<(Fetched, Option<String>), UpstreamError> {
        self.get_with(url, accept, max, RequestRedirect::Manual)
            .await
    }

    async fn get_with(
        &self,
        url: &str,
        accept: &str,
        max: usize,
        redirect: RequestRedirect,
    ) -> Result<(Fetched, Option<String>), UpstreamError> {
        let headers = Headers::new();
        headers.set("accept", accept).map_err(unreachable)?;
        self.send(Method::Get, url, headers, None, max, self.timeout, redirect)
            .await
    }
}

impl Upstream for FetchUpstream {
    async fn get(&self, url: &str, accept: &str, max: usize) -> Result<Fetched, UpstreamError> {
        let sent = self.get_with(url, accept, max, RequestRedirect::Follow);
        sent.await.map(|(f, _)| f)
    }

    async fn post_json(
        &self,
        url: &str,
        bearer: &str,
        body: &str,
        max: usize,
    ) -> Result<Fetched, UpstreamError> {
        let timeout_ms = self.timeout.as_millis() as u64;
        let auth = format!("Bearer {bearer}");
        self.call("POST", url, &auth, Some(body), max, timeout_ms)
            .await
    }

    async fn call(
        &self,
        method: &str,
        url: &str,
        authorization: &str,
        body: Option<&str>,
        max: usize,
        timeout_ms: u64,
    ) -> Result<Fetched, UpstreamError> {
        let headers = Headers::new();
        headers
            .set("accept", "application/json")
            .map_err(unreachable)?;
        if body.is_some() {
            headers
                .set("content-type", "application/json")
                .map_err(unreachable)?;
        }
        headers
            .set("authorization", authorization)
            .map_err(unreachable)?;
        let method = Method::from(method.to_string());
        let timeout = Duration::from_millis(timeout_ms);
        let follow = RequestRedirect::Follow;
        let sent = self.send(method, url, headers, body, max, timeout, follow);
        sent.await.map(|(f, _)| f)
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await;
    }
}
