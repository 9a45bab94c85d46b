//! The admin API, shaped like Swauth's `/auth/v2/` so its tools and habits carry
//! over: callers present `X-Auth-Admin-User`/`X-Auth-Admin-Key` (or a token), and
//! what they may do follows from their rank: super admin (key from config),
//! reseller admin, account admin (`.admin`), or plain user. Stored keys are never
//! returned. Also the token validation endpoint that Swift clusters and Ceph RGW call.

pub mod accounts;

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::json;

use crate::auth::identity::{Identity, Principal, unix_now};
use crate::backend::swift::Clusters;
use crate::body::{Body, json, status_only};
use crate::config::TokenValidationConfig;
use crate::endpoint::AdminOp;
use crate::error::{Error, Result};
use crate::http_util::{first_header, header_str, header_true};
use crate::store::{ADMIN_GROUP, RESELLER_ADMIN_GROUP, StoreError, UserRecord};

/// Who is calling the admin API.
#[derive(Debug, Clone)]
pub enum Caller {
    SuperAdmin,
    User(Principal),
}

/// Ranks order the roles: a caller acts on users of a lower rank.
const PLAIN: u8 = 0;
const ACCOUNT_ADMIN: u8 = 1;
const RESELLER_ADMIN: u8 = 2;
const SUPER_ADMIN: u8 = 3;

fn user_rank(u: &UserRecord) -> u8 {
    if u.is_reseller_admin() {
        RESELLER_ADMIN
    } else if u.is_admin() {
        ACCOUNT_ADMIN
    } else {
        PLAIN
    }
}

impl Caller {
    /// The caller's rank with respect to `account`.
    fn rank(&self, account: &str) -> u8 {
        match self {
            Caller::SuperAdmin => SUPER_ADMIN,
            Caller::User(p) if p.is_reseller_admin() => RESELLER_ADMIN,
            Caller::User(p) if p.is_admin() && p.account == account => ACCOUNT_ADMIN,
            Caller::User(_) => PLAIN,
        }
    }

    fn is(&self, account: &str, user: &str) -> bool {
        matches!(self, Caller::User(p) if p.account == account && p.user == user)
    }

    pub fn label(&self) -> String {
        match self {
            Caller::SuperAdmin => ".super_admin".into(),
            Caller::User(p) => p.label(),
        }
    }
}

fn require(caller: &Caller, account: &str, rank: u8, what: &str) -> Result<()> {
    if caller.rank(account) >= rank {
        Ok(())
    } else {
        Err(Error::forbidden(
            "admin-rank",
            format!("{} may not {what}", caller.label()),
        ))
    }
}

/// Identifies the caller from admin headers, or else from a token.
pub async fn authenticate(
    identity: &Identity,
    headers: &HeaderMap,
    source: IpAddr,
    certificate: Option<[u8; 32]>,
) -> Result<Caller> {
    if let Some(user) = first_header(headers, &["x-auth-admin-user"])? {
        let user = percent_decode_str(user).decode_utf8_lossy().into_owned();
        let key = first_header(headers, &["x-auth-admin-key"])?.ok_or_else(|| {
            Error::unauthorized("unknown", "X-Auth-Admin-User needs X-Auth-Admin-Key")
        })?;
        if user == ".super_admin" {
            identity.verify_super_admin(key, source).await?;
            return Ok(Caller::SuperAdmin);
        }
        let (account, name) = user.split_once(':').ok_or_else(|| {
            Error::unauthorized(
                "unknown",
                "X-Auth-Admin-User must be ACCOUNT:USER or .super_admin",
            )
        })?;
        let p = identity
            .authenticate_key(account, name, key, source)
            .await?;
        return Ok(Caller::User(p));
    }
    match first_header(headers, &["x-auth-token", "x-storage-token"])? {
        Some(token) => {
            let p = identity
                .validate_over(token, certificate)
                .map_err(|why| Error::unauthorized("unknown", why))?;
            // a credential handed to a job (an application or EC2 credential) reaches
            // storage, never the users and keys that would make it the account
            if identity.is_delegated(token) {
                return Err(Error::forbidden(
                    "delegated-token",
                    "a token made from an application or EC2 credential cannot use the \
                     admin API; use the user's key",
                ));
            }
            Ok(Caller::User(p))
        }
        None => Err(Error::unauthorized(
            "unknown",
            "send X-Auth-Admin-User and X-Auth-Admin-Key, or X-Auth-Token",
        )),
    }
}

fn groups_json(account: &str, user: &UserRecord) -> serde_json::Value {
    let mut names = vec![format!("{account}:{}", user.name), account.to_owned()];
    names.extend(user.groups.iter().cloned());
    json!(
        names
            .into_iter()
            .map(|n| json!({"name": n}))
            .collect::<Vec<_>>()
    )
}

fn find_user(identity: &Identity, account: &str, user: &str) -> Result<UserRecord> {
    identity
        .user(account, user)
        .ok_or_else(|| Error::NotFound(format!("no user {account}:{user}")))
}

/// A caller acts on users of a lower rank than its own; the super admin on everyone.
fn outrank(caller: &Caller, account: &str, target: &UserRecord, verb: &str) -> Result<()> {
    let rank = caller.rank(account);
    if rank > user_rank(target) || rank == SUPER_ADMIN {
        Ok(())
    } else {
        Err(Error::forbidden(
            "admin-rank",
            format!(
                "{} may not {verb} {account}:{}, who has as many rights",
                caller.label(),
                target.name
            ),
        ))
    }
}

fn no_account(account: &str) -> Error {
    Error::NotFound(format!("no account {account:?}"))
}

/// Where new accounts go: the configured clusters and the default backend.
pub struct Backends<'a> {
    pub clusters: &'a Clusters,
    pub default: &'a str,
}

pub async fn handle(
    identity: &Arc<Identity>,
    op: AdminOp,
    caller: &Caller,
    headers: &HeaderMap,
    base_url: &str,
    backends: Backends<'_>,
) -> Result<Response<Body>> {
    // what another gateway or the CLI has just written is what this answer is about
    identity.catch_up().await?;
    match op {
        AdminOp::ListAccounts => {
            require(caller, "", RESELLER_ADMIN, "list accounts")?;
            let accounts: Vec<_> = identity
                .accounts()
                .into_iter()
                .map(|a| json!({"name": a.name}))
                .collect();
            Ok(json(StatusCode::OK, &json!({ "accounts": accounts })))
        }
        AdminOp::GetAccount(account) => {
            require(
                caller,
                &account,
                ACCOUNT_ADMIN,
                &format!("read account {account:?}"),
            )?;
            let acc = identity
                .account(&account)
                .ok_or_else(|| no_account(&account))?;
            let users: Vec<_> = identity
                .users_of(&account)
                .into_iter()
                .map(|u| json!({"name": u.name}))
                .collect();
            let url = format!("{base_url}/v1/{}", acc.storage_id);
            Ok(json(
                StatusCode::OK,
                &json!({
                    "account_id": acc.storage_id,
                    "services": {"storage": {"default": acc.backend, acc.backend.clone(): url}},
                    "users": users,
                }),
            ))
        }
        AdminOp::PutAccount(account) => {
            require(caller, &account, RESELLER_ADMIN, "create accounts")?;
            if identity.account(&account).is_some() {
                return Ok(status_only(StatusCode::ACCEPTED));
            }
            let suffix = header_str(headers, "x-account-suffix")?;
            let backend = header_str(headers, "x-account-backend")?.unwrap_or(backends.default);
            match accounts::create(identity, backends.clusters, &account, suffix, backend).await {
                Ok(_) => Ok(status_only(StatusCode::CREATED)),
                // made meanwhile, by another gateway of the store
                Err(
                    e @ Error::Store(StoreError::AccountExists(_) | StoreError::StorageIdTaken(_)),
                ) => {
                    identity.catch_up().await?;
                    if identity.account(&account).is_some() {
                        Ok(status_only(StatusCode::ACCEPTED))
                    } else {
                        Err(e)
                    }
                }
                Err(e) => Err(e),
            }
        }
        AdminOp::RecreateAccounts => {
            require(caller, "", SUPER_ADMIN, "recreate accounts")?;
            let (count, failures) = accounts::recreate(identity, backends.clusters).await;
            Ok(crate::body::text(
                StatusCode::OK,
                format!("{count} accounts, failures {failures:?}"),
            ))
        }
        AdminOp::DeleteAccount(account) => {
            require(caller, &account, RESELLER_ADMIN, "delete accounts")?;
            accounts::delete(identity, backends.clusters, &account).await?;
            Ok(status_only(StatusCode::NO_CONTENT))
        }
        AdminOp::ListGroups(account) => {
            require(
                caller,
                &account,
                ACCOUNT_ADMIN,
                &format!("read account {account:?}"),
            )?;
            identity
                .account(&account)
                .ok_or_else(|| no_account(&account))?;
            let mut names: Vec<String> = Vec::new();
            for u in identity.users_of(&account) {
                names.push(format!("{account}:{}", u.name));
                names.extend(u.groups);
            }
            names.push(account.clone());
            names.sort();
            names.dedup();
            let groups: Vec<_> = names.into_iter().map(|n| json!({"name": n})).collect();
            Ok(json(StatusCode::OK, &json!({ "groups": groups })))
        }
        AdminOp::GetUser(account, user) => {
            let is_self = caller.is(&account, &user);
            if !is_self {
                require(
                    caller,
                    &account,
                    ACCOUNT_ADMIN,
                    &format!("read users of {account:?}"),
                )?;
            }
            let u = find_user(identity, &account, &user)?;
            if !is_self {
                outrank(caller, &account, &u, "read")?;
            }
            Ok(json(
                StatusCode::OK,
                &json!({ "groups": groups_json(&account, &u) }),
            ))
        }
        AdminOp::PutUser(account, user) => {
            put_user(identity, caller, headers, &account, &user).await
        }
        AdminOp::DeleteUser(account, user) => {
            require(
                caller,
                &account,
                ACCOUNT_ADMIN,
                &format!("delete users of {account:?}"),
            )?;
            let u = find_user(identity, &account, &user)?;
            outrank(caller, &account, &u, "delete")?;
            identity.delete_user(&account, &user).await?;
            Ok(status_only(StatusCode::NO_CONTENT))
        }
    }
}

/// Swauth's create-or-replace: `X-Auth-User-Key` (URL-decoded), `X-Auth-User-Admin`,
/// `X-Auth-User-Reseller-Admin` (implies admin). A user may change its own key.
async fn put_user(
    identity: &Arc<Identity>,
    caller: &Caller,
    headers: &HeaderMap,
    account: &str,
    user: &str,
) -> Result<Response<Body>> {
    let reseller = header_true(headers, "x-auth-user-reseller-admin")?;
    let admin = reseller || header_true(headers, "x-auth-user-admin")?;
    let mut groups = Vec::new();
    if admin {
        groups.push(ADMIN_GROUP.to_owned());
    }
    if reseller {
        groups.push(RESELLER_ADMIN_GROUP.to_owned());
    }
    let named = match first_header(headers, &["x-auth-user-groups"])? {
        Some(list) => list
            .split(',')
            .map(|g| crate::auth::identity::check_group(g.trim()).map(|()| g.trim().to_owned()))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    // group names are the same in every account (ACLs and the service group name them)
    if !named.is_empty() && caller.rank(account) < SUPER_ADMIN {
        return Err(Error::forbidden(
            "super-admin",
            "only the super admin may put users in groups; group names hold in every account",
        ));
    }
    groups.extend(named.iter().cloned());
    let wanted = if reseller {
        RESELLER_ADMIN
    } else if admin {
        ACCOUNT_ADMIN
    } else {
        PLAIN
    };
    let existing = identity.user(account, user);
    let own_key_change =
        caller.is(account, user) && existing.as_ref().is_some_and(|u| user_rank(u) == wanted);
    if !own_key_change {
        require(
            caller,
            account,
            ACCOUNT_ADMIN,
            &format!("change users of {account:?}"),
        )?;
        let rank = caller.rank(account);
        if wanted == RESELLER_ADMIN && rank < SUPER_ADMIN {
            return Err(Error::forbidden(
                "super-admin",
                "only the super admin may create reseller admins",
            ));
        }
        if let Some(u) = &existing {
            outrank(caller, account, u, "change")?;
        }
    }
    if identity.account(account).is_none() {
        return Err(no_account(account));
    }
    // a user changing its own key keeps the groups the super admin gave it
    if own_key_change
        && named.is_empty()
        && let Some(u) = &existing
    {
        groups.extend(u.groups.iter().filter(|g| !g.starts_with('.')).cloned());
    }
    let key = first_header(headers, &["x-auth-user-key"])?
        .ok_or_else(|| Error::bad_request("X-Auth-User-Key is required"))?;
    let key = percent_decode_str(key).decode_utf8_lossy().into_owned();
    identity.put_user(account, user, &key, groups).await?;
    Ok(status_only(StatusCode::CREATED))
}

/// `GET /token/<token>`: 204 with `X-Auth-TTL` and `X-Auth-Groups`, or 404. Only for
/// callers in the configured groups (or the super admin), or allow-listed addresses.
pub async fn validate_token(
    identity: &Identity,
    cfg: &TokenValidationConfig,
    token: &str,
    source: IpAddr,
    caller: Option<&Caller>,
) -> Result<Response<Body>> {
    if !cfg.allows_address(source) {
        let caller = caller.ok_or_else(|| {
            Error::unauthorized(
                "unknown",
                "send X-Auth-Admin-User and X-Auth-Admin-Key, or X-Auth-Token",
            )
        })?;
        let allowed = match caller {
            Caller::SuperAdmin => true,
            Caller::User(p) => p.groups.iter().any(|g| cfg.groups.contains(g)),
        };
        if !allowed {
            return Err(Error::forbidden(
                "token-validation",
                format!(
                    "{} may not validate tokens; that needs one of the groups {:?}",
                    caller.label(),
                    cfg.groups
                ),
            ));
        }
    }
    // a token bound to a client certificate is good only at the gateway, over that
    // certificate: whoever asks here cannot show it
    let p = identity
        .validate_over(token, None)
        .map_err(|_| Error::NotFound("no such token, or it has expired".into()))?;
    let mut resp = status_only(StatusCode::NO_CONTENT);
    let h = resp.headers_mut();
    h.insert(
        "x-auth-ttl",
        HeaderValue::from(p.expires_at.saturating_sub(unix_now())),
    );
    h.insert(
        "x-auth-groups",
        crate::http_util::header_value(&p.groups_header())?,
    );
    Ok(resp)
}
