//! An in-memory [`Upstream`]: answers by URL in order (the last one repeats), records
//! calls, POST bodies and sleeps, and can fail on demand.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{Fetched, Upstream, UpstreamError};

#[derive(Default)]
pub struct MemoryUpstream {
    pub answers: RefCell<HashMap<String, Vec<Result<Fetched, UpstreamError>>>>,
    pub calls: RefCell<Vec<String>>,
    pub bodies: RefCell<Vec<String>>,
    pub slept: RefCell<Vec<u64>>,
}

fn fetched(status: u16, body: Vec<u8>, retry_after: Option<u32>) -> Fetched {
    Fetched {
        status,
        body,
        retry_after,
    }
}

impl MemoryUpstream {
    fn set(&self, url: &str, a: Result<Fetched, UpstreamError>) {
        self.answers.borrow_mut().insert(url.into(), vec![a]);
    }

    /// Queues one more answer for `url`.
    pub fn then(&self, url: &str, status: u16, body: impl Into<Vec<u8>>) {
        self.answers
            .borrow_mut()
            .entry(url.into())
            .or_default()
            .push(Ok(fetched(status, body.into(), None)));
    }

    pub fn ok(&self, url: &str, body: impl Into<Vec<u8>>) {
        self.set(url, Ok(fetched(200, body.into(), None)));
    }

    pub fn status(&self, url: &str, status: u16, retry_after: Option<u32>) {
        self.set(url, Ok(fetched(status, Vec::new(), retry_after)));
    }

    pub fn fail(&self, url: &str, e: UpstreamError) {
        self.set(url, Err(e));
    }

    fn answer(&self, url: &str, max: usize) -> Result<Fetched, UpstreamError> {
        self.calls.borrow_mut().push(url.to_string());
        let mut all = self.answers.borrow_mut();
        let answer = match all.get_mut(url) {
            Some(q) if q.len() > 1 => Some(q.remove(0)),
            Some(q) => q.first().cloned(),
            None => None,
        };
        match answer {
            Some(Ok(f)) if f.body.len() > max => Err(UpstreamError::TooLarge),
            Some(a) => a,
            None => Ok(fetched(404, Vec::new(), None)),
        }
    }
}

impl Upstream for MemoryUpstream {
    async fn get(&self, url: &str, _accept: &str, max: usize) -> Result<Fetched, UpstreamError> {
        self.answer(url, max)
    }

    async fn post_json(
        &self,
        url: &str,
        _bearer: &str,
        body: &str,
        max: usize,
    ) -> Result<Fetched, UpstreamError> {
        self.bodies.borrow_mut().push(body.to_string());
        self.answer(url, max)
    }

    /// Answers are looked up by `"METHOD url"`.
    async fn call(
        &self,
        method: &str,
        url: &str,
        _authorization: &str,
        body: Option<&str>,
        max: usize,
        _timeout_ms: u64,
    ) -> Result<Fetched, UpstreamError> {
        if let Some(b) = body {
            self.bodies.borrow_mut().push(b.to_string());
        }
        self.answer(&format!("{method} {url}"), max)
    }

    async fn sleep(&self, ms: u64) {
        self.slept.borrow_mut().push(ms);
    }
}
