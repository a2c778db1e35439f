//! Request bodies in, JSON responses out, with the body rules of `crate::http::body`
//! applied while the stream is read.

use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use worker::{Headers, Request, Response};

use crate::error::{AppError, AppResult};
use crate::http::body::{
    check_content_type, check_declared_length, decode_json, CappedBuffer, MAX_JSON_BODY,
};

/// A subrequest's (or an object's) answer as text, read by the runtime in one call: the
/// `worker` crate reads a streamed body through a chunk-by-chunk reader loop, several JS
/// crossings per answer on the gateway's hot path.
pub async fn response_text(resp: Response) -> worker::Result<String> {
    let raw: worker::web_sys::Response = resp.into();
    let text = worker::wasm_bindgen_futures::JsFuture::from(raw.text()?).await?;
    text.as_string()
        .ok_or_else(|| worker::Error::RustError("response text is not a string".into()))
}

/// The raw query string (without `?`), read from the URL text: the runtime already parsed
/// the URL once, and a second parse in wasm is measurable on the gateway's hot path.
pub fn query(req: &Request) -> Option<String> {
    let url = req.inner().url();
    let (_, rest) = url.split_once('?')?;
    Some(rest.split('#').next().unwrap_or_default().to_string())
}

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Reads and decodes a JSON body, refusing it as soon as it passes [`MAX_JSON_BODY`].
pub async fn read_json(req: &mut Request) -> AppResult<Value> {
    check_content_type(header(req, "content-type").as_deref())?;
    decode_json(&read_capped(req, MAX_JSON_BODY).await?)
}

/// Reads a whole body of at most `max` bytes (declared or streamed), else a 413.
pub async fn read_capped(req: &mut Request, max: usize) -> AppResult<Vec<u8>> {
    let declared = header(req, "content-length");
    check_declared_length(declared.as_deref(), max)?;
    if declared.is_some() {
        // A declared length within the cap is all the runtime will deliver: read it in one
        // call instead of a reader loop (several JS crossings per request on the gateway's
        // hot path).
        let body = req.bytes().await.map_err(|_| {
            AppError::bad_request("body_read_failed", "The request body could not be read.")
        })?;
        if body.len() > max {
            return Err(AppError::PayloadTooLarge { limit: max });
        }
        return Ok(body);
    }
    let mut buf = CappedBuffer::new(max);
    if req.inner().body().is_some() {
        let mut stream = req.stream()?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| {
                AppError::bad_request("body_read_failed", "The request body could not be read.")
            })?;
            if let Err(too_large) = buf.push(&chunk) {
                drain(&mut stream).await;
                return Err(too_large);
            }
        }
    }
    Ok(buf.into_inner())
}

/// After refusing an oversized body, reads (and discards) up to [`DRAIN_LIMIT`] more bytes
/// before answering, so the client sees a clean 413 instead of a reset mid-upload and
/// keep-alive connections behind us are not left with half a body in them (wrangler's
/// local proxy answers the *next* request with 503 otherwise). Past the limit the stream
/// is cancelled when dropped.
async fn drain(stream: &mut worker::ByteStream) {
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > DRAIN_LIMIT {
            break;
        }
    }
}

pub const DRAIN_LIMIT: usize = 1024 * 1024;

pub fn json<T: Serialize>(status: u16, value: &T) -> AppResult<Response> {
    Ok(Response::from_json(value)?.with_status(status))
}

/// A JSON body that is already serialized (relayed from a Durable Object), with its
/// status and optional `Retry-After`; built fresh so its headers stay mutable.
pub fn json_text(status: u16, body: String, retry_after: Option<&str>) -> worker::Result<Response> {
    let mut resp = Response::ok(body)?.with_status(status);
    resp.headers_mut().set("content-type", "application/json")?;
    if let Some(r) = retry_after {
        resp.headers_mut().set("retry-after", r)?;
    }
    Ok(resp)
}

/// The response for an error: its JSON body, status and required headers. Never fails:
/// if even that cannot be built, a bare 500 is returned.
pub fn error_response(e: &AppError) -> Response {
    let build = || -> worker::Result<Response> {
        let headers = Headers::new();
        headers.set("Content-Type", "application/json")?;
        for (k, v) in e.headers() {
            headers.set(k, &v)?;
        }
        Ok(Response::ok(e.body().to_string())?
            .with_status(e.status())
            .with_headers(headers))
    };
    build().unwrap_or_else(|_| {
        Response::empty()
            .map(|r| r.with_status(500))
            .unwrap_or_else(|_| Response::error("", 500).expect("static response"))
    })
}
