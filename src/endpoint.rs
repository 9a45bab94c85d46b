//! What a request asks for, decided from its method and path alone: no I/O, no
//! state, so every surface of the gateway can be tested against real request lines.

use http::Method;
use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// v1 auth; `account` is set on `/v1/<acct>/auth` and `/auth/v1/<acct>/auth`.
    V1Auth {
        account: Option<String>,
    },
    /// `/v1/<storage id>[/<container>[/<object>]]`.
    Storage {
        account: String,
        container: Option<String>,
        object: Option<String>,
    },
    Admin(AdminOp),
    /// `GET /token/<token>` (DevAuth, Ceph RGW) and `GET /auth/v2/.token/<token>` (Swauth).
    ValidateToken {
        token: String,
    },
    Healthcheck,
    /// `GET /readyz`: readiness, with what each check found.
    Readyz,
    /// `GET /metrics`: served on the main listeners only behind the metrics token.
    Metrics,
    Info,
    /// `GET|POST /link/<account>`: linking an account to its OAuth2 provider.
    Link {
        account: String,
    },
    /// `GET /callback`: the OAuth2 provider's answer.
    Callback,
    /// `GET|POST /usage` (HTML) and `GET /usage.json`.
    Usage {
        json: bool,
    },
    /// Keystone's identity API v3 (`auth::keystone`).
    Keystone(KeystoneOp),
}

/// What a request to the Keystone identity API asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeystoneOp {
    /// `GET /`: the versions served.
    Versions,
    /// `GET /v2.0`.
    VersionV2,
    /// `POST /v2.0/tokens`: a login of Keystone's v2.0.
    IssueTokenV2,
    /// `GET /v3`.
    Version,
    /// `POST /v3/auth/tokens`: a login.
    IssueToken,
    /// `GET|HEAD /v3/auth/tokens`: a service validates `X-Subject-Token`.
    ValidateToken,
    /// `DELETE /v3/auth/tokens`.
    RevokeToken,
    /// `GET /v3/auth/catalog`.
    Catalog,
    /// `GET /v3/auth/projects`.
    Projects,
    /// `GET /v3/auth/domains`.
    Domains,
    /// `/v3/users/{user}/application_credentials[/{id}]`: GET and POST on the list, GET
    /// and DELETE on one.
    AppCredentials { user: String, id: Option<String> },
    /// `/v3/users/{user}/credentials/OS-EC2[/{access}]`: GET and POST on the list, GET
    /// and DELETE on one.
    Ec2Credentials {
        user: String,
        access: Option<String>,
    },
    /// `POST /v3/s3tokens`: a service checks an S3 request's signature.
    S3Token,
    /// `POST /v3/ec2tokens`: a service checks an EC2 request's signature, for a token.
    Ec2Token,
}

/// The Swauth-shaped admin API under `/auth/v2/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOp {
    ListAccounts,
    GetAccount(String),
    PutAccount(String),
    DeleteAccount(String),
    ListGroups(String),
    GetUser(String, String),
    PutUser(String, String),
    DeleteUser(String, String),
    /// `POST /recreate_accounts` (DevAuth): every account again on its cluster.
    RecreateAccounts,
}

impl Endpoint {
    /// The path as it may be logged: tokens in validation paths are hidden.
    pub(crate) fn log_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        match self {
            Endpoint::ValidateToken { .. } if path.starts_with("/token/") => {
                "/token/<token>".into()
            }
            Endpoint::ValidateToken { .. } => "/auth/v2/.token/<token>".into(),
            _ => path.into(),
        }
    }
}

const GET: &str = "GET";
const GET_HEAD: &str = "GET, HEAD";
const POST: &str = "POST";
const TOKENS: &str = "GET, HEAD, POST, DELETE";

fn only(method: &Method, allowed: &'static str) -> Result<()> {
    let ok = match allowed {
        GET => method == Method::GET,
        POST => method == Method::POST,
        TOKENS => [Method::GET, Method::HEAD, Method::POST, Method::DELETE].contains(method),
        _ => method == Method::GET || method == Method::HEAD,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::MethodNotAllowed {
            method: method.to_string(),
            allow: allowed,
        })
    }
}

/// Percent-decodes a path segment: it must be UTF-8 without NUL.
fn decode(seg: &str) -> Option<String> {
    let s = percent_decode_str(seg).decode_utf8().ok()?;
    (!s.contains('\0')).then(|| s.into_owned())
}

/// Whether a path is the Keystone identity API's (its failures are answered in its
/// words): the versions at `/`, `/v3` and `/v2.0`.
pub(crate) fn is_keystone(path: &str) -> bool {
    path == "/"
        || path == "/v3"
        || path.starts_with("/v3/")
        || path == "/v2.0"
        || path.starts_with("/v2.0/")
}

/// Classifies a request. `path` is the raw (percent-encoded) path without the query.
pub(crate) fn classify(method: &Method, path: &str, reseller_prefix: &str) -> Result<Endpoint> {
    if !path.starts_with('/') {
        return Err(Error::bad_request("the request path must start with '/'"));
    }
    if path == "/v1" || path == "/v1/" {
        return Err(Error::PreconditionFailed("Bad URL".into()));
    }
    if let Some(rest) = path.strip_prefix("/v1/") {
        let first = rest.split('/').next().unwrap_or_default();
        if !first.starts_with(reseller_prefix) {
            // DevAuth's `/v1/<account>/auth`; storage ids always carry the reseller prefix.
            if let Some(acct) = rest.strip_suffix("/auth").filter(|a| !a.contains('/')) {
                return v1_auth(method, Some(acct));
            }
        }
        return storage(rest);
    }
    let decoded = decode(path).ok_or_else(|| {
        Error::bad_request("the request path is not valid UTF-8 once decoded, or contains NUL")
    })?;
    if decoded.split('/').any(|s| s == ".." || s == ".") {
        return Err(Error::bad_request(
            "the request path must not contain '.' or '..' segments",
        ));
    }
    match path {
        "/" => return only(method, GET_HEAD).map(|_| Endpoint::Keystone(KeystoneOp::Versions)),
        "/v3" | "/v3/" => {
            return only(method, GET_HEAD).map(|_| Endpoint::Keystone(KeystoneOp::Version));
        }
        "/v3/auth/tokens" | "/v3/auth/tokens/" => {
            only(method, TOKENS)?;
            return Ok(Endpoint::Keystone(match *method {
                Method::POST => KeystoneOp::IssueToken,
                Method::DELETE => KeystoneOp::RevokeToken,
                _ => KeystoneOp::ValidateToken,
            }));
        }
        "/v2.0" | "/v2.0/" => {
            return only(method, GET_HEAD).map(|_| Endpoint::Keystone(KeystoneOp::VersionV2));
        }
        "/v2.0/tokens" | "/v2.0/tokens/" => {
            return only(method, POST).map(|_| Endpoint::Keystone(KeystoneOp::IssueTokenV2));
        }
        "/v3/auth/catalog" => {
            return only(method, GET_HEAD).map(|_| Endpoint::Keystone(KeystoneOp::Catalog));
        }
        "/v3/auth/projects" => {
            return only(method, GET_HEAD).map(|_| Endpoint::Keystone(KeystoneOp::Projects));
        }
        "/v3/auth/domains" => {
            return only(method, GET_HEAD).map(|_| Endpoint::Keystone(KeystoneOp::Domains));
        }
        "/v3/s3tokens" | "/v3/s3tokens/" => {
            return only(method, POST).map(|_| Endpoint::Keystone(KeystoneOp::S3Token));
        }
        "/v3/ec2tokens" | "/v3/ec2tokens/" => {
            return only(method, POST).map(|_| Endpoint::Keystone(KeystoneOp::Ec2Token));
        }
        "/healthcheck" => return only(method, GET_HEAD).map(|_| Endpoint::Healthcheck),
        "/readyz" => return only(method, GET_HEAD).map(|_| Endpoint::Readyz),
        "/metrics" => return only(method, GET).map(|_| Endpoint::Metrics),
        _ if path.starts_with("/v3/users/") => return user_credentials(method, path),
        "/info" => return only(method, GET_HEAD).map(|_| Endpoint::Info),
        "/recreate_accounts" if method == Method::POST => {
            return Ok(Endpoint::Admin(AdminOp::RecreateAccounts));
        }
        "/recreate_accounts" => {
            return Err(Error::MethodNotAllowed {
                method: method.to_string(),
                allow: "POST",
            });
        }
        "/auth/v1.0" | "/auth/v1.0/" | "/v1.0" | "/v1.0/" | "/auth" | "/auth/" | "/auth/auth"
        | "/auth/auth/" => return v1_auth(method, None),
        "/callback" | "/callback/" => return only(method, GET).map(|_| Endpoint::Callback),
        "/usage" | "/usage/" => {
            return get_or_post(method).map(|_| Endpoint::Usage { json: false });
        }
        "/usage.json" => return only(method, GET).map(|_| Endpoint::Usage { json: true }),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/link/") {
        let account = decode(rest.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| Error::NotFound("a link page is /link/<account>".into()))?;
        return get_or_post(method).map(|_| Endpoint::Link { account });
    }
    if let Some(token) = path.strip_prefix("/token/") {
        return validate_token(method, token);
    }
    if let Some(rest) = path.strip_prefix("/auth/v1/")
        && let Some(acct) = rest.strip_suffix("/auth").filter(|a| !a.contains('/'))
    {
        return v1_auth(method, Some(acct));
    }
    if path == "/auth/v2" {
        return admin(method, "");
    }
    if let Some(rest) = path.strip_prefix("/auth/v2/") {
        if let Some(token) = rest.strip_prefix(".token/") {
            return validate_token(method, token);
        }
        return admin(method, rest);
    }
    Err(Error::NotFound(format!("nothing is served at {path}")))
}

/// `/v3/users/{user}/application_credentials[/{id}]` and
/// `/v3/users/{user}/credentials/OS-EC2[/{access}]`.
fn user_credentials(method: &Method, path: &str) -> Result<Endpoint> {
    let rest = path.strip_prefix("/v3/users/").unwrap_or_default();
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let (user, ec2, id) = match parts.as_slice() {
        [user, "application_credentials"] => (user, false, None),
        [user, "application_credentials", id] => (user, false, Some(*id)),
        [user, "credentials", "OS-EC2"] => (user, true, None),
        [user, "credentials", "OS-EC2", access] => (user, true, Some(*access)),
        _ => return Err(Error::NotFound(format!("nothing is served at {path}"))),
    };
    let allowed = if id.is_some() {
        "GET, HEAD, DELETE"
    } else {
        "GET, HEAD, POST"
    };
    let ok = method == Method::GET
        || method == Method::HEAD
        || (id.is_some() && method == Method::DELETE)
        || (id.is_none() && method == Method::POST);
    if !ok {
        return Err(Error::MethodNotAllowed {
            method: method.to_string(),
            allow: allowed,
        });
    }
    let name = |s: &str| decode(s).filter(|s| !s.is_empty());
    let user = name(user).ok_or_else(|| Error::NotFound("no such user".into()))?;
    let id = match id {
        Some(id) => Some(name(id).ok_or_else(|| {
            Error::NotFound(if ec2 {
                "no such EC2 credential".into()
            } else {
                "no such application credential".into()
            })
        })?),
        None => None,
    };
    Ok(Endpoint::Keystone(if ec2 {
        KeystoneOp::Ec2Credentials { user, access: id }
    } else {
        KeystoneOp::AppCredentials { user, id }
    }))
}

fn get_or_post(method: &Method) -> Result<()> {
    if method == Method::GET || method == Method::POST {
        Ok(())
    } else {
        Err(Error::MethodNotAllowed {
            method: method.to_string(),
            allow: "GET, POST",
        })
    }
}

fn v1_auth(method: &Method, account: Option<&str>) -> Result<Endpoint> {
    only(method, GET)?;
    let account = match account {
        None => None,
        Some(a) => Some(decode(a).filter(|a| !a.is_empty()).ok_or_else(|| {
            Error::bad_request("the account in the auth path is not a valid name")
        })?),
    };
    Ok(Endpoint::V1Auth { account })
}

fn validate_token(method: &Method, token: &str) -> Result<Endpoint> {
    only(method, GET_HEAD)?;
    if token.is_empty() || token.contains('/') {
        return Err(Error::NotFound("no token in the path".into()));
    }
    Ok(Endpoint::ValidateToken {
        token: token.to_owned(),
    })
}

fn storage(rest: &str) -> Result<Endpoint> {
    let bad = || Error::PreconditionFailed("Invalid UTF8 or contains NULL".into());
    let mut parts = rest.splitn(3, '/');
    let account = decode(parts.next().unwrap_or_default()).ok_or_else(bad)?;
    if account.is_empty() {
        return Err(Error::NotFound("no account in the storage path".into()));
    }
    let container = match parts.next() {
        Some(c) if !c.is_empty() => Some(decode(c).ok_or_else(bad)?),
        _ => None,
    };
    let object = match parts.next() {
        Some(o) if !o.is_empty() => Some(decode(o).ok_or_else(bad)?),
        _ => None,
    };
    if container.is_none() && object.is_some() {
        return Err(Error::NotFound("an object path needs a container".into()));
    }
    Ok(Endpoint::Storage {
        account,
        container,
        object,
    })
}

fn admin(method: &Method, rest: &str) -> Result<Endpoint> {
    let segs: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            decode(s).ok_or_else(|| Error::bad_request("a name in the path is not valid UTF-8"))
        })
        .collect::<Result<_>>()?;
    let not_allowed = |allow| {
        Err(Error::MethodNotAllowed {
            method: method.to_string(),
            allow,
        })
    };
    let op = match segs.as_slice() {
        [] => match *method {
            Method::GET => AdminOp::ListAccounts,
            _ => return not_allowed(GET),
        },
        [acct] => match *method {
            Method::GET => AdminOp::GetAccount(acct.clone()),
            Method::PUT => AdminOp::PutAccount(acct.clone()),
            Method::DELETE => AdminOp::DeleteAccount(acct.clone()),
            _ => return not_allowed("GET, PUT, DELETE"),
        },
        [acct, g] if g == ".groups" => match *method {
            Method::GET => AdminOp::ListGroups(acct.clone()),
            _ => return not_allowed(GET),
        },
        [acct, user] => match *method {
            Method::GET => AdminOp::GetUser(acct.clone(), user.clone()),
            Method::PUT => AdminOp::PutUser(acct.clone(), user.clone()),
            Method::DELETE => AdminOp::DeleteUser(acct.clone(), user.clone()),
            _ => return not_allowed("GET, PUT, DELETE"),
        },
        _ => {
            return Err(Error::NotFound(format!(
                "nothing is served at /auth/v2/{rest}"
            )));
        }
    };
    Ok(Endpoint::Admin(op))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: &str, path: &str) -> Result<Endpoint> {
        classify(&method.parse().unwrap(), path, "AUTH_")
    }

    fn status(method: &str, path: &str) -> u16 {
        c(method, path).unwrap_err().status().as_u16()
    }

    #[test]
    fn every_v1_auth_path() {
        for p in [
            "/auth/v1.0",
            "/auth/v1.0/",
            "/v1.0",
            "/v1.0/",
            "/auth",
            "/auth/",
            "/auth/auth",
        ] {
            assert_eq!(
                c("GET", p).unwrap(),
                Endpoint::V1Auth { account: None },
                "{p}"
            );
        }
        for p in ["/auth/v1/test/auth", "/v1/test/auth"] {
            assert_eq!(
                c("GET", p).unwrap(),
                Endpoint::V1Auth {
                    account: Some("test".into())
                },
                "{p}"
            );
        }
    }

    #[test]
    fn keystone_routes() {
        let k = |m: &str, p: &str| match c(m, p) {
            Ok(Endpoint::Keystone(op)) => Some(op),
            _ => None,
        };
        assert_eq!(k("GET", "/"), Some(KeystoneOp::Versions));
        assert_eq!(k("GET", "/v3"), Some(KeystoneOp::Version));
        assert_eq!(k("HEAD", "/v3/"), Some(KeystoneOp::Version));
        assert_eq!(k("GET", "/v2.0"), Some(KeystoneOp::VersionV2));
        assert_eq!(k("POST", "/v2.0/tokens"), Some(KeystoneOp::IssueTokenV2));
        assert_eq!(status("GET", "/v2.0/tokens"), 405);
        assert_eq!(status("GET", "/v2.0/tenants"), 404);
        assert!(is_keystone("/v2.0/tenants"));
        assert_eq!(k("POST", "/v3/auth/tokens"), Some(KeystoneOp::IssueToken));
        assert_eq!(k("GET", "/v3/auth/tokens"), Some(KeystoneOp::ValidateToken));
        assert_eq!(
            k("HEAD", "/v3/auth/tokens"),
            Some(KeystoneOp::ValidateToken)
        );
        assert_eq!(
            k("DELETE", "/v3/auth/tokens"),
            Some(KeystoneOp::RevokeToken)
        );
        assert_eq!(k("GET", "/v3/auth/catalog"), Some(KeystoneOp::Catalog));
        assert_eq!(k("GET", "/v3/auth/projects"), Some(KeystoneOp::Projects));
        assert_eq!(k("GET", "/v3/auth/domains"), Some(KeystoneOp::Domains));
        assert_eq!(status("PUT", "/v3/auth/tokens"), 405);
        assert_eq!(status("POST", "/"), 405);
        assert_eq!(status("POST", "/v3/auth/catalog"), 405);
        assert_eq!(status("GET", "/v3/users"), 404);
        assert_eq!(
            k("POST", "/v3/users/7/application_credentials"),
            Some(KeystoneOp::AppCredentials {
                user: "7".into(),
                id: None
            })
        );
        assert_eq!(
            k("DELETE", "/v3/users/7/application_credentials/ab12"),
            Some(KeystoneOp::AppCredentials {
                user: "7".into(),
                id: Some("ab12".into())
            })
        );
        assert_eq!(status("DELETE", "/v3/users/7/application_credentials"), 405);
        assert_eq!(status("POST", "/v3/users/7/application_credentials/x"), 405);
        assert_eq!(status("GET", "/v3/users/7/credentials"), 404);
        assert_eq!(status("GET", "/v3/users//application_credentials"), 404);
        assert!(is_keystone("/") && is_keystone("/v3") && is_keystone("/v3/x"));
        assert!(!is_keystone("/v30") && !is_keystone("/v1/AUTH_x") && !is_keystone("/auth/v1.0"));
    }

    #[test]
    fn v1_auth_is_get_only() {
        for m in ["POST", "PUT", "DELETE", "HEAD"] {
            assert_eq!(status(m, "/auth/v1.0"), 405, "{m}");
            assert_eq!(status(m, "/v1/test/auth"), 405, "{m}");
        }
    }

    #[test]
    fn storage_paths_split_at_the_first_two_slashes() {
        assert_eq!(
            c("GET", "/v1/AUTH_abc/cont/a/b/../c%20d").unwrap(),
            Endpoint::Storage {
                account: "AUTH_abc".into(),
                container: Some("cont".into()),
                object: Some("a/b/../c d".into()),
            }
        );
        assert_eq!(
            c("HEAD", "/v1/AUTH_abc").unwrap(),
            Endpoint::Storage {
                account: "AUTH_abc".into(),
                container: None,
                object: None
            }
        );
        // a container named "auth" is storage, not DevAuth's auth path
        assert!(matches!(
            c("GET", "/v1/AUTH_abc/auth").unwrap(),
            Endpoint::Storage { .. }
        ));
    }

    #[test]
    fn nul_and_bad_utf8_are_refused() {
        assert_eq!(status("GET", "/v1/AUTH_a/c/x%00y"), 412);
        assert_eq!(status("GET", "/v1/AUTH_a/c/%ff"), 412);
        assert_eq!(status("GET", "/auth/v2/a%00"), 400);
        assert_eq!(status("GET", "/info%00"), 400);
    }

    #[test]
    fn traversal_outside_storage_is_refused() {
        assert_eq!(status("GET", "/auth/v2/../../etc/passwd"), 400);
        assert_eq!(status("GET", "/auth/v2/%2e%2e/x"), 400);
        assert_eq!(status("GET", "/auth/./v1.0"), 400);
    }

    #[test]
    fn admin_routes() {
        assert_eq!(
            c("GET", "/auth/v2/").unwrap(),
            Endpoint::Admin(AdminOp::ListAccounts)
        );
        assert_eq!(
            c("GET", "/auth/v2").unwrap(),
            Endpoint::Admin(AdminOp::ListAccounts)
        );
        assert_eq!(
            c("PUT", "/auth/v2/acct").unwrap(),
            Endpoint::Admin(AdminOp::PutAccount("acct".into()))
        );
        assert_eq!(
            c("GET", "/auth/v2/acct/.groups").unwrap(),
            Endpoint::Admin(AdminOp::ListGroups("acct".into()))
        );
        assert_eq!(
            c("DELETE", "/auth/v2/acct/bob").unwrap(),
            Endpoint::Admin(AdminOp::DeleteUser("acct".into(), "bob".into()))
        );
        assert_eq!(status("POST", "/auth/v2/acct"), 405);
        assert_eq!(status("GET", "/auth/v2/a/b/c"), 404);
    }

    #[test]
    fn token_validation_paths_hide_the_token_in_logs() {
        let e = c("GET", "/token/AUTH_tkabc").unwrap();
        assert_eq!(
            e,
            Endpoint::ValidateToken {
                token: "AUTH_tkabc".into()
            }
        );
        assert_eq!(e.log_path("/token/AUTH_tkabc"), "/token/<token>");
        let e = c("GET", "/auth/v2/.token/AUTH_tkabc").unwrap();
        assert_eq!(
            e.log_path("/auth/v2/.token/AUTH_tkabc"),
            "/auth/v2/.token/<token>"
        );
        assert_eq!(status("PUT", "/token/x"), 405);
    }

    #[test]
    fn ops_and_unknown_paths() {
        assert_eq!(c("GET", "/healthcheck").unwrap(), Endpoint::Healthcheck);
        assert_eq!(c("HEAD", "/readyz").unwrap(), Endpoint::Readyz);
        assert_eq!(c("GET", "/metrics").unwrap(), Endpoint::Metrics);
        assert_eq!(status("PUT", "/metrics"), 405);
        assert_eq!(c("HEAD", "/info").unwrap(), Endpoint::Info);
        assert_eq!(status("GET", "/nope"), 404);
        assert_eq!(status("GET", "nope"), 400);
    }
}
