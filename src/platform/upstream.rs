//! [`Upstream`] over the Worker's `fetch`: a per-request timeout (the request is aborted,
//! not just abandoned), the body read as a stream and refused past its cap, and
//! `Retry-After` surfaced. URLs are built by the callers from configured bases only.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

use crate::analysis::collect::{Fetched, Upstream, UpstreamError};

/// Registries answer within this or are treated as unreachable (issue 4: 5 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

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

impl Upstream for FetchUpstream {
    async fn get(&self, url: &str, accept: &str, max: usize) -> Result<Fetched, UpstreamError> {
        let unreachable = |e: worker::Error| UpstreamError::Unreachable(e.to_string());
        let headers = Headers::new();
        headers.set("accept", accept).map_err(unreachable)?;
        headers
            .set("user-agent", "catwalk-edge (+https://github.com/catwalk)")
            .map_err(unreachable)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get).with_headers(headers);
        let request = Request::new_with_init(url, &init).map_err(unreachable)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(request);
        let send = Box::pin(fetch.send_with_signal(&signal));
        let mut response = match select(send, Box::pin(Delay::from(self.timeout))).await {
            Either::Left((result, _)) => result.map_err(unreachable)?,
            Either::Right(_) => {
                controller.abort();
                return Err(UpstreamError::Timeout);
            }
        };
        let status = response.status_code();
        let retry_after = response
            .headers()
            .get("retry-after")
            .ok()
            .flatten()
            .and_then(|v| v.trim().parse::<u32>().ok());
        if let Some(len) = response
            .headers()
            .get("content-length")
            .ok()
            .flatten()
            .and_then(|v| v.parse::<usize>().ok())
        {
            if len > max {
                return Err(UpstreamError::TooLarge);
            }
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
            match select(Box::pin(read), Box::pin(Delay::from(self.timeout))).await {
                Either::Left((result, _)) => result?,
                Either::Right(_) => return Err(UpstreamError::Timeout),
            }
        }
        Ok(Fetched {
            status,
            body,
            retry_after,
        })
    }
}
