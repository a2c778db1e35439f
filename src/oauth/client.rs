//! Who a client is: registered by Dynamic Client Registration (RFC 7591, `cwc_…` ids) or
//! identified by a Client ID Metadata Document (an https URL we fetch). The rules for
//! their metadata, for redirect URIs (exact match; loopback ports may vary, RFC 8252
//! §7.3), and for which document URLs we are willing to fetch at all.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::{Host, Url};

pub const REGISTERED_PREFIX: &str = "cwc_";
const MAX_REDIRECT_URIS: usize = 10;
const MAX_URI_LEN: usize = 2000;
const MAX_NAME_LEN: usize = 200;
/// A metadata document larger than this is refused (bytes).
pub const MAX_DOCUMENT: usize = 5 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    MetadataDocument,
    Registered,
}

/// A client as the authorization endpoint needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub kind: Kind,
}

/// Why metadata was refused: the RFC 7591 error code and words a developer can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: &'static str,
    pub description: String,
}

fn refuse(error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal {
        error,
        description: description.into(),
    }
}

/// Whether a `client_id` is a document URL (otherwise it must be a registered id).
pub fn is_document_id(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// A registered id's shape, checked before any lookup.
pub fn registered_id_ok(client_id: &str) -> bool {
    client_id
        .strip_prefix(REGISTERED_PREFIX)
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost")
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (b == 18 || b == 19))
        || a >= 224
}

fn private_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return private_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || ip.is_multicast()
}

/// Whether `host` is loopback (`localhost`, 127/8, ::1).
fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => is_loopback_name(d),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Whether `host` must never be fetched: private, loopback, link-local and reserved
/// addresses, and names that only resolve inside a network.
fn is_internal_host(host: &Host<&str>) -> bool {
    match host {
        Host::Ipv4(ip) => private_v4(*ip),
        Host::Ipv6(ip) => private_v6(*ip),
        Host::Domain(d) => {
            let d = d.to_ascii_lowercase();
            let d = d.trim_end_matches('.');
            is_loopback_name(d)
                || !d.contains('.')
                || [
                    ".local",
                    ".internal",
                    ".lan",
                    ".home.arpa",
                    ".intranet",
                    ".corp",
                ]
                .iter()
                .any(|s| d.ends_with(s))
        }
    }
}

/// A document URL we are willing to fetch: https, a path other than `/`, no credentials
/// or fragment, not an internal host — loopback only when `loopback_allowed` (local
/// development with `OAUTH_LOOPBACK_CLIENTS`).
pub fn document_url(client_id: &str, loopback_allowed: bool) -> Result<Url, Refusal> {
    let bad = |why: &str| refuse("invalid_client", format!("The client_id URL {why}."));
    if client_id.len() > MAX_URI_LEN {
        return Err(bad("is too long"));
    }
    let url = Url::parse(client_id).map_err(|_| bad("is not a URL"))?;
    if url.scheme() != "https" {
        return Err(bad("must use https"));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(bad("must have a path"));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a fragment or credentials"));
    }
    // The id is compared as sent, so it must already be in the form a parser would give.
    if url.as_str() != client_id {
        return Err(bad("is not in normalized form"));
    }
    let host = url.host().ok_or_else(|| bad("has no host"))?;
    let loopback = is_loopback_host(&host);
    if (loopback && !loopback_allowed) || (!loopback && is_internal_host(&host)) {
        return Err(bad("names a private or local host"));
    }
    Ok(url)
}

/// A redirect URI a client may register: https; http on a loopback address (native
/// apps, RFC 8252 §7.3); or a private-use scheme (`com.example.app:/cb`, §7.1). Never a
/// fragment, never `javascript:`/`data:`/`file:`.
pub fn redirect_uri_ok(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_URI_LEN {
        return Err("is too long".into());
    }
    let url = Url::parse(uri).map_err(|_| "is not an absolute URL".to_string())?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err("must not contain a fragment".into());
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" => match url.host() {
            Some(h) if is_loopback_host(&h) => Ok(()),
            _ => Err("may use http only on a loopback address".into()),
        },
        "javascript" | "data" | "file" | "blob" | "vbscript" | "about" | "ws" | "wss" | "ftp" => {
            Err("uses a scheme that cannot receive a code".into())
        }
        s if s.contains('.') => Ok(()),
        _ => Err("must be https, loopback http, or a reverse-domain private scheme".into()),
    }
}

/// Whether `presented` is one of `registered`: string equality, except that a loopback
/// http URI matches whatever port the native app bound this time.
pub fn redirect_matches(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|r| r == presented) {
        return true;
    }
    let Ok(p) = Url::parse(presented) else {
        return false;
    };
    if p.scheme() != "http" || !p.host().is_some_and(|h| is_loopback_host(&h)) {
        return false;
    }
    registered.iter().any(|r| {
        Url::parse(r).is_ok_and(|mut r| {
            r.scheme() == "http" && r.host() == p.host() && r.set_port(p.port()).is_ok() && r == p
        })
    })
}

/// The host (and port) a redirect URI delivers the code to, as the consent page shows
/// it; a private-use scheme shows as `scheme:`.
pub fn redirect_host(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => format!("{}:", u.scheme()),
        },
        Err(_) => String::new(),
    }
}

fn opt_text(v: &Value, field: &str, max: usize) -> Result<Option<String>, Refusal> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max && !s.chars().any(char::is_control) => {
            Ok(Some(s.clone()).filter(|s| !s.trim().is_empty()))
        }
        Some(_) => Err(refuse(
            "invalid_client_metadata",
            format!(
                "{field} must be a string of at most {max} characters without control characters."
            ),
        )),
    }
}

fn opt_https(v: &Value, field: &str) -> Result<Option<String>, Refusal> {
    let s = opt_text(v, field, MAX_URI_LEN)?;
    match &s {
        Some(u) if !Url::parse(u).is_ok_and(|u| u.scheme() == "https") => Err(refuse(
            "invalid_client_metadata",
            format!("{field} must be an https URL."),
        )),
        _ => Ok(s),
    }
}

fn redirect_uris(v: &Value) -> Result<Vec<String>, Refusal> {
    let list = v
        .get("redirect_uris")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            refuse(
                "invalid_redirect_uri",
                "redirect_uris must be a non-empty array.",
            )
        })?;
    if list.len() > MAX_REDIRECT_URIS {
        return Err(refuse(
            "invalid_redirect_uri",
            format!("At most {MAX_REDIRECT_URIS} redirect_uris."),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let uri = item.as_str().ok_or_else(|| {
            refuse(
                "invalid_redirect_uri",
                format!("redirect_uris[{i}] must be a string."),
            )
        })?;
        redirect_uri_ok(uri)
            .map_err(|why| refuse("invalid_redirect_uri", format!("redirect_uris[{i}] {why}.")))?;
        out.push(uri.to_string());
    }
    Ok(out)
}

fn public_client_only(v: &Value) -> Result<(), Refusal> {
    match v.get("token_endpoint_auth_method") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(m)) if m == "none" => Ok(()),
        Some(_) => Err(refuse(
            "invalid_client_metadata",
            "Only public clients are supported: token_endpoint_auth_method must be \"none\".",
        )),
    }
}

fn only_supported(v: &Value, field: &str, supported: &[&str]) -> Result<(), Refusal> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items))
            if items
                .iter()
                .all(|i| i.as_str().is_some_and(|s| supported.contains(&s))) =>
        {
            Ok(())
        }
        Some(_) => Err(refuse(
            "invalid_client_metadata",
            format!("{field} may only contain {}.", supported.join(", ")),
        )),
    }
}

/// The metadata of a registration request (RFC 7591 §2) or of a metadata document.
fn metadata(v: &Value, client_id: String, kind: Kind) -> Result<Client, Refusal> {
    if !v.is_object() {
        return Err(refuse(
            "invalid_client_metadata",
            "Client metadata must be a JSON object.",
        ));
    }
    public_client_only(v)?;
    only_supported(v, "grant_types", &["authorization_code", "refresh_token"])?;
    only_supported(v, "response_types", &["code"])?;
    Ok(Client {
        client_id,
        redirect_uris: redirect_uris(v)?,
        client_name: opt_text(v, "client_name", MAX_NAME_LEN)?,
        client_uri: opt_https(v, "client_uri")?,
        logo_uri: opt_https(v, "logo_uri")?,
        kind,
    })
}

/// A Dynamic Client Registration body, for the id we are about to issue.
pub fn registration(v: &Value, client_id: String) -> Result<Client, Refusal> {
    metadata(v, client_id, Kind::Registered)
}

/// A fetched metadata document: JSON whose `client_id` is the URL it was fetched from.
pub fn document(url: &str, body: &[u8]) -> Result<Client, Refusal> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        refuse(
            "invalid_client",
            "The client metadata document is not JSON.",
        )
    })?;
    if v.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err(refuse(
            "invalid_client",
            "The client metadata document's client_id is not the URL it was fetched from.",
        ));
    }
    metadata(&v, url.to_string(), Kind::MetadataDocument).map_err(|r| Refusal {
        error: "invalid_client",
        description: format!(
            "The client metadata document is unusable: {}",
            r.description
        ),
    })
}

/// How long a fetched document may be reused, from its `Cache-Control` (RFC 9111):
/// `None` for `no-store`/`no-cache`/`private`; `max-age` clamped to a minute … a day;
/// a minute when the server said nothing.
pub fn cache_ttl_secs(cache_control: Option<&str>) -> Option<u64> {
    let Some(cc) = cache_control else {
        return Some(60);
    };
    let mut max_age = None;
    for directive in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if matches!(directive.as_str(), "no-store" | "no-cache" | "private") {
            return None;
        }
        if let Some(v) = directive.strip_prefix("max-age=") {
            max_age = v.trim_matches('"').parse::<u64>().ok();
        }
    }
    match max_age {
        Some(0) => None,
        Some(n) => Some(n.clamp(60, 86_400)),
        None => Some(60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn document_urls_must_be_public_https_with_a_path() {
        assert!(document_url("https://app.example/oauth/client.json", false).is_ok());
        for bad in [
            "http://app.example/client.json",
            "https://app.example/",
            "https://app.example",
            "https://user:pw@app.example/c",
            "https://app.example/c#frag",
            "https://127.0.0.1/c",
            "https://10.0.0.2/c",
            "https://169.254.169.254/latest",
            "https://[::1]/c",
            "https://[fd00::1]/c",
            "https://[::ffff:192.168.0.1]/c",
            "https://localhost/c",
            "https://metadata.internal/c",
            "https://intranet/c",
            "https://APP.example/c",
        ] {
            assert!(document_url(bad, false).is_err(), "{bad}");
        }
        assert!(document_url("https://localhost:8443/c.json", true).is_ok());
        assert!(document_url("https://127.0.0.1:8443/c.json", true).is_ok());
        // The loopback allowance opens loopback only, never the private network.
        assert!(document_url("https://10.0.0.2/c", true).is_err());
    }

    #[test]
    fn redirect_uris_are_https_loopback_http_or_private_schemes() {
        for ok in [
            "https://client.example/cb",
            "http://127.0.0.1:33418/callback",
            "http://localhost/cb",
            "http://[::1]:8080/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(redirect_uri_ok(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://client.example/cb",
            "https://client.example/cb#x",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "/relative",
            "myapp:/cb",
        ] {
            assert!(redirect_uri_ok(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirects_match_exactly_except_a_loopback_port() {
        let reg = vec![
            "https://client.example/cb".to_string(),
            "http://127.0.0.1/callback".to_string(),
        ];
        assert!(redirect_matches(&reg, "https://client.example/cb"));
        assert!(redirect_matches(&reg, "http://127.0.0.1:49152/callback"));
        for bad in [
            "https://client.example/cb/",
            "https://client.example/cb?x=1",
            "https://client.example/CB",
            "https://client.example.evil/cb",
            "http://127.0.0.1:49152/callback/x",
            "http://localhost:49152/callback",
        ] {
            assert!(!redirect_matches(&reg, bad), "{bad}");
        }
        assert_eq!(
            redirect_host("http://127.0.0.1:49152/cb"),
            "127.0.0.1:49152"
        );
        assert_eq!(redirect_host("https://client.example/cb"), "client.example");
        assert_eq!(redirect_host("com.example.app:/cb"), "com.example.app:");
    }

    #[test]
    fn registrations_are_public_clients_with_sane_metadata() {
        let ok = json!({"redirect_uris": ["http://127.0.0.1:5000/cb"], "client_name": "Inspector", "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]});
        let c = registration(&ok, "cwc_x".into()).unwrap();
        assert_eq!(c.client_name.as_deref(), Some("Inspector"));
        for (bad, error) in [
            (json!({}), "invalid_redirect_uri"),
            (json!({"redirect_uris": []}), "invalid_redirect_uri"),
            (
                json!({"redirect_uris": ["http://evil.example/cb"]}),
                "invalid_redirect_uri",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "client_name": "x\u{7}y"}),
                "invalid_client_metadata",
            ),
            (
                json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "javascript:alert(1)"}),
                "invalid_client_metadata",
            ),
            (json!([1, 2]), "invalid_client_metadata"),
        ] {
            assert_eq!(
                registration(&bad, "cwc_x".into()).unwrap_err().error,
                error,
                "{bad}"
            );
        }
    }

    #[test]
    fn documents_are_cached_as_their_server_says_within_bounds() {
        assert_eq!(cache_ttl_secs(None), Some(60));
        assert_eq!(cache_ttl_secs(Some("public, max-age=3600")), Some(3600));
        assert_eq!(cache_ttl_secs(Some("max-age=5")), Some(60));
        assert_eq!(cache_ttl_secs(Some("max-age=99999999")), Some(86_400));
        assert_eq!(cache_ttl_secs(Some("no-store")), None);
        assert_eq!(cache_ttl_secs(Some("max-age=0")), None);
    }

    #[test]
    fn a_document_must_name_itself() {
        let url = "https://app.example/client.json";
        let doc = json!({"client_id": url, "redirect_uris": ["https://app.example/cb"], "client_name": "App"});
        let c = document(url, doc.to_string().as_bytes()).unwrap();
        assert_eq!(c.kind, Kind::MetadataDocument);
        let other = json!({"client_id": "https://evil.example/client.json", "redirect_uris": ["https://app.example/cb"]});
        assert!(document(url, other.to_string().as_bytes()).is_err());
        assert!(document(url, b"<html>").is_err());
    }
}
