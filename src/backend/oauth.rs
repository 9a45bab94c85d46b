//! OAuth2 providers that hand out Swift credentials for a grant (the HubiC pattern):
//! the authorization-code flow with PKCE and a per-request `state`, refresh with
//! rotation, then `GET <credentials_url>` with the access token for `{token, endpoint,
//! expires}`. Secrets (client secret, codes, tokens) are never logged.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::client::{HttpClient, Outgoing};
use crate::config::OAuthSettings;
use crate::error::{Error, Result};

/// A per-request nonce: the `state` of an authorization.
pub fn nonce() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

/// A PKCE pair (RFC 7636): the verifier kept here, its S256 challenge sent.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let verifier = b64.encode(raw);
    let challenge = b64.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

/// What `application/x-www-form-urlencoded` leaves as it is, besides letters and digits.
const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, FORM).to_string()
}

/// `application/x-www-form-urlencoded`, also for query strings.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Where the browser goes to grant access.
pub fn authorize_url(
    settings: &OAuthSettings,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
) -> String {
    let sep = if settings.authorize_url.contains('?') {
        '&'
    } else {
        '?'
    };
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", settings.client_id.as_str()),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    if !settings.scope.is_empty() {
        pairs.push(("scope", settings.scope.as_str()));
    }
    format!("{}{sep}{}", settings.authorize_url, form(&pairs))
}

/// A token endpoint's answer.
#[derive(serde::Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
    pub token_type: Option<String>,
}

/// Swift credentials from the credentials endpoint.
#[derive(serde::Deserialize)]
pub struct SwiftCredentials {
    pub token: String,
    pub endpoint: String,
    pub expires: Option<String>,
}

/// Usage from the usage endpoint, in bytes.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
pub struct Usage {
    pub quota: u64,
    pub used: u64,
}

/// Why a token request failed: the grant is gone (re-link), or something else.
pub enum TokenError {
    /// `invalid_grant` and kin: the refresh token or code is no longer good.
    Revoked(String),
    Other(Error),
}

impl From<Error> for TokenError {
    fn from(e: Error) -> Self {
        TokenError::Other(e)
    }
}

/// Sends one request and reads the whole (small) answer.
async fn call(
    client: &HttpClient,
    timeout: Duration,
    req: Request<Outgoing>,
    what: &str,
) -> Result<(StatusCode, Bytes)> {
    let resp = match tokio::time::timeout(timeout, client.request(req)).await {
        Err(_) => {
            return Err(Error::GatewayTimeout(format!(
                "the OAuth2 provider's {what} did not answer within {}",
                humantime::format_duration(timeout)
            )));
        }
        Ok(Err(e)) => {
            tracing::warn!(error = ?e, what, "an OAuth2 request failed");
            return Err(Error::UpstreamUnavailable(format!(
                "the OAuth2 provider's {what} cannot be reached ({})",
                super::client::root_cause(&e)
            )));
        }
        Ok(Ok(resp)) => resp,
    };
    let status = resp.status();
    let body = tokio::time::timeout(timeout, resp.into_body().collect())
        .await
        .map_err(|_| Error::GatewayTimeout(format!("the OAuth2 provider's {what} stalled")))?
        .map_err(|e| Error::BadGateway(format!("reading the OAuth2 provider's {what}: {e}")))?
        .to_bytes();
    Ok((status, body))
}

fn body(text: String) -> Outgoing {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// `POST <token_url>` with the client's credentials (HTTP Basic, RFC 6749 §2.3.1).
async fn token_request(
    client: &HttpClient,
    timeout: Duration,
    settings: &OAuthSettings,
    fields: &[(&str, &str)],
) -> std::result::Result<TokenAnswer, TokenError> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(&settings.client_id),
        encode(&settings.client_secret)
    ));
    let req = Request::post(&settings.token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .header("authorization", format!("Basic {basic}"))
        .body(body(form(fields)))
        .map_err(|e| Error::internal("token request", e))?;
    let (status, answer) = call(client, timeout, req, "token endpoint").await?;
    if status.is_success() {
        let t: TokenAnswer = serde_json::from_slice(&answer).map_err(|e| {
            Error::BadGateway(format!(
                "the OAuth2 provider's token answer is not understood: {e}"
            ))
        })?;
        if let Some(kind) = &t.token_type
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(Error::BadGateway(format!(
                "the OAuth2 provider gave a {kind:?} token; only Bearer tokens are used"
            ))
            .into());
        }
        return Ok(t);
    }
    #[derive(serde::Deserialize)]
    struct Refusal {
        error: String,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<Refusal>(&answer) {
        Ok(r) if status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED => {
            let said = match &r.error_description {
                Some(d) => format!("{} ({d})", r.error),
                None => r.error.clone(),
            };
            if matches!(r.error.as_str(), "invalid_grant" | "invalid_request") {
                Err(TokenError::Revoked(said))
            } else {
                Err(Error::BadGateway(format!("the OAuth2 provider refused: {said}")).into())
            }
        }
        _ => Err(Error::BadGateway(format!(
            "the OAuth2 provider's token endpoint answered {status}"
        ))
        .into()),
    }
}

/// Trades an authorization code (and its PKCE verifier) for tokens.
pub async fn exchange_code(
    client: &HttpClient,
    timeout: Duration,
    settings: &OAuthSettings,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> std::result::Result<TokenAnswer, TokenError> {
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    token_request(client, timeout, settings, &fields).await
}

/// A new access token for a refresh token (the provider may rotate the refresh token).
pub async fn refresh(
    client: &HttpClient,
    timeout: Duration,
    settings: &OAuthSettings,
    refresh_token: &str,
) -> std::result::Result<TokenAnswer, TokenError> {
    let fields = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    token_request(client, timeout, settings, &fields).await
}

/// `GET url` with the access token; `None` when the provider refuses the token (401).
async fn bearer_get<T: serde::de::DeserializeOwned>(
    client: &HttpClient,
    timeout: Duration,
    url: &str,
    access_token: &str,
    what: &str,
) -> Result<Option<T>> {
    let req = Request::get(url)
        .header("accept", "application/json")
        .header("authorization", format!("Bearer {access_token}"))
        .body(body(String::new()))
        .map_err(|e| Error::internal(format!("{what} request"), e))?;
    let (status, answer) = call(client, timeout, req, what).await?;
    if status == StatusCode::UNAUTHORIZED {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(Error::BadGateway(format!(
            "the OAuth2 provider's {what} answered {status}"
        )));
    }
    serde_json::from_slice(&answer).map(Some).map_err(|e| {
        Error::BadGateway(format!(
            "the OAuth2 provider's {what} answer is not understood: {e}"
        ))
    })
}

pub async fn credentials(
    client: &HttpClient,
    timeout: Duration,
    settings: &OAuthSettings,
    access_token: &str,
) -> Result<Option<SwiftCredentials>> {
    bearer_get(
        client,
        timeout,
        &settings.credentials_url,
        access_token,
        "credentials endpoint",
    )
    .await
}

pub async fn usage(
    client: &HttpClient,
    timeout: Duration,
    url: &str,
    access_token: &str,
) -> Result<Option<Usage>> {
    bearer_get(client, timeout, url, access_token, "usage endpoint").await
}

/// An RFC 3339 time with any offset (`2017-06-12T11:10:23+02:00`, `…Z`), as providers
/// write `expires`.
pub fn rfc3339(at: &str) -> Option<SystemTime> {
    let at = at.trim();
    let (local, offset_secs) = if let Some(l) = at.strip_suffix('Z').or(at.strip_suffix('z')) {
        (l, 0i64)
    } else {
        let split = at.len().checked_sub(6)?;
        let (l, off) = at.split_at(split);
        let sign = match off.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, m) = off[1..].split_once(':')?;
        let secs = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
        (l, sign * secs)
    };
    let utc_if_local = humantime::parse_rfc3339_weak(local).ok()?;
    if offset_secs >= 0 {
        utc_if_local.checked_sub(Duration::from_secs(offset_secs.unsigned_abs()))
    } else {
        utc_if_local.checked_add(Duration::from_secs(offset_secs.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_times_with_offsets() {
        let secs = |s: &str| {
            rfc3339(s)
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(secs("2017-06-12T11:10:23+02:00"), 1_497_258_623);
        assert_eq!(secs("2017-06-12T09:10:23Z"), 1_497_258_623);
        assert_eq!(secs("2017-06-12T04:10:23-05:00"), 1_497_258_623);
        assert_eq!(secs("2017-06-12T09:10:23.250Z"), 1_497_258_623);
        assert!(rfc3339("yesterday").is_none());
        assert!(rfc3339("2017-06-12T09:10:23+0200").is_none());
    }

    #[test]
    fn pkce_challenge_is_s256_of_the_verifier() {
        let p = pkce();
        assert_eq!(p.verifier.len(), 43);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        assert_eq!(
            p.challenge,
            b64.encode(Sha256::digest(p.verifier.as_bytes()))
        );
        assert_ne!(pkce().verifier, p.verifier);
        assert_eq!(nonce().len(), 64);
    }

    #[test]
    fn the_authorize_url_carries_state_pkce_and_scope() {
        let s = OAuthSettings {
            authorize_url: "https://p.example/oauth/auth/".into(),
            token_url: String::new(),
            credentials_url: String::new(),
            usage_url: None,
            scope: "usage.r,credentials.r".into(),
            client_id: "api_hubic_x".into(),
            client_secret: "s".into(),
            redirect_uri: None,
        };
        let url = authorize_url(&s, "https://gw.example/callback", "st", "ch");
        assert_eq!(
            url,
            "https://p.example/oauth/auth/?response_type=code&client_id=api_hubic_x\
             &redirect_uri=https%3A%2F%2Fgw.example%2Fcallback&state=st&code_challenge=ch\
             &code_challenge_method=S256&scope=usage.r%2Ccredentials.r"
        );
    }
}
