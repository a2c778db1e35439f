//! The hop from the Worker to a deployment's machine: its runner's `/mcp` behind Fly's
//! proxy (`fly-force-instance-id` picks the machine, and wakes it when auto-stopped), with
//! the per-machine upstream secret as the bearer. Times out only while waiting for the
//! response head; once it arrives the body is the runtime's stream, handed on untouched.

use std::time::Duration;

use futures_util::future::{select, Either};
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit};

use crate::gateway::failure::Failure;
pub use crate::gateway::link::MachineLink;

/// How long a machine may take to start answering (a woken machine boots first).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

impl MachineLink {
    /// A small JSON GET to another path of the runner (`/health`, `/logs?lines=…`) through
    /// the same proxy hop, with its own short timeout. Never retried here.
    pub async fn get_json(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<(u16, serde_json::Value), Failure> {
        let base = self.url.strip_suffix("/mcp").unwrap_or(&self.url);
        let h = Headers::new();
        let set = |k: &str, v: &str| h.set(k, v).map_err(|_| Failure::Internal);
        set("authorization", &format!("Bearer {}", self.secret))?;
        set("fly-force-instance-id", &self.machine_id)?;
        set("accept", "application/json")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Get).with_headers(h);
        let request = Request::new_with_init(&format!("{base}{path}"), &init)
            .map_err(|_| Failure::Internal)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(request);
        let sending = Box::pin(fetch.send_with_signal(&signal));
        let mut resp = match select(sending, Box::pin(Delay::from(timeout))).await {
            Either::Left((Ok(resp), _)) => resp,
            Either::Left((Err(_), _)) => return Err(Failure::Unreachable),
            Either::Right(_) => {
                controller.abort();
                return Err(Failure::Timeout);
            }
        };
        let status = resp.status_code();
        let body = resp.json::<serde_json::Value>().await.unwrap_or_default();
        Ok((status, body))
    }

    /// Sends one request. `headers` are the client's forwardable headers; the upstream
    /// session id, if any, replaces the client's.
    pub async fn send(
        &self,
        method: Method,
        headers: &[(String, String)],
        body: Option<&[u8]>,
        session: Option<&str>,
    ) -> Result<worker::Response, Failure> {
        let h = Headers::new();
        let set = |k: &str, v: &str| h.set(k, v).map_err(|_| Failure::Internal);
        for (k, v) in headers {
            set(k, v)?;
        }
        set("authorization", &format!("Bearer {}", self.secret))?;
        set("fly-force-instance-id", &self.machine_id)?;
        if let Some(s) = session {
            set(mcp_wire::version::HEADER_SESSION_ID, s)?;
        }
        let mut init = RequestInit::new();
        init.with_method(method).with_headers(h);
        if let Some(b) = body {
            init.with_body(Some(worker::js_sys::Uint8Array::from(b).into()));
        }
        let request = Request::new_with_init(&self.url, &init).map_err(|_| Failure::Internal)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(request);
        let sending = Box::pin(fetch.send_with_signal(&signal));
        let outcome = match select(sending, Box::pin(Delay::from(HEAD_TIMEOUT))).await {
            Either::Left((Ok(resp), _)) => Ok(resp),
            Either::Left((Err(_), _)) => Err(Failure::Unreachable),
            Either::Right(_) => {
                controller.abort();
                Err(Failure::Timeout)
            }
        };
        outcome
    }
}
