//! Keystone's identity API v3, as Swift clients (python-swiftclient, rclone, restic,
//! openstacksdk) and keystonemiddleware's `authtoken` use it: version discovery, logins
//! (`POST /v3/auth/tokens` with a password or a token), validation by services, and the
//! caller's catalog, projects and domains.
//!
//! The mapping: an account is a project of the domain `Default`, its id the storage id
//! without the reseller prefix (`AUTH_<id>` is the project's Swift account, as Swift's
//! `keystoneauth` names it); a user is a Keystone user of that project, named as in
//! swiftgate (or `account:user` when no project names the account); groups give roles
//! (`[auth.keystone]`). A project-scoped token is a swiftgate token: it works on the same
//! storage URLs as a v1 login's. An unscoped token reaches no storage.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::identity::{Identity, Principal, TokenScope, unix_now};
use super::token::Claims;
use crate::body::{Body, full, status_only};
use crate::config::{KeystoneConfig, TokenValidationConfig};
use crate::error::{Error, Result};
use crate::http_util::{header_str, header_value};
use crate::store::{AppCredentialRecord, Ec2CredentialRecord};

pub mod v2;

/// The identity API version served, as Keystone 30 names it.
const VERSION: &str = "v3.14";
const VERSION_UPDATED: &str = "2020-04-07T00:00:00Z";
/// The one domain: every account is a project of it.
const DOMAIN_ID: &str = "default";
const DOMAIN_NAME: &str = "Default";
/// Login bodies are small; larger ones are refused unread.
pub const MAX_BODY: usize = 64 * 1024;
/// What a refused login is told, whatever was wrong (Keystone's own words).
const UNAUTHORIZED: &str = "The request you have made requires authentication.";

/// The identity API for one request.
pub struct Service<'a> {
    pub identity: &'a Identity,
    pub config: &'a KeystoneConfig,
    pub validators: std::sync::Arc<TokenValidationConfig>,
    /// The gateway's base URL, as this request reached it.
    pub base_url: &'a str,
}

/// The holder of the `X-Auth-Token` of a call to the identity API.
pub struct Caller {
    pub principal: Principal,
    pub claims: Claims,
}

/// A refusal of a login or of a token, in Keystone's words: no hint of what was wrong.
fn unauthorized() -> Error {
    Error::unauthorized("keystone", UNAUTHORIZED)
}

/// The caller of an identity call that needs a token: its `X-Auth-Token`, scoped or not,
/// good over this connection (`certificate`).
pub fn authenticate(
    identity: &Identity,
    headers: &HeaderMap,
    certificate: Option<[u8; 32]>,
) -> Result<Caller> {
    let token = header_str(headers, "x-auth-token")?.ok_or_else(unauthorized)?;
    let (principal, claims) = identity.open_token(token, 0).ok_or_else(unauthorized)?;
    if claims.bound_to.is_some() && claims.bound_to != certificate {
        return Err(unauthorized());
    }
    Ok(Caller { principal, claims })
}

/// `GET /`: the versions served (300, as Keystone).
pub fn versions(base_url: &str) -> Result<Response<Body>> {
    let v3 = format!("{base_url}/v3/");
    let mut resp = answer(
        StatusCode::MULTIPLE_CHOICES,
        &json!({"versions": {"values": [version_entry(base_url), v2::version_entry(base_url)]}}),
    );
    resp.headers_mut()
        .insert(header::LOCATION, header_value(&v3)?);
    Ok(resp)
}

/// `GET /v3`.
pub fn version(base_url: &str) -> Response<Body> {
    answer(StatusCode::OK, &json!({"version": version_entry(base_url)}))
}

fn version_entry(base_url: &str) -> Value {
    json!({
        "id": VERSION,
        "status": "stable",
        "updated": VERSION_UPDATED,
        "links": [{"rel": "self", "href": format!("{base_url}/v3/")}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v3+json",
        }],
    })
}

/// 204, as Keystone sends it.
fn no_content() -> Response<Body> {
    let mut resp = status_only(StatusCode::NO_CONTENT);
    let h = resp.headers_mut();
    h.remove(header::CONTENT_TYPE);
    h.insert(header::VARY, HeaderValue::from_static("X-Auth-Token"));
    resp
}

/// A JSON answer as Keystone sends it.
fn answer(status: StatusCode, body: &Value) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::VARY, HeaderValue::from_static("X-Auth-Token"));
    resp
}

#[derive(Deserialize)]
struct LoginBody {
    auth: AuthBody,
}

#[derive(Deserialize)]
struct AuthBody {
    identity: IdentityBody,
    scope: Option<ScopeBody>,
}

#[derive(Deserialize)]
struct IdentityBody {
    methods: Vec<String>,
    password: Option<PasswordBody>,
    token: Option<TokenBody>,
    application_credential: Option<AppCredentialRef>,
}

#[derive(Deserialize)]
struct AppCredentialRef {
    id: Option<String>,
    name: Option<String>,
    secret: String,
    user: Option<NamedUser>,
}

/// A user named without a password (the owner of an application credential); rclone
/// sends an empty one.
#[derive(Deserialize)]
struct NamedUser {
    id: Option<String>,
    name: Option<String>,
    domain: Option<DomainRef>,
}

/// Who a login found, and what its token gets.
struct Found {
    principal: Principal,
    expires_at: u64,
    bound_to: Option<[u8; 32]>,
    methods: &'static [&'static str],
    scope: TokenScope,
    credential: Option<AppCredentialRecord>,
}

#[derive(Deserialize)]
struct PasswordBody {
    user: UserRef,
}

#[derive(Deserialize)]
struct UserRef {
    id: Option<String>,
    name: Option<String>,
    domain: Option<DomainRef>,
    password: String,
}

#[derive(Deserialize)]
struct TokenBody {
    id: String,
}

#[derive(Deserialize)]
struct DomainRef {
    id: Option<String>,
    name: Option<String>,
}

impl DomainRef {
    /// Whether this names the one domain.
    fn is_default(&self) -> bool {
        match (&self.id, &self.name) {
            (Some(id), _) => id == DOMAIN_ID,
            (None, Some(name)) => name == DOMAIN_NAME,
            (None, None) => false,
        }
    }
}

#[derive(Deserialize)]
struct ScopeBody {
    project: Option<ProjectRef>,
    domain: Option<DomainRef>,
    system: Option<Value>,
}

#[derive(Deserialize)]
struct ProjectRef {
    id: Option<String>,
    name: Option<String>,
    domain: Option<DomainRef>,
}

/// The scope a login asks for.
enum Scope {
    /// An account, by name, once its project was found.
    Account(String),
    /// No scope.
    Unscoped,
    /// A project that does not exist (as named), refused once the credential was
    /// checked, so that the answer does not say which projects exist.
    Unknown(String),
}

impl Service<'_> {
    /// `POST /v3/auth/tokens`: a login by password or by token. The answer, and who
    /// logged in.
    pub async fn issue(
        &self,
        body: &[u8],
        nocatalog: bool,
        source: IpAddr,
        certificate: Option<[u8; 32]>,
        bind_to: Option<[u8; 32]>,
    ) -> Result<(Response<Body>, String)> {
        let login: LoginBody = read_json(body, "the login body is not valid")?;
        let auth = login.auth;
        let methods = &auth.identity.methods;
        let scope = self.scope(auth.scope.as_ref())?;
        let found =
            if methods.iter().any(|m| m == "password") {
                let password = auth.identity.password.as_ref().ok_or_else(|| {
                    Error::bad_request("the login body is not valid: identity.password is missing")
                })?;
                let p = self.by_password(&password.user, &scope, source).await?;
                Found {
                    principal: p,
                    expires_at: unix_now() + self.identity.token_life().as_secs(),
                    bound_to: bind_to,
                    methods: &["password"],
                    scope: TokenScope::Account,
                    credential: None,
                }
            } else if methods.iter().any(|m| m == "token") {
                let token = auth.identity.token.as_ref().ok_or_else(|| {
                    Error::bad_request("the login body is not valid: identity.token is missing")
                })?;
                let (p, claims) = self
                    .identity
                    .open_token(&token.id, 0)
                    .ok_or_else(unauthorized)?;
                if claims.bound_to.is_some() && claims.bound_to != certificate {
                    return Err(unauthorized());
                }
                let credential = claims
                    .app_credential
                    .and_then(|id| self.identity.app_credential(&hex::encode(id)));
                Found {
                    principal: p,
                    // a token made from a token lives no longer than the first
                    expires_at: claims.expires_at,
                    bound_to: claims.bound_to,
                    methods: if claims.ec2 {
                        &["token", "ec2credential"]
                    } else if claims.app_credential.is_some() {
                        &["token", "application_credential"]
                    } else {
                        &["token", "password"]
                    },
                    scope: match claims.app_credential {
                        Some(id) => TokenScope::AppCredential(id),
                        None if claims.ec2 => TokenScope::Ec2,
                        None => TokenScope::Account,
                    },
                    credential,
                }
            } else if methods.iter().any(|m| m == "application_credential") {
                let given = auth.identity.application_credential.as_ref().ok_or_else(|| {
                Error::bad_request(
                    "the login body is not valid: identity.application_credential is missing",
                )
            })?;
                let (p, c) = self.by_app_credential(given, source).await?;
                if matches!(&scope, Scope::Account(a) if *a != p.account)
                    || matches!(scope, Scope::Unknown(_))
                {
                    return Err(unauthorized());
                }
                let life = self.identity.token_life().as_secs();
                let mut raw = [0u8; 16];
                hex::decode_to_slice(&c.id, &mut raw).map_err(|_| unauthorized())?;
                Found {
                    principal: p,
                    expires_at: c
                        .expires_at
                        .map_or(unix_now() + life, |t| t.min(unix_now() + life)),
                    bound_to: bind_to,
                    methods: &["application_credential"],
                    scope: TokenScope::AppCredential(raw),
                    credential: Some(c),
                }
            } else {
                return Err(unauthorized());
            };
        let token_scope = match (&scope, found.scope) {
            // a token of a credential is scoped to its project, asked or not
            (_, TokenScope::AppCredential(id)) => TokenScope::AppCredential(id),
            (_, TokenScope::Ec2) => TokenScope::Ec2,
            (Scope::Account(account), s) if *account == found.principal.account => s,
            (Scope::Unscoped, _) => TokenScope::Unscoped,
            _ => return Err(unauthorized()),
        };
        let life = Duration::from_secs(found.expires_at.saturating_sub(unix_now()));
        if life.is_zero() {
            return Err(unauthorized());
        }
        let (token, claims) =
            self.identity
                .seal_for(found.principal.user_id, life, found.bound_to, token_scope)?;
        let body = self.token_body(
            &found.principal,
            &claims,
            found.methods,
            !nocatalog,
            found.credential.as_ref(),
        );
        let mut resp = answer(StatusCode::CREATED, &body);
        resp.headers_mut()
            .insert("x-subject-token", header_value(&token)?);
        Ok((resp, found.principal.label()))
    }

    /// The user and credential of an application credential login, its secret checked.
    async fn by_app_credential(
        &self,
        given: &AppCredentialRef,
        source: IpAddr,
    ) -> Result<(Principal, AppCredentialRecord)> {
        let id = match (&given.id, &given.name) {
            (Some(id), _) => id.clone(),
            (None, Some(name)) => {
                let user = given.user.as_ref().ok_or_else(|| {
                    Error::bad_request(
                        "the login body is not valid: an application credential named by \
                         name needs its user",
                    )
                })?;
                let owner = match (&user.id, &user.name) {
                    (Some(id), _) => id
                        .parse()
                        .ok()
                        .and_then(|id| self.identity.principal_by_id(id)),
                    (None, Some(n)) if user.domain.as_ref().is_some_and(DomainRef::is_default) => n
                        .split_once(':')
                        .and_then(|(a, u)| self.identity.principal_of(a, u))
                        .or_else(|| match self.identity.accounts_with_user(n).as_slice() {
                            [a] => self.identity.principal_of(a, n),
                            _ => None,
                        }),
                    _ => None,
                };
                owner
                    .and_then(|p| {
                        self.identity
                            .app_credentials_of(p.user_id)
                            .into_iter()
                            .find(|c| c.name == *name)
                    })
                    .map_or_else(|| format!("{name} of {}", user_label(user)), |c| c.id)
            }
            (None, None) => {
                return Err(Error::bad_request(
                    "the login body is not valid: application_credential needs an id or a name",
                ));
            }
        };
        match self
            .identity
            .verify_app_credential(&id, &given.secret, source)
            .await
        {
            Ok(Some(found)) => Ok(found),
            Ok(None) => Err(Error::NotFound(
                "Could not find Application Credential.".into(),
            )),
            Err(Error::Unauthorized { .. }) => Err(unauthorized()),
            Err(e) => Err(e),
        }
    }

    /// The scope a login asks for; 401 for scopes no swiftgate token has (a domain, the
    /// system).
    fn scope(&self, scope: Option<&ScopeBody>) -> Result<Scope> {
        let Some(scope) = scope else {
            return Ok(Scope::Unscoped);
        };
        if scope.domain.is_some() || scope.system.is_some() {
            return Err(unauthorized());
        }
        let Some(project) = &scope.project else {
            return Err(Error::bad_request(
                "the login body is not valid: scope names no project",
            ));
        };
        let (found, named) = match (&project.id, &project.name) {
            (Some(id), _) => (
                self.identity
                    .account_by_storage_id(&format!("{}{id}", self.identity.reseller_prefix))
                    .map(|a| a.name),
                format!("id {id}"),
            ),
            (None, Some(name)) => {
                if !project.domain.as_ref().is_some_and(DomainRef::is_default) {
                    return Ok(Scope::Unknown(format!("{name} in another domain")));
                }
                (self.identity.account(name).map(|a| a.name), name.clone())
            }
            (None, None) => {
                return Err(Error::bad_request(
                    "the login body is not valid: scope.project needs an id or a name",
                ));
            }
        };
        Ok(found.map_or(Scope::Unknown(named), Scope::Account))
    }

    /// The user a password login names, once its password was checked (throttled as v1
    /// logins are; an unknown user costs the same time as a wrong password). What names
    /// no user is counted under what it named: an account name with a `/`, which no
    /// account has, so that no guess shares another's count and the throttle tells
    /// nothing of which projects and users exist.
    async fn by_password(
        &self,
        user: &UserRef,
        scope: &Scope,
        source: IpAddr,
    ) -> Result<Principal> {
        let (account, name) = match (&user.id, &user.name) {
            (Some(id), _) => id
                .parse::<i64>()
                .ok()
                .and_then(|id| self.identity.principal_by_id(id))
                .map_or_else(|| ("/id".into(), id.clone()), |p| (p.account, p.user)),
            (None, Some(name)) => {
                let Some(domain) = &user.domain else {
                    return Err(Error::bad_request(
                        "the login body is not valid: a user named by name needs its domain",
                    ));
                };
                if !domain.is_default() {
                    let other = domain.id.as_ref().or(domain.name.as_ref());
                    (
                        format!("/domain/{}", other.map_or("", String::as_str)),
                        name.clone(),
                    )
                } else if let Some((account, name)) = name.split_once(':') {
                    (account.to_owned(), name.to_owned())
                } else if let Scope::Account(account) = scope {
                    (account.clone(), name.clone())
                } else if let Scope::Unknown(project) = scope {
                    (format!("/project/{project}"), name.clone())
                } else {
                    // unscoped: a name that one account alone has
                    match self.identity.accounts_with_user(name).as_slice() {
                        [account] => (account.clone(), name.clone()),
                        _ => ("/unscoped".into(), name.clone()),
                    }
                }
            }
            (None, None) => {
                return Err(Error::bad_request(
                    "the login body is not valid: password.user needs an id or a name",
                ));
            }
        };
        self.identity.look_for(&account, &name).await;
        let u = self
            .identity
            .verify_key(
                &account,
                &name,
                std::slice::from_ref(&user.password),
                source,
            )
            .await
            .map_err(|e| match e {
                Error::Unauthorized { .. } => unauthorized(),
                e => e,
            })?;
        self.identity.principal_by_id(u.id).ok_or_else(unauthorized)
    }

    /// `GET|HEAD /v3/auth/tokens`: what `X-Subject-Token` stands for, to its holder or
    /// to a service (a user of `[auth.token_validation] groups`).
    pub fn validate(
        &self,
        caller: &Caller,
        headers: &HeaderMap,
        nocatalog: bool,
        allow_expired: bool,
    ) -> Result<Response<Body>> {
        let subject = subject_token(headers)?;
        let grace = if allow_expired && self.is_validator(caller) {
            self.config.allow_expired_window.as_secs()
        } else {
            0
        };
        let (principal, claims) = self.subject(caller, subject, grace)?;
        let credential = claims
            .app_credential
            .and_then(|id| self.identity.app_credential(&hex::encode(id)));
        let methods: &[&str] = if credential.is_some() {
            &["application_credential"]
        } else if claims.ec2 {
            &["ec2credential"]
        } else {
            &["password"]
        };
        let body = self.token_body(
            &principal,
            &claims,
            methods,
            !nocatalog,
            credential.as_ref(),
        );
        let mut resp = answer(StatusCode::OK, &body);
        resp.headers_mut()
            .insert("x-subject-token", header_value(subject)?);
        Ok(resp)
    }

    /// `DELETE /v3/auth/tokens`: ends the subject token, on every gateway of the store.
    pub async fn revoke(&self, caller: &Caller, headers: &HeaderMap) -> Result<Response<Body>> {
        let subject = subject_token(headers)?;
        let (_, claims) = self.subject(caller, subject, 0)?;
        self.identity.revoke_token(&claims).await?;
        Ok(no_content())
    }

    /// A subject token the caller may look at: its own, or any for a service. A token
    /// bound to a client certificate is good only at the gateway, over that
    /// certificate: whoever asks here cannot show it.
    fn subject(&self, caller: &Caller, subject: &str, grace: u64) -> Result<(Principal, Claims)> {
        let own = subject_is_callers(
            caller,
            subject,
            self.identity,
            self.config.allow_expired_window.as_secs(),
        );
        if !own && !self.is_validator(caller) {
            return Err(Error::forbidden(
                "token-validation",
                format!(
                    "{} may not validate other users' tokens",
                    caller.principal.label()
                ),
            ));
        }
        let found = self
            .identity
            .open_token(subject, grace)
            .filter(|(_, c)| c.bound_to.is_none() || own);
        found.ok_or_else(|| Error::NotFound("The token is invalid or has expired".into()))
    }

    fn is_validator(&self, caller: &Caller) -> bool {
        !caller.claims.unscoped
            && caller
                .principal
                .groups
                .iter()
                .any(|g| self.validators.groups.contains(g))
    }

    /// `GET /v3/auth/catalog`: the caller's catalog (a scoped token's).
    pub fn catalog(&self, caller: &Caller) -> Result<Response<Body>> {
        if caller.claims.unscoped {
            return Err(Error::forbidden(
                "keystone-scope",
                "an unscoped token has no catalog; log in with a project scope",
            ));
        }
        let body = json!({
            "catalog": self.catalog_entries(&caller.principal),
            "links": {"self": format!("{}/v3/auth/catalog", self.base_url)},
        });
        Ok(answer(StatusCode::OK, &body))
    }

    /// `GET /v3/auth/projects`: the project the caller may scope to, its account's.
    pub fn projects(&self, caller: &Caller) -> Response<Body> {
        let p = &caller.principal;
        let id = self.project_id(&p.storage_id);
        let body = json!({
            "projects": [{
                "id": id,
                "name": p.account,
                "domain_id": DOMAIN_ID,
                "description": "",
                "enabled": true,
                "is_domain": false,
                "parent_id": DOMAIN_ID,
                "tags": [],
                "options": {},
                "links": {"self": format!("{}/v3/projects/{id}", self.base_url)},
            }],
            "links": self.links("auth/projects"),
        });
        answer(StatusCode::OK, &body)
    }

    /// `GET /v3/auth/domains`: the one domain. Every user's project is in it; no user
    /// holds a role on the domain itself, so the list is empty, as Keystone's.
    pub fn domains(&self) -> Response<Body> {
        answer(
            StatusCode::OK,
            &json!({"domains": [], "links": self.links("auth/domains")}),
        )
    }

    fn links(&self, path: &str) -> Value {
        json!({"self": format!("{}/v3/{path}", self.base_url), "previous": null, "next": null})
    }

    fn project_id<'s>(&self, storage_id: &'s str) -> &'s str {
        storage_id
            .strip_prefix(self.identity.reseller_prefix.as_str())
            .unwrap_or(storage_id)
    }

    /// The roles of a token's holder on their project: those of its application
    /// credential, or of its groups.
    fn roles(&self, p: &Principal, credential: Option<&AppCredentialRecord>) -> Vec<Value> {
        let names: Vec<String> = match credential {
            Some(c) => c.roles.clone(),
            None => self.identity.roles_of(&p.groups).into_iter().collect(),
        };
        names.iter().map(|n| role_entry(n)).collect()
    }

    /// A token's body, as Keystone answers a login or a validation.
    fn token_body(
        &self,
        p: &Principal,
        claims: &Claims,
        methods: &[&str],
        with_catalog: bool,
        credential: Option<&AppCredentialRecord>,
    ) -> Value {
        let domain = json!({"id": DOMAIN_ID, "name": DOMAIN_NAME});
        let issued_secs = claims.issued_at / 1_000_000;
        let mut token = serde_json::Map::new();
        token.insert("methods".into(), json!(methods));
        token.insert(
            "user".into(),
            json!({
                "domain": domain,
                "id": p.user_id.to_string(),
                "name": p.user,
                "password_expires_at": null,
            }),
        );
        token.insert("audit_ids".into(), json!([claims.audit_id()]));
        token.insert("expires_at".into(), json!(timestamp(claims.expires_at)));
        token.insert("issued_at".into(), json!(timestamp(issued_secs)));
        if !claims.unscoped {
            token.insert(
                "project".into(),
                json!({
                    "domain": domain,
                    "id": self.project_id(&p.storage_id),
                    "name": p.account,
                }),
            );
            token.insert("is_domain".into(), json!(false));
            token.insert("roles".into(), json!(self.roles(p, credential)));
            if let Some(c) = credential {
                token.insert(
                    "application_credential".into(),
                    json!({"id": c.id, "name": c.name, "restricted": true}),
                );
            }
            if with_catalog {
                token.insert("catalog".into(), self.catalog_entries(p));
            }
        }
        json!({ "token": token })
    }

    /// The catalog of a project-scoped token: the object store at the URL a v1 login of
    /// the same user gets, and this identity service.
    fn catalog_entries(&self, p: &Principal) -> Value {
        let region = &self.config.region;
        let endpoint = |service: &str, interface: &str, url: String| {
            json!({
                "id": stable_id(service, interface),
                "interface": interface,
                "region_id": region,
                "region": region,
                "url": url,
            })
        };
        let storage = format!("{}/v1/{}", self.base_url, p.storage_id);
        let identity = format!("{}/v3/", self.base_url);
        json!([
            {
                "endpoints": [
                    endpoint("identity", "public", identity.clone()),
                    endpoint("identity", "internal", identity.clone()),
                    endpoint("identity", "admin", identity),
                ],
                "id": stable_id("service", "identity"),
                "type": "identity",
                "name": "keystone",
            },
            {
                "endpoints": [
                    endpoint("object-store", "public", storage.clone()),
                    endpoint("object-store", "internal", storage),
                    endpoint("object-store", "admin", format!("{}/v1", self.base_url)),
                ],
                "id": stable_id("service", "object-store"),
                "type": "object-store",
                "name": "swift",
            },
        ])
    }
}

/// How a login named a credential's user, to count failures under.
fn user_label(user: &NamedUser) -> String {
    match (&user.id, &user.name) {
        (Some(id), _) => format!("user {id}"),
        (None, Some(name)) => format!("user {name}"),
        (None, None) => "no user".into(),
    }
}

/// A role as Keystone lists it.
fn role_entry(name: &str) -> Value {
    json!({"id": stable_id("role", name), "name": name})
}

#[derive(Deserialize)]
struct NewAppCredentialBody {
    application_credential: NewAppCredential,
}

#[derive(Deserialize)]
struct NewAppCredential {
    name: String,
    secret: Option<String>,
    #[serde(default)]
    description: Option<String>,
    expires_at: Option<String>,
    roles: Option<Vec<RoleRef>>,
    #[serde(default)]
    unrestricted: bool,
    access_rules: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct RoleRef {
    id: Option<String>,
    name: Option<String>,
}

/// What a call on `/v3/users/{user}/application_credentials[/{id}]` does.
pub enum AppCredentialCall<'b> {
    List { name: Option<&'b str> },
    Create { body: &'b [u8] },
    Show { id: &'b str },
    Delete { id: &'b str },
}

impl Service<'_> {
    /// Application credentials of the caller (`user_id` must be theirs): listed, made
    /// (the secret shown this once), shown, deleted. A token made from an application
    /// credential manages none.
    pub async fn app_credentials(
        &self,
        caller: &Caller,
        user_id: &str,
        call: AppCredentialCall<'_>,
    ) -> Result<Response<Body>> {
        if caller.claims.unscoped {
            return Err(Error::forbidden(
                "keystone-scope",
                "application credentials are managed with a project-scoped token",
            ));
        }
        if caller.claims.app_credential.is_some() || caller.claims.ec2 {
            return Err(Error::forbidden(
                "delegated-token",
                "a token made from an application or EC2 credential cannot manage \
                 application credentials",
            ));
        }
        let p = &caller.principal;
        if user_id != p.user_id.to_string() {
            return Err(Error::forbidden(
                "app-credential-owner",
                format!(
                    "{} may manage only its own application credentials",
                    p.label()
                ),
            ));
        }
        let base = format!(
            "{}/v3/users/{user_id}/application_credentials",
            self.base_url
        );
        match call {
            AppCredentialCall::List { name } => {
                let list: Vec<Value> = self
                    .identity
                    .app_credentials_of(p.user_id)
                    .iter()
                    .filter(|c| name.is_none_or(|n| c.name == n))
                    .map(|c| self.app_credential_entry(p, c, &base))
                    .collect();
                Ok(answer(
                    StatusCode::OK,
                    &json!({
                        "application_credentials": list,
                        "links": {"self": base, "previous": null, "next": null},
                    }),
                ))
            }
            AppCredentialCall::Show { id } => {
                let c = self.own_credential(p, id)?;
                Ok(answer(
                    StatusCode::OK,
                    &json!({"application_credential": self.app_credential_entry(p, &c, &base)}),
                ))
            }
            AppCredentialCall::Delete { id } => {
                self.own_credential(p, id)?;
                self.identity.delete_app_credential(p.user_id, id).await?;
                Ok(no_content())
            }
            AppCredentialCall::Create { body } => {
                let asked: NewAppCredentialBody =
                    read_json(body, "the application credential is not valid")?;
                let c = asked.application_credential;
                if c.unrestricted || c.access_rules.as_ref().is_some_and(|r| !r.is_empty()) {
                    return Err(Error::bad_request(
                        "unrestricted application credentials and access rules are not served",
                    ));
                }
                let expires_at = match c.expires_at.as_deref() {
                    None => None,
                    Some(t) => Some(parse_time(t).ok_or_else(|| {
                        Error::bad_request(format!(
                            "expires_at {t:?} is not a time such as 2026-12-31T00:00:00Z"
                        ))
                    })?),
                };
                let roles = match &c.roles {
                    None => None,
                    Some(refs) => Some(self.role_names(p, refs)?),
                };
                let secret = c.secret.unwrap_or_else(super::keys::generate_key);
                let made = self
                    .identity
                    .create_app_credential(
                        p.user_id,
                        &c.name,
                        c.description.as_deref().unwrap_or_default(),
                        &secret,
                        roles,
                        expires_at,
                    )
                    .await?;
                let mut entry = self.app_credential_entry(p, &made, &base);
                entry["secret"] = json!(secret);
                Ok(answer(
                    StatusCode::CREATED,
                    &json!({ "application_credential": entry }),
                ))
            }
        }
    }

    fn own_credential(&self, p: &Principal, id: &str) -> Result<AppCredentialRecord> {
        self.identity
            .app_credential(id)
            .filter(|c| c.user_id == p.user_id)
            .ok_or_else(|| Error::NotFound(format!("Could not find Application Credential: {id}.")))
    }

    /// The names of roles named by id or name: each must be one of the caller's.
    fn role_names(&self, p: &Principal, refs: &[RoleRef]) -> Result<Vec<String>> {
        let own = self.identity.roles_of(&p.groups);
        refs.iter()
            .map(|r| {
                let found = own.iter().find(|name| {
                    r.name.as_deref() == Some(name.as_str())
                        || r.id.as_deref() == Some(stable_id("role", name).as_str())
                });
                found.cloned().ok_or_else(|| {
                    Error::forbidden(
                        "app-credential-roles",
                        format!(
                            "{} has no role {} to give",
                            p.label(),
                            r.name.as_deref().or(r.id.as_deref()).unwrap_or("(unnamed)")
                        ),
                    )
                })
            })
            .collect()
    }

    fn app_credential_entry(&self, p: &Principal, c: &AppCredentialRecord, base: &str) -> Value {
        json!({
            "id": c.id,
            "name": c.name,
            "description": (!c.description.is_empty()).then_some(&c.description),
            "expires_at": c.expires_at.map(timestamp),
            "project_id": self.project_id(&p.storage_id),
            "roles": c.roles.iter().map(|r| {
                let mut e = role_entry(r);
                e["domain_id"] = Value::Null;
                e["description"] = Value::Null;
                // Keystone's own roles, which its bootstrap makes, cannot be changed
                e["options"] = if ["admin", "member", "reader"].contains(&r.as_str()) {
                    json!({"immutable": true})
                } else {
                    json!({})
                };
                e
            }).collect::<Vec<_>>(),
            "system": null,
            // as Keystone 30 lists it: never unrestricted here
            "unrestricted": null,
            "user_id": p.user_id.to_string(),
            "links": {"self": format!("{base}/{}", c.id)},
        })
    }
}

/// What a call on `/v3/users/{user}/credentials/OS-EC2[/{access}]` does.
pub enum Ec2CredentialCall<'b> {
    List,
    Create { body: &'b [u8] },
    Show { access: &'b str },
    Delete { access: &'b str },
}

#[derive(Deserialize)]
struct NewEc2Credential {
    tenant_id: Option<String>,
}

/// The body of `POST /v3/s3tokens` (as Swift's `s3token` sends it) and of
/// `/v3/ec2tokens`: the credentials under `credentials` (Keystone also reads them under
/// `credential` and `ec2Credentials`).
#[derive(Deserialize)]
struct SignedBody<T> {
    credentials: Option<T>,
    credential: Option<T>,
    #[serde(rename = "ec2Credentials")]
    ec2_credentials: Option<T>,
}

impl<T> SignedBody<T> {
    /// The credentials, wherever the body put them.
    fn into_credentials(self) -> Option<T> {
        self.credentials
            .or(self.credential)
            .or(self.ec2_credentials)
    }
}

#[derive(Deserialize)]
struct S3Credentials {
    access: Option<String>,
    /// The string to sign, in URL-safe base64.
    token: Option<String>,
    signature: Option<String>,
}

impl Service<'_> {
    /// EC2 credentials of the caller (`user_id` must be theirs): listed, made, shown,
    /// deleted, each with its secret, as Keystone shows them. With
    /// `ec2_secrets_for_services`, a service (a user of `[auth.token_validation] groups`)
    /// may show any user's one credential by its access key: Swift's `s3token` reads the
    /// secret to check later signatures itself. A token
    /// made from an application credential reaches none.
    pub async fn ec2_credentials(
        &self,
        caller: &Caller,
        user_id: &str,
        call: Ec2CredentialCall<'_>,
    ) -> Result<Response<Body>> {
        if caller.claims.unscoped {
            return Err(Error::forbidden(
                "keystone-scope",
                "EC2 credentials are managed with a project-scoped token",
            ));
        }
        if caller.claims.app_credential.is_some() || caller.claims.ec2 {
            return Err(Error::forbidden(
                "delegated-token",
                "a token made from an application or EC2 credential cannot reach EC2 \
                 credentials",
            ));
        }
        let p = &caller.principal;
        let own = user_id == p.user_id.to_string();
        let service_reads = matches!(call, Ec2CredentialCall::Show { .. })
            && self.config.ec2_secrets_for_services
            && self.is_validator(caller);
        if !own && !service_reads {
            return Err(Error::forbidden(
                "ec2-credential-owner",
                format!("{} may manage only its own EC2 credentials", p.label()),
            ));
        }
        let base = format!("{}/v3/users/{user_id}/credentials/OS-EC2", self.base_url);
        match call {
            Ec2CredentialCall::List => {
                let list = self
                    .identity
                    .ec2_credentials_of(p.user_id)
                    .iter()
                    .map(|c| self.ec2_entry(p, c, &base))
                    .collect::<Result<Vec<_>>>()?;
                Ok(answer(
                    StatusCode::OK,
                    &json!({
                        "credentials": list,
                        "links": {"self": base, "previous": null, "next": null},
                    }),
                ))
            }
            Ec2CredentialCall::Show { access } => {
                let c = self
                    .identity
                    .ec2_credential(access)
                    .filter(|c| c.user_id.to_string() == user_id)
                    .ok_or_else(|| ec2_not_found(access))?;
                let owner = self
                    .identity
                    .principal_by_id(c.user_id)
                    .ok_or_else(|| ec2_not_found(access))?;
                Ok(answer(
                    StatusCode::OK,
                    &json!({"credential": self.ec2_entry(&owner, &c, &base)?}),
                ))
            }
            Ec2CredentialCall::Delete { access } => {
                if !self
                    .identity
                    .delete_ec2_credential(p.user_id, access)
                    .await?
                {
                    return Err(ec2_not_found(access));
                }
                Ok(no_content())
            }
            Ec2CredentialCall::Create { body } => {
                let asked: NewEc2Credential = read_json(body, "the EC2 credential is not valid")?;
                let project = self.project_id(&p.storage_id);
                match asked.tenant_id.as_deref() {
                    None => {
                        return Err(Error::bad_request(
                            "an EC2 credential names its project: {\"tenant_id\": \"<project id>\"}",
                        ));
                    }
                    Some(t) if t != project => {
                        return Err(Error::forbidden(
                            "ec2-credential-project",
                            format!(
                                "{} may make EC2 credentials for its own project ({project}) only",
                                p.label()
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                let (made, secret) = self.identity.create_ec2_credential(p.user_id).await?;
                let mut entry = self.ec2_entry(p, &made, &base)?;
                entry["secret"] = json!(secret);
                Ok(answer(StatusCode::CREATED, &json!({ "credential": entry })))
            }
        }
    }

    fn ec2_entry(&self, owner: &Principal, c: &Ec2CredentialRecord, base: &str) -> Result<Value> {
        Ok(json!({
            "user_id": owner.user_id.to_string(),
            "tenant_id": self.project_id(&owner.storage_id),
            "access": c.access,
            "secret": self.identity.ec2_secret(c)?,
            "trust_id": null,
            "links": {"self": format!("{base}/{}", c.access)},
        }))
    }

    /// The credentials of a body of `s3tokens` or `ec2tokens` (`rule`), which services
    /// alone may call, to check `kind` (S3 or EC2) signatures.
    fn signed_body<T: serde::de::DeserializeOwned>(
        &self,
        caller: &Caller,
        body: &[u8],
        rule: &'static str,
        kind: &str,
    ) -> Result<Option<T>> {
        if !self.is_validator(caller) {
            return Err(Error::forbidden(
                rule,
                format!(
                    "{} may not check {kind} signatures; services (token_validation groups) do",
                    caller.principal.label()
                ),
            ));
        }
        if body.is_empty() {
            return Err(Error::bad_request("request must include a request body"));
        }
        let asked: SignedBody<T> =
            read_json(body, &format!("the {kind} credentials are not valid"))?;
        Ok(asked.into_credentials())
    }

    /// `POST /v3/s3tokens`: for a service, the user whose EC2 credential signed an S3
    /// request, as a token's body (no token is handed out): Swift's `s3token` reads the
    /// user, the project and the roles from it.
    pub async fn s3_token(&self, caller: &Caller, body: &[u8]) -> Result<Response<Body>> {
        let creds: Option<S3Credentials> = self.signed_body(caller, body, "s3tokens", "S3")?;
        let Some(S3Credentials {
            access: Some(access),
            token,
            signature,
        }) = creds
        else {
            return Err(Error::unauthorized(
                "keystone",
                "EC2 signature not supplied",
            ));
        };
        let string_to_sign = base64::engine::general_purpose::URL_SAFE
            .decode(token.as_deref().unwrap_or_default())
            .map_err(|_| Error::bad_request("the string to sign (token) is not URL-safe base64"))?;
        let signature = signature.unwrap_or_default();
        let principal = self
            .identity
            .verify_ec2_credential(&access, |secret| {
                super::s3::verify(secret, &string_to_sign, &signature)
            })
            .await?
            .ok_or_else(|| ec2_not_found(&access))?;
        let (_, resp) = self.ec2_token(&principal)?;
        Ok(resp)
    }

    /// `POST /v3/ec2tokens`: for a service (an EC2 API), a token of the user whose EC2
    /// credential signed an EC2 request, checked as Keystone checks it. The token reaches
    /// the user's storage and none of their credentials.
    pub async fn ec2_token_for(&self, caller: &Caller, body: &[u8]) -> Result<Response<Body>> {
        let creds: Option<Ec2Credentials> = self.signed_body(caller, body, "ec2tokens", "EC2")?;
        let Some((creds, access, signature)) = creds.and_then(|c| {
            let access = c.access.clone()?;
            let signature = c.signature.clone()?;
            Some((c, access, signature))
        }) else {
            return Err(Error::unauthorized(
                "keystone",
                "EC2 signature not supplied",
            ));
        };
        let request = creds.request();
        let principal = self
            .identity
            .verify_ec2_credential(&access, |secret| {
                super::s3::verify_ec2(secret, &request, &signature)
            })
            .await?
            .ok_or_else(|| ec2_not_found(&access))?;
        if let Err(why) = fresh(&super::s3::ec2_signed_times(&request), unix_now()) {
            return Err(Error::unauthorized(&principal.account, why));
        }
        let (token, mut resp) = self.ec2_token(&principal)?;
        resp.headers_mut()
            .insert("x-subject-token", header_value(&token)?);
        Ok(resp)
    }

    /// A token of `principal` made from an EC2 credential, and its body as Keystone
    /// answers `s3tokens` and `ec2tokens`.
    fn ec2_token(&self, principal: &Principal) -> Result<(String, Response<Body>)> {
        if self.identity.roles_of(&principal.groups).is_empty() {
            return Err(Error::unauthorized(
                &principal.account,
                "user has no role on its project",
            ));
        }
        let (token, claims) = self.identity.seal_for(
            principal.user_id,
            self.identity.token_life(),
            None,
            TokenScope::Ec2,
        )?;
        let body = self.token_body(principal, &claims, &["ec2credential"], true, None);
        Ok((token, answer(StatusCode::OK, &body)))
    }
}

/// How long after it was signed an EC2 request gets a token (Keystone's
/// `[credential] auth_ttl`, 15 minutes).
const EC2_SIGNATURE_LIFE: u64 = 15 * 60;

/// Whether a signed EC2 request is still good at `now`: signed within
/// `EC2_SIGNATURE_LIFE` of it (before or after, for clocks apart) and not past the expiry
/// it names; a request that says neither when it was signed nor when it expires is not.
fn fresh(times: &super::s3::SignedTimes<'_>, now: u64) -> std::result::Result<(), &'static str> {
    let unreadable = "the EC2 request's time is unreadable";
    let signed_at = match times.signed_at {
        Some(t) if times.v4 => Some(parse_amz_date(t).ok_or(unreadable)?),
        Some(t) => Some(parse_time(t).ok_or(unreadable)?),
        None => None,
    };
    let expires = match (times.expires, signed_at) {
        (Some(e), Some(at)) if times.v4 => {
            Some(at.saturating_add(e.parse::<u64>().map_err(|_| unreadable)?))
        }
        (Some(e), _) if !times.v4 => Some(parse_time(e).ok_or(unreadable)?),
        _ => None,
    };
    if signed_at.is_none() && expires.is_none() {
        return Err("the EC2 request says neither when it was signed nor when it expires");
    }
    if let Some(at) = signed_at {
        if now > at.saturating_add(EC2_SIGNATURE_LIFE) {
            return Err("the EC2 request was signed too long ago");
        }
        if at > now.saturating_add(EC2_SIGNATURE_LIFE) {
            return Err("the EC2 request is signed for a time to come");
        }
    }
    if expires.is_some_and(|e| now > e) {
        return Err("the EC2 request has expired");
    }
    Ok(())
}

/// Reads `body` as the identity API reads each request body (a v3 and a v2.0 login, a
/// new application or EC2 credential, the S3 and EC2 requests a service sends) and what
/// follows from it without the store: times, EC2 requests, their signatures and signing
/// times. What the fuzz targets run on any bytes (`crate::fuzz`).
pub(crate) fn read_bodies(body: &[u8]) {
    if let Ok(login) = read_json::<LoginBody>(body, "the login body is not valid") {
        let _ = login.auth.identity.methods.iter().any(|m| m == "password");
    }
    v2::read_body(body);
    if let Ok(asked) =
        read_json::<NewAppCredentialBody>(body, "the application credential is not valid")
        && let Some(t) = asked.application_credential.expires_at.as_deref()
    {
        let _ = parse_time(t);
    }
    let _ = read_json::<NewEc2Credential>(body, "the EC2 credential is not valid");
    if let Ok(asked) =
        read_json::<SignedBody<S3Credentials>>(body, "the S3 credentials are not valid")
        && let Some(S3Credentials {
            token: Some(token),
            signature: Some(signature),
            ..
        }) = asked.into_credentials()
        && let Ok(string_to_sign) = base64::engine::general_purpose::URL_SAFE.decode(token)
    {
        let _ = super::s3::verify("secret", &string_to_sign, &signature);
    }
    if let Ok(asked) =
        read_json::<SignedBody<Ec2Credentials>>(body, "the EC2 credentials are not valid")
        && let Some(c) = asked.into_credentials()
    {
        let request = c.request();
        let _ = super::s3::verify_ec2("secret", &request, c.signature.as_deref().unwrap_or(""));
        let _ = fresh(&super::s3::ec2_signed_times(&request), unix_now());
    }
}

/// A request body read as JSON of `T`: 400 with `refusal` and why.
fn read_json<T: serde::de::DeserializeOwned>(body: &[u8], refusal: &str) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::bad_request(format!("{refusal}: {e}")))
}

/// `20261203T080000Z`, as `X-Amz-Date` writes a time, in Unix seconds.
fn parse_amz_date(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !text.is_ascii() {
        return None;
    }
    parse_time(&format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15]
    ))
}

#[derive(Deserialize)]
struct Ec2Credentials {
    access: Option<String>,
    signature: Option<String>,
    #[serde(default)]
    host: String,
    #[serde(default)]
    verb: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    params: BTreeMap<String, Scalar>,
    #[serde(default)]
    headers: BTreeMap<String, Scalar>,
    #[serde(default)]
    body_hash: String,
}

/// A parameter or header value: text, or a number or boolean written as Python writes it.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(serde_json::Number),
    Flag(bool),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Text(s) => s.clone(),
            Scalar::Number(n) => n.to_string(),
            Scalar::Flag(true) => "True".into(),
            Scalar::Flag(false) => "False".into(),
        }
    }
}

impl Ec2Credentials {
    fn request(&self) -> super::s3::Ec2Request {
        let texts =
            |m: &BTreeMap<String, Scalar>| m.iter().map(|(k, v)| (k.clone(), v.text())).collect();
        super::s3::Ec2Request {
            verb: self.verb.clone(),
            host: self.host.clone(),
            path: self.path.clone(),
            params: texts(&self.params),
            headers: texts(&self.headers),
            body_hash: self.body_hash.clone(),
        }
    }
}

fn ec2_not_found(access: &str) -> Error {
    Error::NotFound(format!("Could not find EC2 access key: {access}."))
}

/// A time as clients write it (`2026-12-31T00:00:00`, with a fraction or `Z` or not),
/// in Unix seconds.
pub fn parse_time(text: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

/// The `X-Subject-Token` of a validation or revocation (404 without one, as Keystone).
fn subject_token(headers: &HeaderMap) -> Result<&str> {
    header_str(headers, "x-subject-token")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::NotFound("No token in the request".into()))
}

/// Whether `subject` is the caller's own token (Keystone's `token_subject` rule).
fn subject_is_callers(caller: &Caller, subject: &str, identity: &Identity, grace: u64) -> bool {
    identity
        .open_token(subject, grace)
        .is_some_and(|(p, _)| p.user_id == caller.principal.user_id)
}

/// An id that names the same thing on every gateway: 32 hex digits, as Keystone's.
fn stable_id(kind: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("swiftgate {kind} {name}"));
    hex::encode(&digest[..16])
}

/// Unix seconds as Keystone writes times: `2026-11-22T09:54:37.000000Z`.
fn timestamp(secs: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_json_is_refused_saying_which() {
        let e = read_json::<LoginBody>(b"{", "the login body is not valid").err();
        let text = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("the login body is not valid: "), "{text}");
        let signed = read_json::<SignedBody<S3Credentials>>(
            br#"{"credential": {"access": "a"}}"#,
            "the S3 credentials are not valid",
        );
        let access = signed
            .ok()
            .and_then(SignedBody::into_credentials)
            .and_then(|c| c.access);
        assert_eq!(access.as_deref(), Some("a"));
    }

    #[test]
    fn an_ec2_request_is_good_within_its_signed_times_only() {
        use crate::auth::s3::SignedTimes;
        // 2026-12-03T08:00:00Z
        let now = 1_796_284_800;
        let v4 = |at: &'static str, expires: Option<&'static str>| SignedTimes {
            signed_at: Some(at),
            expires,
            v4: true,
        };
        let v2 = |at: Option<&'static str>, expires: Option<&'static str>| SignedTimes {
            signed_at: at,
            expires,
            v4: false,
        };
        for good in [
            v4("20261203T080000Z", None),
            v4("20261203T074600Z", None),
            v4("20261203T081400Z", None),
            v4("20261203T075900Z", Some("300")),
            v2(Some("2026-12-03T07:50:00Z"), None),
            v2(Some("2026-12-03T07:50:00.123456"), None),
            v2(None, Some("2026-12-03T09:00:00Z")),
        ] {
            assert_eq!(fresh(&good, now), Ok(()), "{good:?}");
        }
        for bad in [
            v4("20261203T074400Z", None),
            v4("20261203T081600Z", None),
            v4("20261203T075000Z", Some("1")),
            v4("20261203T080000Z", Some("soon")),
            v4("2026-12-03T08:00:00Z", None),
            v2(Some("2026-12-03T07:40:00Z"), None),
            v2(Some("2027-12-03T08:00:00Z"), None),
            v2(None, Some("2026-12-03T07:00:00Z")),
            v2(Some("2026-12-03T08:00:00Z"), Some("2026-12-03T07:00:00Z")),
            v2(None, None),
            v2(Some("yesterday"), None),
        ] {
            assert!(fresh(&bad, now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn times_are_written_as_keystone_writes_them() {
        assert_eq!(timestamp(1_795_000_000), "2026-11-18T11:06:40.000000Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn stable_ids_are_32_hex_digits_and_differ_by_what_they_name() {
        let a = stable_id("role", "admin");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, stable_id("role", "admin"));
        assert_ne!(a, stable_id("role", "member"));
    }

    #[test]
    fn only_the_default_domain_is_known() {
        let d = |id: Option<&str>, name: Option<&str>| DomainRef {
            id: id.map(Into::into),
            name: name.map(Into::into),
        };
        assert!(d(Some("default"), None).is_default());
        assert!(d(None, Some("Default")).is_default());
        assert!(d(Some("default"), Some("Other")).is_default());
        assert!(!d(Some("Default"), None).is_default());
        assert!(!d(None, Some("default")).is_default());
        assert!(!d(None, None).is_default());
    }
}
