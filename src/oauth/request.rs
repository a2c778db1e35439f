//! The authorization request (`GET /oauth/authorize`, RFC 6749 §4.1.1 with PKCE and
//! RFC 8707): read once, then judged in the order that keeps redirects safe — nothing is
//! ever sent to a redirect URI until the client is known and the URI is one it
//! registered; every later problem goes back to the client as an error redirect.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::oauth::client::{Client, Kind};
use crate::oauth::metadata::{deployment_of, SCOPE};
use crate::oauth::secret::challenge_ok;

/// A parameter longer than this is not a parameter we issued or could use.
const MAX_PARAM: usize = 2048;

/// The query as sent; every parameter at most once (RFC 6749 §3.1).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub state: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

/// Why the request cannot even be answered by redirect (shown to the person instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub error: &'static str,
    pub description: String,
}

fn unusable(error: &'static str, description: impl Into<String>) -> Unusable {
    Unusable {
        error,
        description: description.into(),
    }
}

/// An error that goes back to the client's redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirected {
    pub error: &'static str,
    pub description: String,
}

fn redirected(error: &'static str, description: impl Into<String>) -> Redirected {
    Redirected {
        error,
        description: description.into(),
    }
}

pub fn parse(query: &str) -> Result<Query, Unusable> {
    let mut q = Query::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "response_type" => &mut q.response_type,
            "client_id" => &mut q.client_id,
            "redirect_uri" => &mut q.redirect_uri,
            "code_challenge" => &mut q.code_challenge,
            "code_challenge_method" => &mut q.code_challenge_method,
            "state" => &mut q.state,
            "resource" => &mut q.resource,
            "scope" => &mut q.scope,
            _ => continue,
        };
        if slot.is_some() {
            return Err(unusable(
                "invalid_request",
                format!("The parameter {k} appears more than once."),
            ));
        }
        if v.len() > MAX_PARAM {
            return Err(unusable(
                "invalid_request",
                format!("The parameter {k} is too long."),
            ));
        }
        *slot = Some(v.into_owned());
    }
    Ok(q)
}

/// What the consent page decides on, kept server-side under a random id until the owner
/// answers (never in the page's URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub client: Client,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub deployment_id: String,
    pub scope: String,
    pub expires_at: i64,
}

/// How long the person has to answer the consent page.
pub const PENDING_TTL_MS: i64 = 600_000;

/// The client id to look up, or why there is none.
pub fn client_id(q: &Query) -> Result<&str, Unusable> {
    q.client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| unusable("invalid_request", "client_id is required."))
}

/// The redirect URI this request may use with `client`: the one given if registered, or
/// the only one registered when none was given (RFC 6749 §3.1.2.3).
pub fn redirect_uri(q: &Query, client: &Client) -> Result<String, Unusable> {
    match q.redirect_uri.as_deref() {
        Some(uri) if crate::oauth::client::redirect_matches(&client.redirect_uris, uri) => {
            Ok(uri.to_string())
        }
        Some(_) => Err(unusable(
            "invalid_request",
            "redirect_uri is not one this client registered.",
        )),
        None => match client.redirect_uris.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(unusable("invalid_request", "redirect_uri is required.")),
        },
    }
}

/// The rest of the request, once the redirect URI is trusted: response type, PKCE
/// (S256 only), scope, and the resource, which must name one of our deployments.
pub fn judge(
    q: &Query,
    client: &Client,
    redirect_uri: String,
    base: &str,
    now: i64,
) -> Result<Pending, Redirected> {
    if q.response_type.as_deref() != Some("code") {
        return Err(redirected(
            "unsupported_response_type",
            "Only response_type=code is supported.",
        ));
    }
    let challenge = q.code_challenge.as_deref().ok_or_else(|| {
        redirected(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256.",
        )
    })?;
    match q.code_challenge_method.as_deref() {
        Some("S256") => {}
        Some("plain") | None => {
            return Err(redirected(
                "invalid_request",
                "Only the S256 code_challenge_method is supported.",
            ))
        }
        Some(_) => {
            return Err(redirected(
                "invalid_request",
                "Unknown code_challenge_method; use S256.",
            ))
        }
    }
    if !challenge_ok(challenge) {
        return Err(redirected(
            "invalid_request",
            "code_challenge must be 43 base64url characters (S256).",
        ));
    }
    let scope = match q.scope.as_deref().map(str::trim) {
        None | Some("") => SCOPE.to_string(),
        Some(s) if s.split_whitespace().all(|p| p == SCOPE) => SCOPE.to_string(),
        Some(_) => return Err(redirected("invalid_scope", "The only scope is \"mcp\".")),
    };
    let resource = q.resource.as_deref().ok_or_else(|| {
        redirected(
            "invalid_target",
            "resource is required: the MCP URL you want access to.",
        )
    })?;
    let deployment_id = deployment_of(base, resource).ok_or_else(|| {
        redirected(
            "invalid_target",
            "resource is not an MCP URL served by this authorization server.",
        )
    })?;
    Ok(Pending {
        client: client.clone(),
        redirect_uri,
        state: q.state.clone(),
        code_challenge: challenge.to_string(),
        deployment_id: deployment_id.to_string(),
        scope,
        expires_at: now + PENDING_TTL_MS,
    })
}

/// `redirect_uri` with `params` added to its query (RFC 6749 §4.1.2: keeping any query
/// it already has), plus `iss` (RFC 9207) on every answer.
pub fn redirect_to(redirect_uri: &str, params: &[(&str, &str)], issuer: &str) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut pairs = url.query_pairs_mut();
                for (k, v) in params {
                    pairs.append_pair(k, v);
                }
                pairs.append_pair("iss", issuer);
            }
            url.to_string()
        }
        // Only URIs that parsed at registration get here.
        Err(_) => redirect_uri.to_string(),
    }
}

/// The error redirect for `pending`'s client, carrying its state.
pub fn error_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
    issuer: &str,
) -> String {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    redirect_to(redirect_uri, &params, issuer)
}

/// The kind as the consent API names it.
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::MetadataDocument => "metadata_document",
        Kind::Registered => "registered",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://edge.example";
    const DEP: &str = "dep_0123456789abcdef0123456789abcd";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client() -> Client {
        Client {
            client_id: "cwc_0123456789abcdef0123456789abcdef".into(),
            client_name: Some("Test".into()),
            client_uri: None,
            logo_uri: None,
            redirect_uris: vec!["https://client.example/cb".into()],
            kind: Kind::Registered,
        }
    }

    fn query(extra: &str) -> Query {
        parse(&format!(
            "response_type=code&client_id=cwc_0123456789abcdef0123456789abcdef&redirect_uri=https%3A%2F%2Fclient.example%2Fcb&code_challenge={CHALLENGE}&code_challenge_method=S256&state=xyz&resource={BASE}/api/mcp/{DEP}{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn a_good_request_becomes_pending_for_its_deployment() {
        let q = query("");
        let uri = redirect_uri(&q, &client()).unwrap();
        let p = judge(&q, &client(), uri, BASE, 1_000).unwrap();
        assert_eq!(p.deployment_id, DEP);
        assert_eq!(p.state.as_deref(), Some("xyz"));
        assert_eq!(p.scope, "mcp");
        assert_eq!(p.expires_at, 1_000 + PENDING_TTL_MS);
    }

    #[test]
    fn duplicates_and_unregistered_redirects_are_never_redirected_to() {
        assert!(parse("client_id=a&client_id=b").is_err());
        let mut q = query("");
        q.redirect_uri = Some("https://evil.example/cb".into());
        assert!(redirect_uri(&q, &client()).is_err());
        q.redirect_uri = None;
        assert_eq!(
            redirect_uri(&q, &client()).unwrap(),
            "https://client.example/cb"
        );
    }

    #[test]
    fn pkce_resource_scope_and_type_are_redirected_errors() {
        let judged = |q: Query| {
            let uri = redirect_uri(&q, &client()).unwrap();
            judge(&q, &client(), uri, BASE, 0).unwrap_err().error
        };
        let mut q = query("");
        q.code_challenge = None;
        assert_eq!(judged(q), "invalid_request");
        let mut q = query("");
        q.code_challenge_method = Some("plain".into());
        assert_eq!(judged(q), "invalid_request");
        let mut q = query("");
        q.code_challenge_method = None;
        assert_eq!(judged(q), "invalid_request");
        let mut q = query("");
        q.resource = Some(format!("https://other.example/api/mcp/{DEP}"));
        assert_eq!(judged(q), "invalid_target");
        let mut q = query("");
        q.resource = None;
        assert_eq!(judged(q), "invalid_target");
        let mut q = query("");
        q.scope = Some("admin".into());
        assert_eq!(judged(q), "invalid_scope");
        let mut q = query("");
        q.response_type = Some("token".into());
        assert_eq!(judged(q), "unsupported_response_type");
    }

    #[test]
    fn answers_keep_the_clients_query_and_carry_iss() {
        let to = redirect_to("https://c.example/cb?a=1", &[("code", "x y")], BASE);
        assert_eq!(
            to,
            "https://c.example/cb?a=1&code=x+y&iss=https%3A%2F%2Fedge.example"
        );
        let e = error_redirect(
            "https://c.example/cb",
            Some("s"),
            "access_denied",
            "no",
            BASE,
        );
        assert!(e.contains("error=access_denied") && e.contains("state=s") && e.contains("iss="));
    }
}
