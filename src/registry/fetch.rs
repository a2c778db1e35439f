//! Asking the registry (`MCP_REGISTRY_BASE`, its v0.1 API): a page of the server list and
//! one server version, each cached briefly. Its failures are told apart: down, slow or
//! rate-limiting us is a 503 with `Retry-After` (never an empty list), a server it does not
//! have is a 404, and an answer that is not what its API documents is a 502.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use crate::analysis::exists::Memo;
use crate::config::join;
use crate::error::{AppError, AppResult};
use crate::outbound::{Fetched, Upstream, UpstreamError};
use crate::registry::entry::{cursor_ok, read, read_list, Entry};

/// How long an answer is reused: the registry changes slowly, people browse quickly.
pub const CACHE_TTL_SECS: u64 = 120;
/// How long "no such server" is remembered (KV's shortest expiry): a typo, or someone
/// probing names, does not reach the registry on every request.
pub const MISSING_TTL_SECS: u64 = 60;
/// What a page or a server may weigh (a page of 100 entries is well under this).
const MAX_BODY: usize = 2 * 1024 * 1024;
/// Wait suggested when the registry gives none.
const RETRY_SECS: u32 = 30;
pub const DEFAULT_LIMIT: u32 = 30;
pub const MAX_LIMIT: u32 = 100;
pub const MAX_SEARCH: usize = 100;

/// A version as a person may ask for one (`?version=`, `"version"`): the registry's
/// versions are free-form but short; we pass it encoded, so this only keeps it sane.
pub fn version_ok(v: &str) -> bool {
    (1..=100).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'_'))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub search: Option<String>,
    pub cursor: Option<String>,
    pub limit: u32,
    pub include_inactive: bool,
}

/// `?search=&cursor=&limit=&include_inactive=`; anything unusable is a 400 that says why.
pub fn parse_query(query: Option<&str>) -> AppResult<Query> {
    let bad = |what: String| AppError::bad_request("invalid_query", what);
    let mut q = Query {
        search: None,
        cursor: None,
        limit: DEFAULT_LIMIT,
        include_inactive: false,
    };
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "search" => {
                let s = v.trim();
                if s.chars().count() > MAX_SEARCH || s.chars().any(char::is_control) {
                    return Err(bad(format!(
                        "search must be at most {MAX_SEARCH} printable characters."
                    )));
                }
                q.search = (!s.is_empty()).then(|| s.to_string());
            }
            "cursor" => {
                if !cursor_ok(&v) {
                    return Err(bad("cursor is not one this API issued.".into()));
                }
                q.cursor = Some(v.into_owned());
            }
            "limit" => {
                q.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(format!("limit must be a number from 1 to {MAX_LIMIT}.")))?;
            }
            "include_inactive" => {
                q.include_inactive = match v.as_ref() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad("include_inactive must be true or false.".into())),
                }
            }
            _ => {}
        }
    }
    Ok(q)
}

fn unavailable(retry_after: Option<u32>) -> AppError {
    AppError::Unavailable {
        message: "The MCP registry is not answering right now; try again shortly.".into(),
        retry_after_secs: Some(retry_after.map_or(RETRY_SECS, |s| s.clamp(1, 300))),
    }
}

fn malformed(detail: impl Into<String>) -> AppError {
    AppError::Upstream {
        service: "mcp_registry",
        detail: detail.into(),
    }
}

/// The body of a 200, or the error its status (or failure) means.
fn answered(result: Result<Fetched, UpstreamError>, what: &str) -> AppResult<Option<Value>> {
    let f = match result {
        Ok(f) => f,
        Err(UpstreamError::Timeout | UpstreamError::Unreachable(_)) => {
            return Err(unavailable(None))
        }
        Err(UpstreamError::TooLarge) => return Err(malformed(format!("{what}: answer too large"))),
    };
    match f.status {
        200 => serde_json::from_slice(&f.body)
            .map(Some)
            .map_err(|_| malformed(format!("{what}: not JSON"))),
        404 => Ok(None),
        429 | 500..=599 => Err(unavailable(f.retry_after)),
        400 | 422 => Err(AppError::bad_request(
            "invalid_query",
            "The registry did not accept this query (an old cursor?).",
        )),
        s => Err(malformed(format!("{what}: status {s}"))),
    }
}

fn cache_key(kind: &str, url: &str) -> String {
    format!(
        "mcp-registry:v1:{kind}:{}",
        hex::encode(Sha256::digest(url.as_bytes()))
    )
}

/// One page of the list, normalized: `{"items": [Entry], "next_cursor": …}`, deleted and
/// deprecated entries left out unless asked for.
pub async fn list<U: Upstream, M: Memo>(
    up: &U,
    memo: &M,
    base: &Url,
    q: &Query,
) -> AppResult<Value> {
    let mut url = Url::parse(&join(base, "v0.1/servers"))
        .map_err(|_| AppError::internal("MCP_REGISTRY_BASE does not join"))?;
    {
        let mut pairs = url.query_pairs_mut();
        pairs.append_pair("version", "latest");
        pairs.append_pair("limit", &q.limit.to_string());
        if let Some(s) = &q.search {
            pairs.append_pair("search", s);
        }
        if let Some(c) = &q.cursor {
            pairs.append_pair("cursor", c);
        }
    }
    let key = cache_key("list", url.as_str());
    let page = match memo
        .get(&key)
        .await
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
    {
        Some(hit) => hit,
        None => {
            let doc = answered(
                up.get(url.as_str(), "application/json", MAX_BODY).await,
                "list",
            )?
            .ok_or_else(|| malformed("list: 404"))?;
            let (entries, next) =
                read_list(&doc).ok_or_else(|| malformed("list: no servers array"))?;
            let page = json!({ "items": entries, "next_cursor": next });
            memo.put(&key, &page.to_string(), CACHE_TTL_SECS).await;
            page
        }
    };
    let mut page = page;
    if !q.include_inactive {
        if let Some(items) = page["items"].as_array_mut() {
            items.retain(|e| e["status"] == "active");
        }
    }
    Ok(page)
}

/// One server version as the registry answers it (`{"server": …, "_meta": …}`) and read
/// as an [`Entry`], and whether it came from the cache; `version` defaults to the latest.
/// No such server or version is a 404, remembered for [`MISSING_TTL_SECS`].
pub async fn server<U: Upstream, M: Memo>(
    up: &U,
    memo: &M,
    base: &Url,
    name: &str,
    version: Option<&str>,
) -> AppResult<(Value, Entry, bool)> {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let path = format!(
        "v0.1/servers/{}/versions/{}",
        encode(name),
        encode(version.unwrap_or("latest"))
    );
    let url = join(base, &path);
    let key = cache_key("server", &url);
    let missing = || {
        AppError::not_found(match version {
            Some(v) => format!("The registry has no version {v} of {name}."),
            None => format!("The registry has no server named {name}."),
        })
    };
    let (doc, cached) = match memo
        .get(&key)
        .await
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
    {
        // A remembered 404.
        Some(Value::Null) => return Err(missing()),
        Some(hit) => (hit, true),
        None => {
            let Some(doc) = answered(up.get(&url, "application/json", MAX_BODY).await, "server")?
            else {
                memo.put(&key, "null", MISSING_TTL_SECS).await;
                return Err(missing());
            };
            memo.put(&key, &doc.to_string(), CACHE_TTL_SECS).await;
            (doc, false)
        }
    };
    let entry = read(&doc).ok_or_else(|| malformed("server: not a server entry"))?;
    if entry.name != name {
        return Err(malformed("server: answered for another name"));
    }
    Ok((doc, entry, cached))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::exists::memory::MemoryMemo;
    use crate::outbound::memory::MemoryUpstream;
    use crate::registry::fixtures::load;
    use futures_executor::block_on;

    const BASE: &str = "https://registry.test";
    const PAGE1: &str = "https://registry.test/v0.1/servers?version=latest&limit=30";

    fn base() -> Url {
        Url::parse(BASE).unwrap()
    }

    fn query(q: &str) -> Query {
        parse_query(Some(q)).unwrap()
    }

    #[test]
    fn queries_are_bounded_and_say_what_is_wrong() {
        assert_eq!(query("").limit, DEFAULT_LIMIT);
        let q = query("search=weather&limit=5&cursor=abc:1&include_inactive=true");
        assert_eq!(
            (
                q.search.as_deref(),
                q.limit,
                q.cursor.as_deref(),
                q.include_inactive
            ),
            (Some("weather"), 5, Some("abc:1"), true)
        );
        for bad in [
            "limit=0",
            "limit=101",
            "limit=x",
            "include_inactive=yes",
            "cursor=a%20b",
            "cursor=",
            &format!("search={}", "x".repeat(MAX_SEARCH + 1)),
            "search=a%0Ab",
        ] {
            assert_eq!(
                parse_query(Some(bad)).unwrap_err().code(),
                "invalid_query",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_page_is_normalized_cached_and_hides_inactive_entries_unless_asked() {
        let up = MemoryUpstream::default();
        let memo = MemoryMemo::default();
        up.ok(PAGE1, load("list-page1").to_string());
        let page = block_on(list(&up, &memo, &base(), &query(""))).unwrap();
        let names: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["io.github.acme/weather", "io.github.acme/containers"]
        );
        assert_eq!(page["next_cursor"], "io.github.acme/containers:1.0.0");
        let all = block_on(list(&up, &memo, &base(), &query("include_inactive=true"))).unwrap();
        assert_eq!(all["items"].as_array().unwrap().len(), 3);
        assert_eq!(
            up.calls.borrow().len(),
            1,
            "the second read came from the cache"
        );
        let (_, ttl) = memo.map.borrow().values().next().cloned().unwrap();
        assert_eq!(ttl, CACHE_TTL_SECS);
    }

    #[test]
    fn a_registry_that_is_down_is_503_never_an_empty_list_and_garbage_is_502() {
        for (setup, status) in [
            (
                Box::new(|up: &MemoryUpstream| up.status(PAGE1, 500, None))
                    as Box<dyn Fn(&MemoryUpstream)>,
                503,
            ),
            (
                Box::new(|up: &MemoryUpstream| up.status(PAGE1, 429, Some(7))),
                503,
            ),
            (
                Box::new(|up: &MemoryUpstream| up.fail(PAGE1, UpstreamError::Timeout)),
                503,
            ),
            (
                Box::new(|up: &MemoryUpstream| {
                    up.fail(PAGE1, UpstreamError::Unreachable("x".into()))
                }),
                503,
            ),
            (Box::new(|up: &MemoryUpstream| up.ok(PAGE1, "<html>")), 502),
            (
                Box::new(|up: &MemoryUpstream| up.ok(PAGE1, "{\"servers\": 3}")),
                502,
            ),
            (
                Box::new(|up: &MemoryUpstream| up.status(PAGE1, 403, None)),
                502,
            ),
            (
                Box::new(|up: &MemoryUpstream| up.status(PAGE1, 400, None)),
                400,
            ),
        ] {
            let up = MemoryUpstream::default();
            setup(&up);
            let memo = MemoryMemo::default();
            let e = block_on(list(&up, &memo, &base(), &query(""))).unwrap_err();
            assert_eq!(e.status(), status, "{e:?}");
            assert!(memo.map.borrow().is_empty(), "a failure is not cached");
        }
        let up = MemoryUpstream::default();
        up.status(PAGE1, 429, Some(7));
        let e = block_on(list(&up, &MemoryMemo::default(), &base(), &query(""))).unwrap_err();
        assert_eq!(e.headers(), [("Retry-After", "7".to_string())]);
    }

    #[test]
    fn one_server_by_name_and_version_or_a_404() {
        let up = MemoryUpstream::default();
        let memo = MemoryMemo::default();
        let url = "https://registry.test/v0.1/servers/io.github.acme%2Fweather/versions/latest";
        up.ok(url, load("weather").to_string());
        let (_, e, cached) =
            block_on(server(&up, &memo, &base(), "io.github.acme/weather", None)).unwrap();
        assert_eq!((e.version.as_str(), cached), ("2.1.0", false));
        let (_, _, cached) =
            block_on(server(&up, &memo, &base(), "io.github.acme/weather", None)).unwrap();
        assert!(cached);
        let missing =
            "https://registry.test/v0.1/servers/io.github.acme%2Fnope/versions/1.0.0%2Bbuild";
        up.status(missing, 404, None);
        let e = block_on(server(
            &up,
            &memo,
            &base(),
            "io.github.acme/nope",
            Some("1.0.0+build"),
        ))
        .unwrap_err();
        assert_eq!(e.status(), 404);
        let asked = up.calls.borrow().len();
        let again = block_on(server(
            &up,
            &memo,
            &base(),
            "io.github.acme/nope",
            Some("1.0.0+build"),
        ))
        .unwrap_err();
        assert_eq!(again.status(), 404);
        assert_eq!(up.calls.borrow().len(), asked, "the 404 was remembered");
        assert!(memo
            .map
            .borrow()
            .values()
            .any(|(v, ttl)| v == "null" && *ttl == MISSING_TTL_SECS));
        // An answer about another server is not this one.
        let other = "https://registry.test/v0.1/servers/io.github.acme%2Fother/versions/latest";
        up.ok(other, load("weather").to_string());
        let e = block_on(server(&up, &memo, &base(), "io.github.acme/other", None)).unwrap_err();
        assert_eq!(e.status(), 502);
    }
}
