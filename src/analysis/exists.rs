//! "Does this package (and version) exist in its registry?" — asked before a plan is
//! returned or a deployment is stored, after the strict grammar has passed. Answers are
//! memoized: a positive one for a day, a negative one for five minutes (a package may be
//! published right after a miss). A registry that cannot be asked is a 503, never a yes.

use url::Url;

use crate::analysis::registry::{npm_path, pypi_path};
use crate::analysis::source::Registry;
use crate::config::join;
use crate::error::{AppError, AppResult};
use crate::outbound::{Upstream, UpstreamError};

pub const POSITIVE_TTL_SECS: u64 = 24 * 3600;
pub const NEGATIVE_TTL_SECS: u64 = 300;
const MAX_DOC: usize = 8 * 1024 * 1024;

/// A small key-value memo with TTLs (KV in the Worker, memory in tests).
#[allow(async_fn_in_trait)]
pub trait Memo {
    async fn get(&self, key: &str) -> Option<String>;
    async fn put(&self, key: &str, value: &str, ttl_secs: u64);
}

pub fn memo_key(registry: Registry, name: &str, version: Option<&str>) -> String {
    format!(
        "registry:{}:{}@{}",
        registry.as_str(),
        name,
        version.unwrap_or("*")
    )
}

fn missing(registry: Registry, name: &str, version: Option<&str>) -> AppError {
    let place = match registry {
        Registry::Npm => "npm",
        Registry::Pypi => "PyPI",
    };
    let what = match version {
        Some(v) => format!("{name}@{v}"),
        None => name.to_string(),
    };
    AppError::field("package", format!("{what} is not published on {place}"))
}

pub async fn ensure<U: Upstream, M: Memo>(
    up: &U,
    memo: &M,
    bases: (&Url, &Url),
    registry: Registry,
    name: &str,
    version: Option<&str>,
) -> AppResult<()> {
    let key = memo_key(registry, name, version);
    match memo.get(&key).await.as_deref() {
        Some("1") => return Ok(()),
        Some("0") => return Err(missing(registry, name, version)),
        _ => {}
    }
    let url = match registry {
        Registry::Npm => join(bases.0, &npm_path(name)),
        Registry::Pypi => join(bases.1, &pypi_path(name)),
    };
    let service = match registry {
        Registry::Npm => "npm",
        Registry::Pypi => "PyPI",
    };
    let answer = up
        .get(&url, "application/json", MAX_DOC)
        .await
        .map_err(|e| match e {
            UpstreamError::TooLarge => AppError::Upstream {
                service,
                detail: "document over the cap".into(),
            },
            _ => AppError::Unavailable {
                message: format!(
                    "{service} cannot be reached to check the package; try again later."
                ),
                retry_after_secs: Some(30),
            },
        })?;
    let exists = match answer.status {
        200..=299 => {
            let doc: serde_json::Value =
                serde_json::from_slice(&answer.body).map_err(|_| AppError::Upstream {
                    service,
                    detail: "malformed document".into(),
                })?;
            match (registry, version) {
                (_, None) => true,
                (Registry::Npm, Some(v)) => {
                    doc["versions"].get(v).is_some() || doc["dist-tags"].get(v).is_some()
                }
                (Registry::Pypi, Some(v)) => doc["releases"].get(v).is_some(),
            }
        }
        404 | 410 => false,
        429 | 500..=599 => {
            return Err(AppError::Unavailable {
                message: format!("{service} is unavailable; try again later."),
                retry_after_secs: answer.retry_after.or(Some(30)),
            })
        }
        other => {
            return Err(AppError::Upstream {
                service,
                detail: format!("status {other}"),
            })
        }
    };
    memo.put(
        &key,
        if exists { "1" } else { "0" },
        if exists {
            POSITIVE_TTL_SECS
        } else {
            NEGATIVE_TTL_SECS
        },
    )
    .await;
    if exists {
        Ok(())
    } else {
        Err(missing(registry, name, version))
    }
}

#[cfg(test)]
pub mod memory {
    use super::Memo;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct MemoryMemo {
        pub map: RefCell<HashMap<String, (String, u64)>>,
    }

    impl Memo for MemoryMemo {
        async fn get(&self, key: &str) -> Option<String> {
            self.map.borrow().get(key).map(|(v, _)| v.clone())
        }

        async fn put(&self, key: &str, value: &str, ttl: u64) {
            self.map
                .borrow_mut()
                .insert(key.into(), (value.into(), ttl));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemoryMemo;
    use super::*;
    use crate::outbound::memory::MemoryUpstream;
    use futures_executor::block_on;
    use serde_json::json;

    fn bases() -> (Url, Url) {
        (
            Url::parse("https://npm.test").unwrap(),
            Url::parse("https://pypi.test").unwrap(),
        )
    }

    #[test]
    fn existence_is_asked_once_and_memoized_long_when_yes_short_when_no() {
        let (up, memo, (n, p)) = (MemoryUpstream::default(), MemoryMemo::default(), bases());
        up.ok(
            "https://npm.test/@acme%2fw",
            json!({"versions": {"1.0.0": {}}, "dist-tags": {"latest": "1.0.0"}}).to_string(),
        );
        for _ in 0..3 {
            block_on(ensure(&up, &memo, (&n, &p), Registry::Npm, "@acme/w", None)).unwrap();
        }
        assert_eq!(up.calls.borrow().len(), 1);
        assert_eq!(
            memo.map.borrow()["registry:npm:@acme/w@*"].1,
            POSITIVE_TTL_SECS
        );
        let e = block_on(ensure(
            &up,
            &memo,
            (&n, &p),
            Registry::Npm,
            "@acme/w",
            Some("9.9.9"),
        ))
        .unwrap_err();
        assert_eq!(e.status(), 422);
        assert_eq!(
            memo.map.borrow()["registry:npm:@acme/w@9.9.9"].1,
            NEGATIVE_TTL_SECS
        );
        assert_eq!(
            block_on(ensure(&up, &memo, (&n, &p), Registry::Pypi, "ghost", None))
                .unwrap_err()
                .status(),
            422
        );
    }

    #[test]
    fn an_unreachable_registry_is_never_a_yes() {
        let (up, memo, (n, p)) = (MemoryUpstream::default(), MemoryMemo::default(), bases());
        up.fail("https://pypi.test/pypi/x/json", UpstreamError::Timeout);
        assert_eq!(
            block_on(ensure(&up, &memo, (&n, &p), Registry::Pypi, "x", None))
                .unwrap_err()
                .status(),
            503
        );
        up.status("https://pypi.test/pypi/x/json", 503, Some(7));
        let e = block_on(ensure(&up, &memo, (&n, &p), Registry::Pypi, "x", None)).unwrap_err();
        assert_eq!((e.status(), e.headers()[0].1.as_str()), (503, "7"));
        assert!(memo.map.borrow().is_empty(), "failures are not memoized");
    }
}
