//! Request bodies: the size cap (enforced while reading, not trusted from headers), the
//! accepted media type, UTF-8, a nesting limit, and JSON decoding, each failure a 4xx with
//! its own code (documented in `docs/api.md`).

use serde_json::Value;

use crate::error::AppError;

/// Cap for JSON bodies on `/api/*` routes. Large enough for a deployment with dozens of
/// credentials, small enough that a hostile client cannot make us buffer much.
pub const MAX_JSON_BODY: usize = 64 * 1024;
/// Deeper JSON than this is refused before `serde_json` recurses into it.
pub const MAX_JSON_DEPTH: usize = 32;

/// `Content-Type` must be `application/json`, optionally with `charset=utf-8`.
pub fn check_content_type(value: Option<&str>) -> Result<(), AppError> {
    let unsupported = AppError::UnsupportedMediaType {
        expected: "application/json",
    };
    let value = value.ok_or(unsupported.clone())?;
    let mut parts = value.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(unsupported);
    }
    for param in parts.filter(|p| !p.is_empty()) {
        if let Some((k, v)) = param.split_once('=') {
            if k.trim().eq_ignore_ascii_case("charset")
                && !v.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            {
                return Err(unsupported);
            }
        }
    }
    Ok(())
}

/// A declared `Content-Length` over the cap is refused before reading a byte.
pub fn check_declared_length(value: Option<&str>, limit: usize) -> Result<(), AppError> {
    match value {
        None => Ok(()),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if n > limit as u64 => Err(AppError::PayloadTooLarge { limit }),
            Ok(_) => Ok(()),
            Err(_) => Err(AppError::bad_request(
                "invalid_content_length",
                "Content-Length is not a number.",
            )),
        },
    }
}

/// Accumulates a streamed body and fails as soon as it passes the cap, whatever the
/// headers claimed.
pub struct CappedBuffer {
    buf: Vec<u8>,
    limit: usize,
}

impl CappedBuffer {
    pub fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), AppError> {
        if self.buf.len() + chunk.len() > self.limit {
            return Err(AppError::PayloadTooLarge { limit: self.limit });
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

/// Maximum nesting of arrays and objects, ignoring brackets inside strings. Stops counting
/// once past `limit` so the scan is linear and bounded.
fn depth_exceeds(bytes: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Decodes a JSON body after the checks above.
pub fn decode_json(bytes: &[u8]) -> Result<Value, AppError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::bad_request(
            "empty_body",
            "A JSON request body is required.",
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        AppError::bad_request("invalid_utf8", "The request body is not valid UTF-8.")
    })?;
    if depth_exceeds(text.as_bytes(), MAX_JSON_DEPTH) {
        return Err(AppError::bad_request(
            "json_too_deep",
            format!("JSON nesting deeper than {MAX_JSON_DEPTH} levels is not accepted."),
        ));
    }
    serde_json::from_str(text).map_err(|e| {
        AppError::bad_request(
            "invalid_json",
            format!(
                "The request body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<Value, AppError>) -> &'static str {
        r.unwrap_err().code()
    }

    #[test]
    fn json_content_types_are_accepted_with_a_utf8_charset_only() {
        assert!(check_content_type(Some("application/json")).is_ok());
        assert!(check_content_type(Some("Application/JSON; charset=UTF-8")).is_ok());
        for bad in [
            None,
            Some("text/plain"),
            Some("application/json; charset=latin1"),
            Some("multipart/form-data"),
        ] {
            assert_eq!(
                check_content_type(bad).unwrap_err().status(),
                415,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn declared_lengths_over_the_cap_are_refused_up_front() {
        assert!(check_declared_length(Some("10"), 10).is_ok());
        assert_eq!(
            check_declared_length(Some("11"), 10).unwrap_err().status(),
            413
        );
        assert_eq!(
            check_declared_length(Some("-1"), 10).unwrap_err().status(),
            400
        );
    }

    #[test]
    fn the_buffer_refuses_the_chunk_that_crosses_the_cap() {
        let mut b = CappedBuffer::new(5);
        b.push(b"abc").unwrap();
        assert_eq!(b.push(b"def").unwrap_err().status(), 413);
    }

    #[test]
    fn malformed_bodies_get_distinct_codes() {
        assert_eq!(code(decode_json(b"  ")), "empty_body");
        assert_eq!(code(decode_json(b"{\"a\": \xff}")), "invalid_utf8");
        assert_eq!(code(decode_json(b"{\"a\": }")), "invalid_json");
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH + 1),
            "]".repeat(MAX_JSON_DEPTH + 1)
        );
        assert_eq!(code(decode_json(deep.as_bytes())), "json_too_deep");
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(decode_json(ok.as_bytes()).is_ok());
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_nesting() {
        let s = format!("{{\"a\": \"{}\\\"{}\"}}", "[".repeat(100), "{".repeat(100));
        assert!(decode_json(s.as_bytes()).is_ok());
    }
}
