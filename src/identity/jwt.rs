//! Verification of the frontend's session JWTs: HS256 only, signed with `AUTH_SECRET`,
//! claims `sub`, `iat` and `exp` (all required), `email`, `email_verified`, `nbf`, and
//! `iss`/`aud` when the operator pins them. 60 s of clock leeway. Pure: the caller passes
//! the time.
//!
//! Lifetime: `exp - iat` may not exceed `AUTH_JWT_MAX_LIFETIME_SECS` (default one day), so
//! a frontend bug or a leaked key cannot mint a token good for years. A token whose `iat`
//! is older than that cap (plus leeway) is refused as `token_too_old`; given the other two
//! checks that can only happen to a token that is also too long-lived, and it is checked
//! first so an old token is named for what is wrong with it.
//!
//! An email counts as verified only when the token says `"email_verified": true` (the OIDC
//! Core standard claim, section 5.1; a JSON boolean, nothing else) or the operator has set
//! `AUTH_EMAILS_VERIFIED` because their provider verifies every email it issues. Only a
//! verified email may link a new subject to an existing user (see `users`).

use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::AuthConfig;
use crate::error::AppError;

/// Longer tokens are refused before any parsing: no honest session token comes near this.
pub const MAX_TOKEN_LEN: usize = 4096;
pub const LEEWAY_SECS: i64 = 60;
/// Longest `sub` accepted (bytes).
pub const MAX_SUBJECT_LEN: usize = 255;
const MAX_EMAIL_LEN: usize = 320;

/// Why a token was refused. The reason code goes to the log and `WWW-Authenticate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    MissingToken,
    NotBearer,
    TooLarge,
    Malformed,
    UnsupportedAlgorithm,
    BadSignature,
    Expired,
    NotYetValid,
    IssuedInFuture,
    MissingExpiry,
    MissingIssuedAt,
    LifetimeTooLong,
    TooOld,
    MissingSubject,
    WrongIssuer,
    WrongAudience,
}

impl Rejection {
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::NotBearer => "not_bearer",
            Self::TooLarge => "token_too_large",
            Self::Malformed => "malformed_token",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::BadSignature => "bad_signature",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::MissingExpiry => "missing_exp",
            Self::MissingIssuedAt => "missing_iat",
            Self::LifetimeTooLong => "token_lifetime_too_long",
            Self::TooOld => "token_too_old",
            Self::MissingSubject => "missing_sub",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::MissingToken => "Sign in: send Authorization: Bearer <token>.",
            Self::NotBearer => "The Authorization header must use the Bearer scheme.",
            Self::TooLarge => "The bearer token is too large.",
            Self::Malformed => "The bearer token is not a well-formed JWT.",
            Self::UnsupportedAlgorithm => "The bearer token must be signed with HS256.",
            Self::BadSignature => "The bearer token's signature is not valid.",
            Self::Expired => "The bearer token has expired.",
            Self::NotYetValid | Self::IssuedInFuture => "The bearer token is not valid yet.",
            Self::MissingExpiry => "The bearer token has no expiry (exp).",
            Self::MissingIssuedAt => "The bearer token has no issue time (iat).",
            Self::LifetimeTooLong => "The bearer token is valid for longer than allowed.",
            Self::TooOld => "The bearer token was issued too long ago; sign in again.",
            Self::MissingSubject => "The bearer token names no subject (sub).",
            Self::WrongIssuer => "The bearer token was issued by someone else.",
            Self::WrongAudience => "The bearer token is meant for another audience.",
        }
    }
}

impl From<Rejection> for AppError {
    fn from(r: Rejection) -> Self {
        AppError::unauthorized(r.reason(), r.message())
    }
}

/// The verified facts about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    /// `email` is present and verified (by the claim or by `AUTH_EMAILS_VERIFIED`).
    pub email_verified: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct Custom {
    sub: Option<String>,
    email: Option<String>,
    /// Kept as raw JSON so `"true"`, `1` or `null` read as "not verified", not as a
    /// malformed token.
    email_verified: Option<Value>,
    iss: Option<String>,
    aud: Option<Audience>,
}

#[derive(Debug, Serialize)]
struct Minted<'a> {
    sub: &'a str,
    email: &'a str,
    email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// A session token of our own, for the development sign-in only: `sub`, a verified
/// `email`, `iat` now and `exp` the longest lifetime [`verify`] accepts, the pinned issuer
/// and audience if any — so it is checked exactly like one from an identity provider.
pub fn mint(
    config: &AuthConfig,
    subject: &str,
    email: &str,
    now: DateTime<Utc>,
) -> Result<String, AppError> {
    let custom = Minted {
        sub: subject,
        email,
        email_verified: true,
        iss: config.issuer.as_deref(),
        aud: config.audience.as_deref(),
    };
    let options = TimeOptions::new(Duration::seconds(LEEWAY_SECS), move || now);
    let claims = Claims::new(custom).set_duration_and_issuance(
        &options,
        Duration::seconds(i64::from(config.max_lifetime_secs)),
    );
    let key = Hs256Key::new(config.secret.expose().as_bytes());
    Hs256
        .token(&Header::empty(), &claims, &key)
        .map_err(|e| AppError::internal(format!("minting a session token: {e}")))
}

/// Extracts the token from an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, Rejection> {
    let value = header.map(str::trim).filter(|v| !v.is_empty());
    let value = value.ok_or(Rejection::MissingToken)?;
    let (scheme, token) = value.split_once(' ').ok_or(Rejection::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::NotBearer);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Rejection::MissingToken);
    }
    Ok(token)
}

pub fn verify(config: &AuthConfig, token: &str, now: DateTime<Utc>) -> Result<Identity, Rejection> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::TooLarge);
    }
    let untrusted = UntrustedToken::new(token).map_err(|_| Rejection::Malformed)?;
    // Checked before the signature so `none`, RS256 and friends are named as such.
    if untrusted.algorithm() != "HS256" {
        return Err(Rejection::UnsupportedAlgorithm);
    }
    let key = Hs256Key::new(config.secret.expose().as_bytes());
    let verified = Hs256
        .validator::<Custom>(&key)
        .validate(&untrusted)
        .map_err(|e| match e {
            ValidationError::InvalidSignature
            | ValidationError::InvalidSignatureLen { .. }
            | ValidationError::MalformedSignature(_) => Rejection::BadSignature,
            ValidationError::AlgorithmMismatch { .. } => Rejection::UnsupportedAlgorithm,
            _ => Rejection::Malformed,
        })?;
    let claims = verified.claims();

    let leeway = Duration::seconds(LEEWAY_SECS);
    let options = TimeOptions::new(leeway, move || now);
    claims.validate_expiration(&options).map_err(|e| match e {
        ValidationError::Expired => Rejection::Expired,
        _ => Rejection::MissingExpiry,
    })?;
    if claims.not_before.is_some() {
        claims
            .validate_maturity(&options)
            .map_err(|_| Rejection::NotYetValid)?;
    }
    let issued_at = claims.issued_at.ok_or(Rejection::MissingIssuedAt)?;
    if issued_at > now + leeway {
        return Err(Rejection::IssuedInFuture);
    }
    let cap = Duration::seconds(i64::from(config.max_lifetime_secs));
    if now - issued_at > cap + leeway {
        return Err(Rejection::TooOld);
    }
    let expiration = claims.expiration.ok_or(Rejection::MissingExpiry)?;
    if expiration - issued_at > cap {
        return Err(Rejection::LifetimeTooLong);
    }

    let custom = &claims.custom;
    if let Some(want) = &config.issuer {
        if custom.iss.as_deref() != Some(want.as_str()) {
            return Err(Rejection::WrongIssuer);
        }
    }
    if let Some(want) = &config.audience {
        let ok = match &custom.aud {
            Some(Audience::One(a)) => a == want,
            Some(Audience::Many(all)) => all.iter().any(|a| a == want),
            None => false,
        };
        if !ok {
            return Err(Rejection::WrongAudience);
        }
    }

    let subject = custom
        .sub
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_LEN && !s.chars().any(char::is_control))
        .ok_or(Rejection::MissingSubject)?
        .to_string();
    let email = custom
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty() && e.len() <= MAX_EMAIL_LEN && e.contains('@'))
        .map(str::to_ascii_lowercase);
    let email_verified = email.is_some()
        && (config.emails_verified || custom.email_verified == Some(Value::Bool(true)));
    Ok(Identity {
        subject,
        email,
        email_verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::secret::Secret;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::{Hmac, Mac};
    use serde_json::json;
    use sha2::Sha256;

    const SECRET: &str = "test-secret-test-secret-test-secret!";

    fn config() -> AuthConfig {
        AuthConfig {
            secret: Secret::new(SECRET),
            issuer: None,
            audience: None,
            emails_verified: false,
            max_lifetime_secs: 86_400,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_like_any_other_with_a_verified_email() {
        let mut c = config();
        c.issuer = Some("https://idp.example".into());
        c.audience = Some("catwalk-edge".into());
        let t = mint(&c, "dev:ada@example.com", "ada@example.com", now()).unwrap();
        let id = verify(&c, &t, now()).unwrap();
        assert_eq!(id.subject, "dev:ada@example.com");
        assert!(id.email_verified);
        let later = now() + Duration::seconds(86_400 + LEEWAY_SECS + 1);
        assert_eq!(verify(&c, &t, later), Err(Rejection::Expired));
    }

    fn sign(header: Value, claims: Value, key: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let c = URL_SAFE_NO_PAD.encode(claims.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{h}.{c}").as_bytes());
        format!(
            "{h}.{c}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn good_claims() -> Value {
        let t = now().timestamp();
        json!({"sub": "user-1", "email": "Ada@Example.com", "iat": t - 10, "exp": t + 3600})
    }

    fn token(claims: Value) -> String {
        sign(json!({"alg": "HS256", "typ": "JWT"}), claims, SECRET)
    }

    #[test]
    fn a_well_signed_token_yields_the_subject_and_lowercased_email() {
        let id = verify(&config(), &token(good_claims()), now()).unwrap();
        assert_eq!(id.subject, "user-1");
        assert_eq!(id.email.as_deref(), Some("ada@example.com"));
    }

    #[test]
    fn only_a_boolean_true_email_verified_claim_verifies_the_email() {
        let verified = |extra: Value| {
            let mut claims = good_claims();
            if let (Value::Object(c), Value::Object(e)) = (&mut claims, extra) {
                c.extend(e);
            }
            verify(&config(), &token(claims), now()).map(|id| id.email_verified)
        };
        assert_eq!(verified(json!({})), Ok(false));
        assert_eq!(verified(json!({"email_verified": true})), Ok(true));
        for not_true in [
            json!(false),
            json!("true"),
            json!(1),
            json!(null),
            json!({}),
        ] {
            assert_eq!(
                verified(json!({ "email_verified": not_true })),
                Ok(false),
                "{not_true}"
            );
        }
    }

    #[test]
    fn the_operator_setting_verifies_every_email_but_not_a_missing_one() {
        let mut c = config();
        c.emails_verified = true;
        let id = verify(&c, &token(good_claims()), now()).unwrap();
        assert!(id.email_verified);
        let t = now().timestamp();
        let no_email = token(json!({"sub": "u", "iat": t, "exp": t + 60, "email_verified": true}));
        let id = verify(&c, &no_email, now()).unwrap();
        assert_eq!((id.email, id.email_verified), (None, false));
    }

    #[test]
    fn the_bearer_header_must_be_present_and_use_the_bearer_scheme() {
        assert_eq!(bearer(None), Err(Rejection::MissingToken));
        assert_eq!(bearer(Some("")), Err(Rejection::MissingToken));
        assert_eq!(bearer(Some("Basic abc")), Err(Rejection::NotBearer));
        assert_eq!(bearer(Some("Bearer")), Err(Rejection::NotBearer));
        assert_eq!(bearer(Some("bearer   tok ")), Ok("tok"));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let t = now().timestamp();
        let claims = json!({"sub": "u", "exp": t + 60});
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        assert_eq!(
            verify(&config(), &none, now()),
            Err(Rejection::UnsupportedAlgorithm)
        );
        for alg in ["HS384", "HS512", "RS256", "ES256", "hs256"] {
            let tok = sign(json!({"alg": alg}), claims.clone(), SECRET);
            assert_eq!(
                verify(&config(), &tok, now()),
                Err(Rejection::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let tok = sign(
            json!({"alg": "HS256"}),
            good_claims(),
            "another-key-another-key-another-key",
        );
        assert_eq!(verify(&config(), &tok, now()), Err(Rejection::BadSignature));
    }

    #[test]
    fn expiry_honours_sixty_seconds_of_leeway() {
        let t = now().timestamp();
        let just = token(json!({"sub": "u", "iat": t - 3600, "exp": t - 59}));
        assert!(verify(&config(), &just, now()).is_ok());
        let late = token(json!({"sub": "u", "iat": t - 3600, "exp": t - 61}));
        assert_eq!(verify(&config(), &late, now()), Err(Rejection::Expired));
        let no_exp = token(json!({"sub": "u", "iat": t}));
        assert_eq!(
            verify(&config(), &no_exp, now()),
            Err(Rejection::MissingExpiry)
        );
    }

    #[test]
    fn not_before_and_issued_at_in_the_future_are_refused() {
        let t = now().timestamp();
        let nbf = token(json!({"sub": "u", "iat": t, "exp": t + 600, "nbf": t + 120}));
        assert_eq!(verify(&config(), &nbf, now()), Err(Rejection::NotYetValid));
        let iat = token(json!({"sub": "u", "exp": t + 600, "iat": t + 120}));
        assert_eq!(
            verify(&config(), &iat, now()),
            Err(Rejection::IssuedInFuture)
        );
    }

    #[test]
    fn a_token_without_an_issue_time_is_refused() {
        let t = now().timestamp();
        let no_iat = token(json!({"sub": "u", "exp": t + 600}));
        assert_eq!(
            verify(&config(), &no_iat, now()),
            Err(Rejection::MissingIssuedAt)
        );
        assert_eq!(Rejection::MissingIssuedAt.reason(), "missing_iat");
    }

    #[test]
    fn a_token_valid_for_longer_than_the_cap_is_refused() {
        let t = now().timestamp();
        let cap = 86_400;
        let at_cap = token(json!({"sub": "u", "iat": t - 100, "exp": t - 100 + cap}));
        assert!(verify(&config(), &at_cap, now()).is_ok());
        let over = token(json!({"sub": "u", "iat": t - 100, "exp": t - 100 + cap + 1}));
        assert_eq!(
            verify(&config(), &over, now()),
            Err(Rejection::LifetimeTooLong)
        );
        let forever = token(json!({"sub": "u", "iat": t, "exp": t + 10 * 365 * 86_400}));
        assert_eq!(
            verify(&config(), &forever, now()),
            Err(Rejection::LifetimeTooLong)
        );
        let mut short = config();
        short.max_lifetime_secs = 600;
        let hour = token(json!({"sub": "u", "iat": t, "exp": t + 3600}));
        assert_eq!(
            verify(&short, &hour, now()),
            Err(Rejection::LifetimeTooLong)
        );
    }

    #[test]
    fn a_token_issued_longer_ago_than_the_cap_and_leeway_is_refused() {
        let t = now().timestamp();
        let cap = 86_400;
        let old = token(json!({"sub": "u", "iat": t - cap - LEEWAY_SECS - 1, "exp": t + 600}));
        assert_eq!(verify(&config(), &old, now()), Err(Rejection::TooOld));
        for iat in [0, -1_000_000_000_000_i64] {
            let ancient = token(json!({"sub": "u", "iat": iat, "exp": t + 600}));
            let got = verify(&config(), &ancient, now());
            assert!(
                matches!(got, Err(Rejection::TooOld | Rejection::Malformed)),
                "{iat}: {got:?}"
            );
        }
        let far = token(json!({"sub": "u", "iat": t, "exp": 1_000_000_000_000_i64}));
        assert_eq!(
            verify(&config(), &far, now()),
            Err(Rejection::LifetimeTooLong)
        );
        let mut short = config();
        short.max_lifetime_secs = 600;
        let stale = token(json!({"sub": "u", "iat": t - 600 - LEEWAY_SECS - 1, "exp": t + 60}));
        assert_eq!(verify(&short, &stale, now()), Err(Rejection::TooOld));
        let recent = token(json!({"sub": "u", "iat": t - 500, "exp": t + 100}));
        assert!(verify(&short, &recent, now()).is_ok());
    }

    #[test]
    fn a_missing_or_blank_subject_is_refused() {
        let t = now().timestamp();
        for claims in [
            json!({"iat": t, "exp": t + 60}),
            json!({"sub": " ", "iat": t, "exp": t + 60}),
            json!({"sub": "a\nb", "iat": t, "exp": t + 60}),
        ] {
            assert_eq!(
                verify(&config(), &token(claims), now()),
                Err(Rejection::MissingSubject)
            );
        }
    }

    #[test]
    fn garbage_and_oversized_tokens_are_refused_before_parsing() {
        for bad in ["abc", "a.b", "a.b.c", "....", "eyJ.eyJ.x"] {
            assert_eq!(
                verify(&config(), bad, now()),
                Err(Rejection::Malformed),
                "{bad}"
            );
        }
        let big = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(verify(&config(), &big, now()), Err(Rejection::TooLarge));
        let wrong_types = token(json!({"sub": 5, "exp": "soon"}));
        assert_eq!(
            verify(&config(), &wrong_types, now()),
            Err(Rejection::Malformed)
        );
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let mut c = config();
        c.issuer = Some("https://catwalk.example".into());
        c.audience = Some("catwalk-edge".into());
        let t = now().timestamp();
        let ok = token(
            json!({"sub": "u", "iat": t, "exp": t + 60, "iss": "https://catwalk.example", "aud": ["x", "catwalk-edge"]}),
        );
        assert!(verify(&c, &ok, now()).is_ok());
        let bad_iss = token(
            json!({"sub": "u", "iat": t, "exp": t + 60, "iss": "evil", "aud": "catwalk-edge"}),
        );
        assert_eq!(verify(&c, &bad_iss, now()), Err(Rejection::WrongIssuer));
        let bad_aud = token(
            json!({"sub": "u", "iat": t, "exp": t + 60, "iss": "https://catwalk.example", "aud": "other"}),
        );
        assert_eq!(verify(&c, &bad_aud, now()), Err(Rejection::WrongAudience));
        let no_aud =
            token(json!({"sub": "u", "iat": t, "exp": t + 60, "iss": "https://catwalk.example"}));
        assert_eq!(verify(&c, &no_aud, now()), Err(Rejection::WrongAudience));
    }
}
