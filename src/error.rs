//! The one error type every layer returns (handlers, stores, cron jobs, the gateway) and its
//! single mapping to an HTTP status and the documented JSON body
//! `{"error": {"code": "...", "message": "...", "fields"?: [...]}}` (see `docs/api.md`).
//!
//! Internal detail (upstream bodies, D1 messages, panics) is carried for the log only: the
//! client sees a fixed, generic message for every 5xx.

use serde::Serialize;
use serde_json::{json, Value};

/// A field-level validation failure, named so a form can highlight it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A key from a request as an error may name it: control characters dropped, at most 64
/// characters (a field name is bounded by the contract); `None` when nothing is left.
pub fn shown_key(key: &str) -> Option<String> {
    let shown: String = key.chars().filter(|c| !c.is_control()).take(64).collect();
    (!shown.is_empty()).then_some(shown)
}

/// The field naming `key` under `parent` (`credentials.API_KEY`), or `parent` itself when
/// the key has nothing printable to name.
pub fn nested_field(parent: &str, key: &str) -> String {
    shown_key(key).map_or_else(|| parent.to_string(), |k| format!("{parent}.{k}"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// 400: the request cannot be read (bad JSON, bad encoding, bad parameter).
    BadRequest { code: &'static str, message: String },
    /// 422: the request was read but its fields are unacceptable.
    Validation { fields: Vec<FieldError> },
    /// 401 with `WWW-Authenticate: Bearer`: no or bad credentials.
    Unauthorized {
        reason: &'static str,
        message: String,
    },
    /// 403: authenticated (or anonymous) but refused, e.g. a disallowed `Origin`.
    Forbidden { code: &'static str, message: String },
    /// 404: no such route or no such resource *for this caller*.
    NotFound { message: String },
    /// 405 with `Allow`.
    MethodNotAllowed { allowed: &'static [&'static str] },
    /// 409: conflicts with the current state of the resource.
    Conflict { code: &'static str, message: String },
    /// 413: body over the documented cap (bytes).
    PayloadTooLarge { limit: usize },
    /// 415: body is not of the accepted media type.
    UnsupportedMediaType { expected: &'static str },
    /// 429 with `Retry-After`.
    RateLimited { retry_after_secs: u32 },
    /// 503: the operator has not configured what this route needs. Names only, never values.
    NotConfigured { missing: Vec<String> },
    /// 503 with optional `Retry-After`: a dependency is temporarily unavailable.
    Unavailable {
        message: String,
        retry_after_secs: Option<u32>,
    },
    /// 502: an upstream answered badly. `detail` is logged, never sent.
    Upstream {
        service: &'static str,
        detail: String,
    },
    /// 500: a fault of ours. `detail` is logged, never sent.
    Internal { detail: String },
}

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthorized {
            reason,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
        }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::Internal {
            detail: detail.into(),
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation {
            fields: vec![FieldError::new(field, message)],
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthorized { .. } => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound { .. } => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Conflict { .. } => 409,
            Self::PayloadTooLarge { .. } => 413,
            Self::UnsupportedMediaType { .. } => 415,
            Self::Validation { .. } => 422,
            Self::RateLimited { .. } => 429,
            Self::Internal { .. } => 500,
            Self::Upstream { .. } => 502,
            Self::NotConfigured { .. } | Self::Unavailable { .. } => 503,
        }
    }

    /// The stable, machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } | Self::Forbidden { code, .. } => code,
            Self::Conflict { code, .. } => code,
            Self::Validation { .. } => "validation_failed",
            Self::Unauthorized { .. } => "unauthorized",
            Self::NotFound { .. } => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::RateLimited { .. } => "rate_limited",
            Self::NotConfigured { .. } => "not_configured",
            Self::Unavailable { .. } => "unavailable",
            Self::Upstream { .. } => "upstream_error",
            Self::Internal { .. } => "internal_error",
        }
    }

    /// The human-readable message sent to the client. Never contains internal detail.
    pub fn public_message(&self) -> String {
        match self {
            Self::BadRequest { message, .. }
            | Self::Unauthorized { message, .. }
            | Self::Forbidden { message, .. }
            | Self::NotFound { message }
            | Self::Conflict { message, .. }
            | Self::Unavailable { message, .. } => message.clone(),
            Self::Validation { fields } => match fields.as_slice() {
                [one] => format!("{}: {}", one.field, one.message),
                _ => format!("{} fields are invalid.", fields.len()),
            },
            Self::MethodNotAllowed { allowed } => {
                format!("Method not allowed here; allowed: {}.", allowed.join(", "))
            }
            Self::PayloadTooLarge { limit } => {
                format!("Request body is larger than the limit of {limit} bytes.")
            }
            Self::UnsupportedMediaType { expected } => {
                format!("Request body must be sent as {expected}.")
            }
            Self::RateLimited { retry_after_secs } => {
                format!("Too many requests; retry after {retry_after_secs} s.")
            }
            Self::NotConfigured { .. } => {
                "The service is not fully configured; an operator must set the missing settings."
                    .to_string()
            }
            Self::Upstream { service, .. } => format!("The {service} service answered badly."),
            Self::Internal { .. } => "An internal error occurred.".to_string(),
        }
    }

    /// What goes into the log beyond the public message, if anything.
    pub fn log_detail(&self) -> Option<String> {
        match self {
            Self::Upstream { service, detail } => Some(format!("{service}: {detail}")),
            Self::Internal { detail } => Some(detail.clone()),
            Self::Unauthorized { reason, .. } => Some((*reason).to_string()),
            Self::NotConfigured { missing } => Some(format!("missing: {}", missing.join(","))),
            _ => None,
        }
    }

    /// Extra headers the status requires (`WWW-Authenticate`, `Allow`, `Retry-After`).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Unauthorized { reason, .. } => vec![(
                "WWW-Authenticate",
                format!("Bearer realm=\"catwalk-edge\", error=\"invalid_token\", error_description=\"{reason}\""),
            )],
            Self::MethodNotAllowed { allowed } => vec![("Allow", allowed.join(", "))],
            Self::RateLimited { retry_after_secs } => {
                vec![("Retry-After", retry_after_secs.to_string())]
            }
            Self::Unavailable {
                retry_after_secs: Some(secs),
                ..
            } => vec![("Retry-After", secs.to_string())],
            _ => Vec::new(),
        }
    }

    /// Rebuilds an error another part of the Worker (a Durable Object) answered with, from
    /// its status and documented body, so it can be returned again unchanged in meaning.
    pub fn from_relayed(status: u16, body: &str, retry_after: Option<u32>) -> Self {
        let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let message = v["error"]["message"].as_str().unwrap_or("").to_string();
        let code = v["error"]["code"].as_str().unwrap_or("");
        match status {
            400 => Self::BadRequest {
                code: KNOWN_BAD_REQUEST
                    .iter()
                    .find(|c| **c == code)
                    .copied()
                    .unwrap_or("bad_request"),
                message,
            },
            404 => Self::NotFound { message },
            422 => Self::Validation {
                fields: serde_json::from_value(v["error"]["fields"].clone())
                    .unwrap_or_else(|_| vec![FieldError::new("source", message)]),
            },
            429 => Self::RateLimited {
                retry_after_secs: retry_after.unwrap_or(30),
            },
            503 => Self::Unavailable {
                message,
                retry_after_secs: retry_after,
            },
            502 => Self::Upstream {
                service: "analysis",
                detail: message,
            },
            _ => Self::Internal {
                detail: format!("relayed {status}: {body}"),
            },
        }
    }

    /// The documented JSON body.
    pub fn body(&self) -> Value {
        let mut error = json!({ "code": self.code(), "message": self.public_message() });
        if let Self::Validation { fields } = self {
            error["fields"] = json!(fields);
        }
        json!({ "error": error })
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.code(), self.status())
    }
}

impl std::error::Error for AppError {}

pub type AppResult<T> = Result<T, AppError>;

/// 400 codes a relayed error may carry (see [`AppError::from_relayed`]).
const KNOWN_BAD_REQUEST: &[&str] = &[
    "invalid_source",
    "invalid_body",
    "invalid_json",
    "invalid_query",
    "body_read_failed",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_errors_keep_their_status_code_and_fields() {
        for e in [
            AppError::field("package", "is not published"),
            AppError::bad_request("invalid_source", "bad"),
            AppError::not_found("no repo"),
            AppError::Unavailable {
                message: "busy".into(),
                retry_after_secs: Some(7),
            },
        ] {
            let retry = e
                .headers()
                .iter()
                .find(|(k, _)| *k == "Retry-After")
                .and_then(|(_, v)| v.parse().ok());
            let back = AppError::from_relayed(e.status(), &e.body().to_string(), retry);
            assert_eq!(back, e);
        }
        assert_eq!(AppError::from_relayed(500, "x", None).status(), 500);
    }

    #[test]
    fn internal_errors_never_expose_their_detail() {
        let e = AppError::internal("D1_ERROR: no such table users; secret=abc");
        let body = e.body().to_string();
        assert!(!body.contains("no such table"));
        assert!(!body.contains("abc"));
        assert_eq!(e.status(), 500);
        assert_eq!(
            e.log_detail().as_deref(),
            Some("D1_ERROR: no such table users; secret=abc")
        );
    }

    #[test]
    fn upstream_errors_name_the_service_but_not_the_body() {
        let e = AppError::Upstream {
            service: "Fly Machines",
            detail: "body: token fm2_xyz".into(),
        };
        assert!(!e.body().to_string().contains("fm2_xyz"));
        assert_eq!(e.status(), 502);
    }

    #[test]
    fn every_error_has_the_one_documented_shape() {
        let all = [
            AppError::bad_request("invalid_json", "x"),
            AppError::field("name", "required"),
            AppError::unauthorized("missing_token", "x"),
            AppError::not_found("x"),
            AppError::MethodNotAllowed { allowed: &["GET"] },
            AppError::PayloadTooLarge { limit: 10 },
            AppError::UnsupportedMediaType {
                expected: "application/json",
            },
            AppError::RateLimited {
                retry_after_secs: 3,
            },
            AppError::NotConfigured {
                missing: vec!["AUTH_SECRET".into()],
            },
            AppError::internal("x"),
        ];
        for e in all {
            let body = e.body();
            let obj = body["error"].as_object().expect("error object");
            assert!(
                obj["code"].is_string() && obj["message"].is_string(),
                "{body}"
            );
            assert!((400..600).contains(&e.status()));
        }
    }

    #[test]
    fn unauthorized_carries_a_bearer_challenge() {
        let e = AppError::unauthorized("token_expired", "The token has expired.");
        let h = e.headers();
        assert_eq!(h[0].0, "WWW-Authenticate");
        assert!(h[0].1.starts_with("Bearer "));
    }

    #[test]
    fn not_configured_lists_names_in_the_log_only() {
        let e = AppError::NotConfigured {
            missing: vec!["FLY_API_TOKEN".into()],
        };
        assert!(!e.body().to_string().contains("FLY_API_TOKEN"));
    }
}
