//! v1 auth, the answer every Swift client understands: `GET /auth/v1.0` with
//! `X-Auth-User`/`X-Auth-Key` (or `X-Storage-User`/`X-Storage-Pass`) gives 200, an
//! empty body and `X-Auth-Token`, `X-Storage-Token`, `X-Storage-Url`,
//! `X-Auth-Token-Expires`; bad credentials give 401 with a `Www-Authenticate` challenge.

use std::future::Future;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use percent_encoding::percent_decode_str;

use super::identity::{Identity, LoginRequest, MAX_NAME_LENGTH, unix_now};
use crate::body::{Body, status_only};
use crate::error::{Error, Result};
use crate::http_util::{first_header, header_str, header_true, header_value};
use crate::store::AccountRecord;

/// The credentials of a v1 request, before any check of the key.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials {
    pub account: String,
    pub user: String,
    pub keys: Vec<String>,
}

/// `X-Auth-*` values may be URL-encoded (Swauth decodes them); `X-Storage-*` are taken as sent.
fn decoded(value: &str) -> String {
    percent_decode_str(value).decode_utf8_lossy().into_owned()
}

/// Reads the credentials as TempAuth does, plus Swauth's URL-decoding and a bare
/// user name on `/v1/<acct>/auth`.
pub fn credentials(path_account: Option<&str>, headers: &HeaderMap) -> Result<Credentials> {
    let realm = path_account.unwrap_or("unknown");
    let (user_value, user_is_auth) = match path_account {
        Some(_) => match first_header(headers, &["x-storage-user"])? {
            Some(u) => (Some(u), false),
            None => (first_header(headers, &["x-auth-user"])?, true),
        },
        None => match first_header(headers, &["x-auth-user"])? {
            Some(u) => (Some(u), true),
            None => (first_header(headers, &["x-storage-user"])?, false),
        },
    };
    let Some(user_value) = user_value else {
        return Err(Error::unauthorized(
            realm,
            "no credentials: send X-Auth-User: ACCOUNT:USER and X-Auth-Key: KEY",
        ));
    };
    let user_value = if user_is_auth {
        decoded(user_value)
    } else {
        user_value.to_owned()
    };
    let (account, user) = match (path_account, user_value.split_once(':')) {
        (Some(pa), Some((a, u))) => {
            if a != pa {
                return Err(Error::unauthorized(
                    pa,
                    format!("the user names account {a:?} but the path names {pa:?}"),
                ));
            }
            (a.to_owned(), u.to_owned())
        }
        (Some(pa), None) => (pa.to_owned(), user_value.clone()),
        (None, Some((a, u))) => (a.to_owned(), u.to_owned()),
        (None, None) => {
            return Err(Error::unauthorized(
                realm,
                "the user must be given as ACCOUNT:USER",
            ));
        }
    };
    for (kind, name) in [("account", &account), ("user", &user)] {
        if name.len() > MAX_NAME_LENGTH {
            return Err(Error::bad_request(format!(
                "{kind} name is {} bytes long; the limit is {MAX_NAME_LENGTH}",
                name.len()
            )));
        }
    }
    let realm = if account.is_empty() { realm } else { &account };
    let key_headers = if path_account.is_some() {
        ["x-storage-pass", "x-auth-key"]
    } else {
        ["x-auth-key", "x-storage-pass"]
    };
    let mut keys = None;
    for name in key_headers {
        if let Some(k) = first_header(headers, &[name])? {
            let d = decoded(k);
            keys = Some(if name == "x-auth-key" && d != k {
                vec![k.to_owned(), d]
            } else {
                vec![k.to_owned()]
            });
            break;
        }
    }
    let Some(keys) = keys else {
        return Err(Error::unauthorized(realm, "no key: send X-Auth-Key"));
    };
    if account.is_empty() || user.is_empty() {
        return Err(Error::unauthorized(
            realm,
            "the account and user must not be empty",
        ));
    }
    Ok(Credentials {
        account,
        user,
        keys,
    })
}

/// `X-Auth-Token-Lifetime`, in whole seconds.
fn requested_lifetime(headers: &HeaderMap) -> Result<Option<Duration>> {
    match header_str(headers, "x-auth-token-lifetime")? {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| *s > 0)
            .map(|s| Some(Duration::from_secs(s)))
            .ok_or_else(|| {
                Error::bad_request(
                    "X-Auth-Token-Lifetime must be a whole number of seconds above 0",
                )
            }),
    }
}

/// What an upstream hands out for an account delivered directly: its own token and
/// storage URL.
pub struct DirectCredentials {
    pub token: String,
    pub storage_url: String,
    /// Seconds left, when the upstream said.
    pub expires_in: Option<u64>,
}

/// The upstreams accounts log in to with their own credentials (Keystone, v1, OAuth2).
pub trait Upstreams {
    /// Whether accounts on `backend` hold their own upstream credentials.
    fn own_credentials(&self, backend: &str) -> bool;

    /// For such an account, after its user's key was checked: the upstream's credentials
    /// when its delivery is direct (a fresh session when `renew`), `None` when the
    /// gateway proxies it.
    fn direct(
        &self,
        account: &AccountRecord,
        renew: bool,
    ) -> impl Future<Output = Result<Option<DirectCredentials>>> + Send;
}

/// v1 auth. Accounts on the embedded store or behind the proxy get a gateway token and
/// the gateway's storage URL. Accounts with their own upstream credentials have them
/// checked (a cached upstream session, a fresh one with `X-Auth-New-Token`), and with
/// direct delivery get the upstream's own storage URL and token instead.
pub async fn handle(
    identity: &Identity,
    upstreams: &impl Upstreams,
    path_account: Option<&str>,
    headers: &HeaderMap,
    source: std::net::IpAddr,
    base_url: &str,
    bind_to: Option<[u8; 32]>,
) -> Result<(Response<Body>, String)> {
    let creds = credentials(path_account, headers)?;
    let req = LoginRequest {
        new_token: header_true(headers, "x-auth-new-token")?,
        lifetime: requested_lifetime(headers)?,
        account: creds.account,
        user: creds.user,
        keys: creds.keys,
        source,
        bound_to: bind_to,
    };
    let who = format!("{}:{}", req.account, req.user);
    identity.look_for(&req.account, &req.user).await;
    let record = identity.account(&req.account);
    let own_credentials = record
        .as_ref()
        .is_some_and(|r| upstreams.own_credentials(&r.backend));
    let Some(record) = record.filter(|_| own_credentials) else {
        let issued = identity.login(&req).await?;
        let url = format!("{base_url}/v1/{}", issued.storage_id);
        let left = issued.expires_at.saturating_sub(unix_now());
        return Ok((answer(&issued.token, &url, Some(left))?, who));
    };
    // the key first: nothing about the upstream is said to whom does not hold it
    identity
        .verify_key(&req.account, &req.user, &req.keys, source)
        .await?;
    let record = identity
        .account_with_credentials(&req.account)
        .await?
        .unwrap_or(record);
    if let Some(direct) = upstreams.direct(&record, req.new_token).await? {
        return Ok((
            answer(&direct.token, &direct.storage_url, direct.expires_in)?,
            who,
        ));
    }
    let issued = identity.login(&req).await?;
    let url = format!("{base_url}/v1/{}", issued.storage_id);
    let left = issued.expires_at.saturating_sub(unix_now());
    Ok((answer(&issued.token, &url, Some(left))?, who))
}

/// The success answer: 200, an empty body, the token twice and the storage URL.
fn answer(token: &str, storage_url: &str, expires_in: Option<u64>) -> Result<Response<Body>> {
    let mut resp = status_only(StatusCode::OK);
    let h = resp.headers_mut();
    let token = header_value(token)?;
    h.insert("x-auth-token", token.clone());
    h.insert("x-storage-token", token);
    h.insert("x-storage-url", header_value(storage_url)?);
    if let Some(left) = expires_in {
        h.insert("x-auth-token-expires", HeaderValue::from(left));
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    fn creds(path: Option<&str>, pairs: &[(&'static str, &str)]) -> Result<Credentials> {
        credentials(path, &h(pairs))
    }

    #[test]
    fn both_header_pairs() {
        let c = creds(None, &[("x-auth-user", "test:tester"), ("x-auth-key", "k")]).unwrap();
        assert_eq!(
            (c.account.as_str(), c.user.as_str(), c.keys),
            ("test", "tester", vec!["k".to_string()])
        );
        let c = creds(
            None,
            &[("x-storage-user", "test:tester"), ("x-storage-pass", "k")],
        )
        .unwrap();
        assert_eq!(c.user, "tester");
    }

    #[test]
    fn auth_headers_are_url_decoded() {
        let c = creds(
            None,
            &[("x-auth-user", "test%3Atester"), ("x-auth-key", "a%20b")],
        )
        .unwrap();
        assert_eq!(c.account, "test");
        assert_eq!(c.keys, vec!["a%20b".to_string(), "a b".to_string()]);
        // X-Storage-* are taken as sent
        let e = creds(
            None,
            &[("x-storage-user", "test%3Atester"), ("x-storage-pass", "k")],
        )
        .unwrap_err();
        assert_eq!(e.status(), 401);
    }

    #[test]
    fn account_in_path() {
        let c = creds(
            Some("test"),
            &[("x-storage-user", "tester"), ("x-storage-pass", "k")],
        )
        .unwrap();
        assert_eq!((c.account.as_str(), c.user.as_str()), ("test", "tester"));
        let c = creds(
            Some("test"),
            &[("x-auth-user", "test:tester"), ("x-auth-key", "k")],
        )
        .unwrap();
        assert_eq!(c.user, "tester");
        let e = creds(
            Some("test"),
            &[("x-auth-user", "other:tester"), ("x-auth-key", "k")],
        )
        .unwrap_err();
        assert_eq!(e.status(), 401);
    }

    #[test]
    fn missing_or_malformed_credentials_are_401() {
        for pairs in [
            &[][..],
            &[("x-auth-user", "tester"), ("x-auth-key", "k")][..],
            &[("x-auth-user", "test:tester")][..],
            &[("x-auth-user", "test:tester"), ("x-auth-key", "")][..],
            &[("x-auth-user", ":tester"), ("x-auth-key", "k")][..],
        ] {
            let e = creds(None, pairs).unwrap_err();
            assert_eq!(e.status(), 401, "{pairs:?}");
        }
    }

    #[test]
    fn long_names_are_400() {
        let long = format!("test:{}", "u".repeat(10_000));
        let e = creds(None, &[("x-auth-user", &long), ("x-auth-key", "k")]).unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("limit is 256"), "{e}");
    }

    #[test]
    fn lifetime() {
        assert_eq!(
            requested_lifetime(&h(&[("x-auth-token-lifetime", "60")])).unwrap(),
            Some(Duration::from_secs(60))
        );
        assert!(requested_lifetime(&h(&[("x-auth-token-lifetime", "soon")])).is_err());
        assert_eq!(requested_lifetime(&HeaderMap::new()).unwrap(), None);
    }
}
