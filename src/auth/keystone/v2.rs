//! Keystone's identity API v2.0, for the clients that still send it (python-swiftclient
//! `--auth-version 2`, rclone `auth_version = 2`, configurations of the OVH era):
//! `POST /v2.0/tokens` with a password (or an API key, as Rackspace's extension names
//! it) and a tenant, answered in v2.0's shape. The token is the one a v3 login with the
//! same user and project gets: it works on the same storage URLs.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use http::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{DomainRef, Scope, Service, UserRef, answer, stable_id, unauthorized};
use crate::auth::identity::{Principal, TokenScope};
use crate::auth::token::Claims;
use crate::body::Body;
use crate::error::{Error, Result};

const VERSION: &str = "v2.0";
const VERSION_UPDATED: &str = "2014-04-17T00:00:00Z";

/// Reads `body` as a v2.0 login reads it (see [`super::read_bodies`]).
pub(super) fn read_body(body: &[u8]) {
    if let Ok(login) = super::read_json::<LoginBody>(body, "the login body is not valid") {
        let _ = (
            login.auth.password_credentials,
            login.auth.api_key_credentials,
        );
    }
}

#[derive(Deserialize)]
struct LoginBody {
    auth: AuthBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthBody {
    password_credentials: Option<Password>,
    #[serde(rename = "RAX-KSKEY:apiKeyCredentials")]
    api_key_credentials: Option<ApiKey>,
    tenant_name: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
struct Password {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct ApiKey {
    username: String,
    #[serde(rename = "apiKey")]
    api_key: String,
}

/// The version entry of v2.0, in `GET /` and at `GET /v2.0`.
pub(super) fn version_entry(base_url: &str) -> Value {
    json!({
        "id": VERSION,
        "status": "deprecated",
        "updated": VERSION_UPDATED,
        "links": [{"rel": "self", "href": format!("{base_url}/v2.0/")}],
        "media-types": [{
            "base": "application/json",
            "type": "application/vnd.openstack.identity-v2.0+json",
        }],
    })
}

/// `GET /v2.0`.
pub fn version(base_url: &str) -> Response<Body> {
    answer(StatusCode::OK, &json!({"version": version_entry(base_url)}))
}

/// Keystone v2.0's times: `2026-11-22T09:54:37Z`.
fn timestamp(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

impl Service<'_> {
    /// `POST /v2.0/tokens`: a login by password or API key, scoped to the tenant it
    /// names (or to none: an unscoped token, with no catalog). Refused as v3 logins
    /// are: the same 401 whatever was wrong, throttled as the user's.
    pub async fn issue_v2(
        &self,
        body: &[u8],
        source: IpAddr,
        bind_to: Option<[u8; 32]>,
    ) -> Result<(Response<Body>, String)> {
        let login: LoginBody = super::read_json(body, "the login body is not valid")?;
        let auth = login.auth;
        let (username, password) = match (auth.password_credentials, auth.api_key_credentials) {
            (Some(p), _) => (p.username, p.password),
            (None, Some(k)) => (k.username, k.api_key),
            (None, None) => {
                return Err(Error::bad_request(
                    "the login body is not valid: auth needs passwordCredentials (or \
                     RAX-KSKEY:apiKeyCredentials)",
                ));
            }
        };
        let scope = match (&auth.tenant_id, &auth.tenant_name) {
            (Some(id), _) => self
                .identity
                .account_by_storage_id(&format!("{}{id}", self.identity.reseller_prefix))
                .map_or_else(
                    || Scope::Unknown(format!("id {id}")),
                    |a| Scope::Account(a.name),
                ),
            (None, Some(name)) => self
                .identity
                .account(name)
                .map_or_else(|| Scope::Unknown(name.clone()), |a| Scope::Account(a.name)),
            (None, None) => Scope::Unscoped,
        };
        let user = UserRef {
            id: None,
            name: Some(username),
            domain: Some(DomainRef {
                id: Some(super::DOMAIN_ID.into()),
                name: None,
            }),
            password,
        };
        let p = self.by_password(&user, &scope, source).await?;
        let token_scope = match &scope {
            Scope::Account(account) if *account == p.account => TokenScope::Account,
            Scope::Unscoped => TokenScope::Unscoped,
            _ => return Err(unauthorized()),
        };
        let (token, claims) =
            self.identity
                .seal_for(p.user_id, self.identity.token_life(), bind_to, token_scope)?;
        let body = self.access_body(&p, &claims, &token);
        let resp = answer(StatusCode::OK, &body);
        Ok((resp, p.label()))
    }

    /// A v2.0 login's answer: the token (in the body, as v2.0 gives it), its tenant,
    /// the catalog and the user with their roles.
    fn access_body(&self, p: &Principal, claims: &Claims, token: &str) -> Value {
        let mut t = json!({
            "id": token,
            "expires": timestamp(claims.expires_at),
            "issued_at": timestamp(claims.issued_at / 1_000_000),
            "audit_ids": [claims.audit_id()],
        });
        let roles = self.roles(p, None);
        let catalog = if claims.unscoped {
            json!([])
        } else {
            t["tenant"] = json!({
                "id": self.project_id(&p.storage_id),
                "name": p.account,
                "description": null,
                "enabled": true,
            });
            self.v2_catalog(p)
        };
        let names: Vec<Value> = roles.iter().map(|r| json!({"name": r["name"]})).collect();
        let ids: Vec<Value> = roles.iter().map(|r| r["id"].clone()).collect();
        json!({"access": {
            "token": t,
            "serviceCatalog": catalog,
            "user": {
                "id": p.user_id.to_string(),
                "name": p.user,
                "username": p.user,
                "roles": if claims.unscoped { json!([]) } else { json!(names) },
                "roles_links": [],
            },
            "metadata": {
                "is_admin": 0,
                "roles": if claims.unscoped { json!([]) } else { json!(ids) },
            },
        }})
    }

    /// The object store at the URL a v1 login of the same user gets, and this identity
    /// service's v2.0, each with its three URLs.
    fn v2_catalog(&self, p: &Principal) -> Value {
        let region = &self.config.region;
        let storage = format!("{}/v1/{}", self.base_url, p.storage_id);
        let identity = format!("{}/v2.0", self.base_url);
        let service = |kind: &str, name: &str, public: &str, admin: &str| {
            json!({
                "type": kind,
                "name": name,
                "endpoints_links": [],
                "endpoints": [{
                    "id": stable_id(kind, "v2.0"),
                    "region": region,
                    "publicURL": public,
                    "internalURL": public,
                    "adminURL": admin,
                }],
            })
        };
        json!([
            service("identity", "keystone", &identity, &identity),
            service(
                "object-store",
                "swift",
                &storage,
                &format!("{}/v1", self.base_url)
            ),
        ])
    }
}
