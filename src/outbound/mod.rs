//! The outbound HTTP port: what the Worker asks of another service ([`Upstream`]) and
//! what comes back ([`Fetched`], [`UpstreamError`]). Analysis (GitHub, registries, the LLM)
//! and the Fly client are written against it; `platform::upstream::FetchUpstream` binds it
//! to the Worker's `fetch`, and [`memory`] is the in-memory fake the native tests use.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    Timeout,
    Unreachable(String),
    TooLarge,
}

/// The outbound HTTP the analysis needs. `async fn` without `Send`, as all our bindings.
#[allow(async_fn_in_trait)]
pub trait Upstream {
    /// GET `url`; the body is refused past `max` bytes.
    async fn get(&self, url: &str, accept: &str, max: usize) -> Result<Fetched, UpstreamError>;
    /// POST a JSON body with a bearer token (never logged); same caps.
    async fn post_json(
        &self,
        url: &str,
        bearer: &str,
        body: &str,
        max: usize,
    ) -> Result<Fetched, UpstreamError>;
    /// Any method, with an `Authorization` value (never logged), an optional JSON body and
    /// its own timeout (a Fly `wait` blocks for up to a minute by design).
    async fn call(
        &self,
        method: &str,
        url: &str,
        authorization: &str,
        body: Option<&str>,
        max: usize,
        timeout_ms: u64,
    ) -> Result<Fetched, UpstreamError>;
    /// Waits between retries.
    async fn sleep(&self, ms: u64);
}

#[cfg(test)]
pub mod memory;
