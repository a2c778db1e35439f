//! The log sink: one redacted JSON line per call on the Worker's console (which
//! `wrangler tail` and Workers Logs collect), tagged with the request id.

use serde_json::{json, Value};

use crate::config::Config;
use crate::ids::random_hex;
use crate::log::{render, Level, Redactor};
use crate::time::{now_ms, rfc3339};

#[derive(Debug, Clone)]
pub struct Logger {
    redactor: Redactor,
    request_id: String,
}

impl Logger {
    pub fn new(redactor: Redactor, request_id: impl Into<String>) -> Self {
        Self {
            redactor,
            request_id: request_id.into(),
        }
    }

    /// A logger for work no request started (an alarm, a cron run, an object's own
    /// call): the configuration's secrets masked, a fresh id tying its lines together.
    pub fn background(config: &Config) -> Self {
        Self::new(
            Redactor::new(config.secret_values()),
            random_hex(8).unwrap_or_default(),
        )
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Masks one more secret in every later line of this request (e.g. a minted token).
    pub fn also_redact(&mut self, secret: &str) {
        self.redactor = std::mem::take(&mut self.redactor).with(secret);
    }

    pub fn emit(&self, level: Level, event: &str, fields: Value) {
        let mut fields = fields;
        if let Value::Object(map) = &mut fields {
            map.insert("request_id".into(), json!(self.request_id));
        }
        let line = render(&self.redactor, &rfc3339(now_ms()), level, event, fields);
        write_line(level, &line);
    }

    pub fn info(&self, event: &str, fields: Value) {
        self.emit(Level::Info, event, fields);
    }

    pub fn warn(&self, event: &str, fields: Value) {
        self.emit(Level::Warn, event, fields);
    }

    pub fn error(&self, event: &str, fields: Value) {
        self.emit(Level::Error, event, fields);
    }
}

#[cfg(target_arch = "wasm32")]
fn write_line(level: Level, line: &str) {
    match level {
        Level::Error => worker::console_error!("{line}"),
        Level::Warn => worker::console_warn!("{line}"),
        Level::Info => worker::console_log!("{line}"),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn write_line(_level: Level, line: &str) {
    eprintln!("{line}");
}
