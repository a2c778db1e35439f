//! Small helpers for binding values to D1 statements.

use worker::wasm_bindgen::JsValue;
use worker::D1Result;

pub fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

pub fn opt_text(s: Option<&str>) -> JsValue {
    s.map(JsValue::from_str).unwrap_or(JsValue::NULL)
}

/// D1 numbers are JS doubles: millisecond timestamps fit exactly (< 2^53).
pub fn int(n: i64) -> JsValue {
    JsValue::from_f64(n as f64)
}

/// Whether a write changed any row (the compare-and-set answer).
pub fn changed(r: &D1Result) -> bool {
    r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) > 0
}
