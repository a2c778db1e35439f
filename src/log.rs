//! Structured JSON log lines and the redaction layer every line passes through.
//!
//! One line per event, `{"ts","level","event","request_id",…}`. Before a line is written,
//! [`Redactor::redact`] masks configured secret values, `Bearer`/`FlyV1` credentials,
//! JWT-shaped strings, well-known token prefixes (ours, Fly's, GitHub's, OpenAI-style keys)
//! and the values of sensitive keys in `k=v` and `"k": "v"` form. It is a safety net: code
//! should not log secrets in the first place.

use serde_json::{Map, Value};

const MASK: &str = "[REDACTED]";
/// Configured secrets shorter than this are not searched for: masking every "a" would
/// destroy the log without protecting anything.
const MIN_SECRET_LEN: usize = 8;

/// Prefixes of credentials we or our upstreams issue. The prefix stays, the rest is masked.
const TOKEN_PREFIXES: &[&str] = &[
    "cwk_",
    "cwa_",
    "cwr_",
    "cwg_",
    "fo1_",
    "fm1r_",
    "fm1a_",
    "fm2_",
    "ghp_",
    "gho_",
    "ghs_",
    "ghu_",
    "github_pat_",
    "sk-",
    "upk_",
];

/// Keys whose values are secrets wherever they appear (`k=v`, `"k":"v"`), compared
/// lowercase with `-` folded to `_`.
const SENSITIVE_KEYS: &[&str] = &[
    "authorization",
    "token",
    "access_token",
    "refresh_token",
    "code_verifier",
    "id_token",
    "api_key",
    "apikey",
    "secret",
    "client_secret",
    "password",
    "x_access_token",
    "x_auth_secret",
    "auth_secret",
    "upstream_secret",
    "llm_api_key",
    "fly_api_token",
    "encryption_keys",
];

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '~' | '+' | '/' | '=' | '%')
}

fn is_sensitive_key(k: &str) -> bool {
    let k = k
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_ascii_lowercase()
        .replace('-', "_");
    SENSITIVE_KEYS.contains(&k.as_str())
}

/// Text between two runs that binds a key to its value: `=`, `:`, `": "`, `\":\"` …
fn is_binding(sep: &str) -> bool {
    let core: String = sep
        .chars()
        .filter(|c| !matches!(c, '"' | '\'' | '\\' | ' '))
        .collect();
    core == ":" || core == "="
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= MIN_SECRET_LEN)
            .map(str::to_string)
            .collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    /// Adds per-request secrets (e.g. an access token just minted).
    pub fn with(mut self, extra: &str) -> Self {
        if extra.len() >= MIN_SECRET_LEN {
            self.secrets.push(extra.to_string());
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
        self
    }

    pub fn redact(&self, input: &str) -> String {
        let mut text = input.to_string();
        for s in &self.secrets {
            if text.contains(s.as_str()) {
                text = text.replace(s.as_str(), MASK);
            }
        }
        mask_runs(&text)
    }
}

/// Walks the text as alternating separator / token runs and masks the token runs that
/// are credentials by shape or by what precedes them.
fn mask_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev_run = String::new();
    let mut sep = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if !is_token_char(c) {
            sep.push(c);
            out.push(c);
            chars.next();
            continue;
        }
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if !is_token_char(c) {
                break;
            }
            end = i + c.len_utf8();
            chars.next();
        }
        let run = &text[start..end];
        out.push_str(&mask_run(run, &prev_run, &sep));
        prev_run = run.to_string();
        sep.clear();
    }
    out
}

fn mask_run(run: &str, prev_run: &str, sep: &str) -> String {
    // `Bearer xyz`, `FlyV1 xyz`, also right after `authorization=Bearer`
    let prev = prev_run
        .rsplit(['=', ':'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if (prev == "bearer" || prev == "flyv1") && sep == " " {
        return MASK.to_string();
    }
    // `"token": "xyz"`, `token: xyz`
    if is_sensitive_key(prev_run) && is_binding(sep) {
        return MASK.to_string();
    }
    // `token=xyz` inside one run (query strings, form bodies)
    if let Some((k, _)) = run.split_once('=') {
        if is_sensitive_key(k) {
            return format!("{k}={MASK}");
        }
    }
    // JWT: three base64url segments, the first an encoded `{"`
    if run.starts_with("eyJ") && run.matches('.').count() >= 2 {
        return MASK.to_string();
    }
    for p in TOKEN_PREFIXES {
        if run.len() > p.len() + 4 && run.starts_with(p) {
            return format!("{p}{MASK}");
        }
    }
    run.to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Renders one redacted JSON log line. `fields` that are not an object are nested under
/// `"data"`.
pub fn render(redactor: &Redactor, ts: &str, level: Level, event: &str, fields: Value) -> String {
    let mut line = Map::new();
    line.insert("ts".into(), Value::String(ts.to_string()));
    line.insert("level".into(), Value::String(level.as_str().into()));
    line.insert("event".into(), Value::String(event.to_string()));
    match fields {
        Value::Object(map) => line.extend(map),
        Value::Null => {}
        other => {
            line.insert("data".into(), other);
        }
    }
    redactor.redact(&Value::Object(line).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r() -> Redactor {
        Redactor::new(["configured-secret-value", "short"])
    }

    #[test]
    fn configured_secret_values_are_masked_anywhere() {
        let out = r().redact("x configured-secret-value y");
        assert_eq!(out, "x [REDACTED] y");
        // too short to be searched for
        assert!(r().redact("short").contains("short"));
    }

    #[test]
    fn bearer_and_fly_credentials_are_masked() {
        assert_eq!(
            r().redact("Authorization: Bearer abc.def"),
            "Authorization: [REDACTED] [REDACTED]"
        );
        assert!(!r().redact("authorization=Bearer zzz123").contains("zzz123"));
        assert!(!r()
            .redact("FlyV1 fm2_lJPECAAAAAAAA,fm2_xyz")
            .contains("lJPECAAAA"));
    }

    #[test]
    fn jwts_and_prefixed_tokens_are_masked_by_shape() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.sig_-x";
        assert!(!r().redact(&format!("got {jwt} ok")).contains("eyJzdWIi"));
        assert_eq!(r().redact("cwk_0123456789abcdef"), "cwk_[REDACTED]");
        assert_eq!(r().redact("key sk-or-v1-abcdef"), "key sk-[REDACTED]");
        assert_eq!(r().redact("cwk_"), "cwk_");
    }

    #[test]
    fn values_of_sensitive_keys_are_masked_in_queries_and_json() {
        let q = r().redact("/api/mcp/dep_1?token=s3cr3tvalue&x=1");
        assert_eq!(q, "/api/mcp/dep_1?token=[REDACTED]&x=1");
        let j = r()
            .redact(&json!({"Authorization": "opaque-thing", "X-Access-Token": "t0k"}).to_string());
        assert!(!j.contains("opaque-thing") && !j.contains("t0k"), "{j}");
        let escaped = r().redact(r#"{"msg":"{\"password\":\"pw123456\"}"}"#);
        assert!(!escaped.contains("pw123456"), "{escaped}");
    }

    #[test]
    fn ordinary_text_passes_untouched() {
        let s = "GET /api/health 200 in 3 ms; user usr_abc created";
        assert_eq!(r().redact(s), s);
    }

    #[test]
    fn rendered_lines_are_json_and_redacted() {
        let line = render(
            &r(),
            "2026-01-01T00:00:00Z",
            Level::Info,
            "request",
            json!({"path": "/x?token=abcdefgh"}),
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "request");
        assert_eq!(v["path"], "/x?token=[REDACTED]");
    }
}
