//! Field-by-field extraction from a decoded JSON object, collecting every problem so a
//! 422 names all bad fields at once instead of one per round trip.

use serde_json::{Map, Value};

use crate::error::{AppError, FieldError};

pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// The body must be a JSON object; anything else is a 400.
    pub fn of(value: &'a Value) -> Result<Self, AppError> {
        match value {
            Value::Object(obj) => Ok(Self {
                obj,
                errors: Vec::new(),
            }),
            _ => Err(AppError::bad_request(
                "invalid_body",
                "The request body must be a JSON object.",
            )),
        }
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// A string of at most `max` characters with no control characters; `None` if absent
    /// or null. Wrong types and bad contents are recorded.
    pub fn optional_str(&mut self, field: &str, max: usize) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                if s.chars().count() > max {
                    self.fail(field, format!("must be at most {max} characters"));
                    None
                } else if s.chars().any(char::is_control) {
                    self.fail(field, "must not contain control characters");
                    None
                } else {
                    Some(s.trim().to_string())
                }
            }
            Some(_) => {
                self.fail(field, "must be a string");
                None
            }
        }
    }

    /// As [`optional_str`](Self::optional_str), and absent or blank is an error.
    pub fn required_str(&mut self, field: &str, max: usize) -> Option<String> {
        let present = self.obj.get(field).is_some_and(|v| !v.is_null());
        match self.optional_str(field, max) {
            Some(s) if !s.is_empty() => Some(s),
            Some(_) => {
                self.fail(field, "must not be empty");
                None
            }
            None => {
                if !present {
                    self.fail(field, "is required");
                }
                None
            }
        }
    }

    pub fn optional_bool(&mut self, field: &str) -> Option<bool> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.fail(field, "must be true or false");
                None
            }
        }
    }

    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field)
    }

    /// Ends extraction: a 422 naming every bad field, or the caller's value.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, AppError> {
        if self.errors.is_empty() {
            Ok(value())
        } else {
            Err(AppError::Validation {
                fields: self.errors,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let v = json!({"a": 5, "b": "x".repeat(11), "c": "ok", "d": "line\nbreak"});
        let mut f = Fields::of(&v).unwrap();
        let a = f.required_str("a", 10);
        let b = f.optional_str("b", 10);
        let c = f.required_str("c", 10);
        let d = f.optional_str("d", 100);
        let missing = f.required_str("missing", 10);
        let err = f.finish(|| ()).unwrap_err();
        assert_eq!(
            (a, b, c.as_deref(), d, missing),
            (None, None, Some("ok"), None, None)
        );
        match err {
            AppError::Validation { fields } => {
                let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
                assert_eq!(names, ["a", "b", "d", "missing"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_is_a_bad_request() {
        for v in [json!([]), json!("x"), json!(1), json!(null)] {
            assert_eq!(Fields::of(&v).err().map(|e| e.status()), Some(400));
        }
    }
}
