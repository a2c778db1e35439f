//! 2026-07-28 requests on `/mcp`: one JSON-RPC request per POST, no session, checked
//! against its headers (`mcp_wire::stateless::check`), served on a pooled child (see
//! [`crate::pool`]) and answered in this era's shapes.
//!
//! - `server/discover`: passed through to a child that speaks the era; for a bridged one,
//!   built from a pooled child's `initialize` result (capabilities, instructions,
//!   serverInfo).
//! - Any other request: its id replaced by a runner id, its envelope removed when
//!   bridging, written to a leased child; the answer gets the client's id back and, when
//!   bridging, `resultType: "complete"` and the serverInfo stamp.
//! - The answer is plain JSON with the status of its error code (404 for -32601, 400 for
//!   -32602 …) when it comes without notifications before it within [`SSE_AFTER`];
//!   otherwise the response commits to SSE (progress first, then the answer), with
//!   keep-alive comments. Closing that stream is the cancellation: the child is sent
//!   `notifications/cancelled` for the runner id and the child goes back to the pool.
//! - A notification POST is acknowledged (202) and dropped: the era defines no
//!   client-to-server notifications, and acting on a posted `notifications/cancelled`
//!   by a client-chosen id would let one caller cancel another's request.
//!
//! ## Server requests: `input_required`
//! A bridged server may ask its client something while it handles `tools/call`,
//! `prompts/get` or `resources/read` (`sampling/createMessage`, `elicitation/create`,
//! `roots/list`). In 2026-07-28 such a question is an `InputRequiredResult` (SEP-2322):
//! the runner answers the client's request with `resultType: "input_required"`, the
//! server's request under a key in `inputRequests` and an unguessable `requestState`, and
//! keeps the child (and the call in flight on it) aside. The client retries the same
//! request with `inputResponses[key]` and that `requestState`: the runner writes the
//! response to the child under the server's own request id and relays the rest of the
//! call as the answer to the retry. A `requestState` is good for one retry within
//! [`PARKED_FOR`]; after that the server's question is answered with an error, the call
//! is cancelled and the child returns to the pool. Where the spec defines no
//! `input_required` — a server request during any other method, or one the client did
//! not declare the capability for in this request's `_meta` — the child gets a JSON-RPC
//! error (-32601) for its question, as a client without that capability would answer,
//! and the call goes on. A server `ping` is answered by the runner.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::{HeaderMap, Response};
use mcp_wire::jsonrpc::{self, classify, error_response, Kind};
use mcp_wire::stateless::{self, Envelope, DISCOVER};
use mcp_wire::version::STATELESS_VERSIONS;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::http::{self, Body};
use crate::pool::{Era, Lease, Pool, LEASE_WAIT};

mod answer;

use crate::serve::rpc_error;
pub use answer::SSE_AFTER;
use answer::{json_answer, pool_refusal, respond, Out};

/// How long a `requestState` of an `input_required` answer stays good.
pub const PARKED_FOR: Duration = Duration::from_secs(120);
/// Methods that would change a pooled child's connection for every later client.
const CONNECTION_METHODS: &[&str] = &[
    "initialize",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

/// A call waiting for its client's input.
struct Parked {
    lease: Lease,
    rx: mpsc::UnboundedReceiver<Value>,
    runner_id: Value,
    server_request_id: Value,
    key: String,
    method: String,
    name: Option<Value>,
    envelope: Envelope,
    era: Era,
}

pub struct Modern {
    pub pool: Arc<Pool>,
    parked: Mutex<HashMap<String, Parked>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn random_token() -> Option<String> {
    let mut rnd = [0u8; 16];
    getrandom::getrandom(&mut rnd).ok()?;
    Some(mcp_wire::session::from_random(&rnd))
}

impl Modern {
    pub fn new(pool: Arc<Pool>) -> Arc<Self> {
        Arc::new(Self {
            pool,
            parked: Mutex::new(HashMap::new()),
        })
    }

    /// Serves one 2026-07-28 POST (already authenticated, parsed and ready).
    pub async fn post(
        self: &Arc<Self>,
        headers: &HeaderMap,
        mut messages: Vec<Value>,
        accepts_json: bool,
        accepts_sse: bool,
    ) -> Response<Body> {
        let Some(body) = messages.pop().filter(|_| messages.is_empty()) else {
            return rpc_error(
                400,
                None,
                jsonrpc::INVALID_REQUEST,
                "Invalid Request: a 2026-07-28 POST carries one JSON-RPC message.",
                None,
            );
        };
        let (client_id, method) = match classify(&body) {
            Kind::Notification { .. } => return http::empty(202),
            Kind::Request { id, method } => (id, method),
            _ => {
                return rpc_error(
                    400,
                    None,
                    jsonrpc::INVALID_REQUEST,
                    "Invalid Request: a 2026-07-28 POST carries a request or a notification.",
                    None,
                )
            }
        };
        let envelope = match stateless::check(
            &body,
            |name| {
                headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect()
            },
            STATELESS_VERSIONS,
        ) {
            Ok(e) => e,
            Err(r) => {
                return rpc_error(
                    stateless::status_for(r.code),
                    Some(&client_id),
                    r.code,
                    &r.message,
                    r.data,
                )
            }
        };
        if CONNECTION_METHODS.contains(&method.as_str()) {
            return rpc_error(
                404,
                Some(&client_id),
                jsonrpc::METHOD_NOT_FOUND,
                &format!("Method not found: {method} does not exist in 2026-07-28."),
                None,
            );
        }
        let era = match self.pool.era().await {
            Ok(e) => e,
            Err(why) => return pool_refusal(why, &client_id),
        };
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        if era == Era::Handshake && method == DISCOVER {
            return match self.pool.initialize_result().await {
                Ok(init) => json_answer(&json!({"jsonrpc": "2.0", "id": client_id,
                    "result": stateless::discover_result(&init)})),
                Err(why) => pool_refusal(why, &client_id),
            };
        }
        let state = body
            .pointer("/params/requestState")
            .and_then(Value::as_str)
            .map(str::to_string);
        let parked = state.and_then(|s| lock(&self.parked).remove(&s));
        match parked {
            Some(p) => {
                if let Err(r) = self
                    .resume(p, &body, client_id.clone(), method, out_tx)
                    .await
                {
                    return r;
                }
            }
            None => {
                let lease = match self.pool.lease(LEASE_WAIT).await {
                    Ok(l) => l,
                    Err(why) => return pool_refusal(why, &client_id),
                };
                let runner_id = self.pool.next_id();
                let mut forwarded = body.clone();
                forwarded["id"] = runner_id.clone();
                if era == Era::Handshake {
                    stateless::strip_envelope(&mut forwarded);
                }
                let rx = match lease.child().exchange(forwarded).await {
                    Ok(rx) => rx,
                    Err(_) => {
                        return rpc_error(
                            500,
                            Some(&client_id),
                            jsonrpc::INTERNAL_ERROR,
                            "The MCP server has exited; retry.",
                            None,
                        )
                    }
                };
                let name =
                    stateless::name_param(&method).and_then(|f| body["params"].get(f).cloned());
                let call = Call {
                    lease,
                    rx,
                    runner_id,
                    client_id: client_id.clone(),
                    method,
                    name,
                    envelope,
                    era,
                };
                tokio::spawn(self.clone().relay(call, out_tx));
            }
        }
        respond(out_rx, accepts_json, accepts_sse).await
    }

    /// A retry that carries the `requestState` of a parked call: its answer goes to the
    /// server, and the call goes on as the answer to this retry.
    async fn resume(
        self: &Arc<Self>,
        p: Parked,
        body: &Value,
        client_id: Value,
        method: String,
        out: mpsc::UnboundedSender<Out>,
    ) -> Result<(), Response<Body>> {
        let name = stateless::name_param(&method).and_then(|f| body["params"].get(f).cloned());
        if method != p.method || name != p.name {
            // Not the request that was asked: put it back for the right retry.
            let state = body
                .pointer("/params/requestState")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            lock(&self.parked).insert(state, p);
            return Err(rpc_error(
                400,
                Some(&client_id),
                stateless::INVALID_PARAMS,
                "Invalid params: requestState belongs to another request.",
                None,
            ));
        }
        let reply = match body
            .pointer("/params/inputResponses")
            .and_then(|r| r.get(&p.key))
        {
            Some(result) => json!({"jsonrpc": "2.0", "id": p.server_request_id, "result": result}),
            None => error_response(
                Some(&p.server_request_id),
                jsonrpc::INVALID_REQUEST,
                "The client gave no response to this request.",
                None,
            ),
        };
        // A write error means the child is gone: the relay below then sees its exit.
        let _ = p.lease.child().write(&reply).await;
        let call = Call {
            lease: p.lease,
            rx: p.rx,
            runner_id: p.runner_id,
            client_id,
            method,
            name,
            envelope: p.envelope,
            era: p.era,
        };
        tokio::spawn(self.clone().relay(call, out));
        Ok(())
    }

    /// Relays one call's messages from its child to `out` until the answer, a question
    /// that parks it, or its client going away (the cancellation).
    async fn relay(self: Arc<Self>, mut call: Call, out: mpsc::UnboundedSender<Out>) {
        loop {
            let msg = tokio::select! {
                m = call.rx.recv() => m,
                _ = out.closed() => {
                    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": call.runner_id, "reason": "the client closed the response stream"}});
                    let _ = call.lease.child().write(&cancel).await;
                    call.lease.child().forget(&call.runner_id);
                    return;
                }
            };
            let Some(mut msg) = msg else {
                let _ = out.send(Out::Final(error_response(
                    Some(&call.client_id),
                    jsonrpc::INTERNAL_ERROR,
                    "The MCP server ended the call without answering.",
                    None,
                )));
                return;
            };
            match classify(&msg) {
                Kind::Response { .. } => {
                    msg["id"] = call.client_id.clone();
                    if call.era == Era::Handshake {
                        if let Some(result) = msg.get_mut("result") {
                            stateless::complete(
                                result,
                                &call.method,
                                self.pool.server_info().as_ref(),
                            );
                        }
                    }
                    let _ = out.send(Out::Final(msg));
                    return;
                }
                Kind::Notification { .. } => {
                    let _ = out.send(Out::Note(msg));
                }
                Kind::Request { id, method } => {
                    if method == "ping" {
                        let _ = call
                            .lease
                            .child()
                            .write(&json!({"jsonrpc": "2.0", "id": id, "result": {}}))
                            .await;
                        continue;
                    }
                    if stateless::may_require_input(&call.method)
                        && call.envelope.can_answer(&method)
                    {
                        if let Some(state) = random_token() {
                            let key =
                                format!("{}-{}", method.replace('/', "-"), jsonrpc::id_key(&id));
                            let ask = stateless::input_required(&key, &msg, &state);
                            let _ = out.send(Out::Final(
                                json!({"jsonrpc": "2.0", "id": call.client_id, "result": ask}),
                            ));
                            self.park(
                                state,
                                Parked {
                                    lease: call.lease,
                                    rx: call.rx,
                                    runner_id: call.runner_id,
                                    server_request_id: id,
                                    key,
                                    method: call.method,
                                    name: call.name,
                                    envelope: call.envelope,
                                    era: call.era,
                                },
                            );
                            return;
                        }
                    }
                    let refusal = error_response(
                        Some(&id),
                        jsonrpc::METHOD_NOT_FOUND,
                        &format!("The client of this 2026-07-28 request cannot answer {method}."),
                        None,
                    );
                    let _ = call.lease.child().write(&refusal).await;
                }
                Kind::Invalid => {}
            }
        }
    }

    /// Keeps a call aside for its retry; after [`PARKED_FOR`] the server's question is
    /// refused, the call cancelled and the child returned.
    fn park(self: &Arc<Self>, state: String, p: Parked) {
        lock(&self.parked).insert(state.clone(), p);
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(PARKED_FOR).await;
            let Some(p) = lock(&this.parked).remove(&state) else {
                return;
            };
            let child = p.lease.child();
            let _ = child
                .write(&error_response(
                    Some(&p.server_request_id),
                    jsonrpc::INTERNAL_ERROR,
                    "The client did not answer in time.",
                    None,
                ))
                .await;
            let _ = child.write(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": p.runner_id, "reason": "the client did not answer in time"}})).await;
            child.forget(&p.runner_id);
        });
    }
}

/// One call in flight on a leased child.
struct Call {
    lease: Lease,
    rx: mpsc::UnboundedReceiver<Value>,
    runner_id: Value,
    client_id: Value,
    method: String,
    name: Option<Value>,
    envelope: Envelope,
    era: Era,
}
