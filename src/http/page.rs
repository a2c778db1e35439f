//! Keyset pagination for newest-first lists: `?limit=1..100&cursor=…`, where the cursor is
//! the last item's `{created_at}.{id}` (opaque to clients). Keyset rather than offsets, so
//! rows created while someone pages do not shift what they see.

use crate::error::AppError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    /// Items strictly older than this (created_at, id) pair.
    pub before: Option<(i64, String)>,
}

fn id_ok(id: &str) -> bool {
    match id.split_once('_') {
        Some((prefix, rest)) => {
            (1..=8).contains(&prefix.len())
                && prefix.bytes().all(|b| b.is_ascii_lowercase())
                && (1..=64).contains(&rest.len())
                && rest.bytes().all(|b| b.is_ascii_hexdigit())
        }
        None => false,
    }
}

pub fn parse(query: Option<&str>) -> Result<Page, AppError> {
    let mut page = Page {
        limit: DEFAULT_LIMIT,
        before: None,
    };
    let bad = |what: &str| AppError::bad_request("invalid_query", what.to_string());
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "limit" => {
                page.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad(&format!("limit must be a number from 1 to {MAX_LIMIT}."))
                    })?;
            }
            "cursor" => {
                let parsed = v
                    .split_once('.')
                    .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id)))
                    .filter(|(t, id)| *t >= 0 && id_ok(id));
                let (t, id) = parsed.ok_or_else(|| bad("cursor is not one this API issued."))?;
                page.before = Some((t, id.to_string()));
            }
            _ => {}
        }
    }
    Ok(page)
}

/// The cursor for the page after one that ended with (`created_at`, `id`).
pub fn cursor(created_at: i64, id: &str) -> String {
    format!("{created_at}.{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors_round_trip() {
        assert_eq!(parse(None).unwrap().limit, DEFAULT_LIMIT);
        let p = parse(Some(&format!("limit=5&cursor={}", cursor(17, "dep_0a")))).unwrap();
        assert_eq!((p.limit, p.before), (5, Some((17, "dep_0a".to_string()))));
    }

    #[test]
    fn bad_values_are_400() {
        for q in [
            "limit=0",
            "limit=101",
            "limit=x",
            "cursor=abc",
            "cursor=1.dep_zz",
            "cursor=-1.dep_0a",
            "cursor=1.dep_0a'--",
            "cursor=1.%00",
        ] {
            assert_eq!(parse(Some(q)).unwrap_err().status(), 400, "{q}");
        }
    }
}
