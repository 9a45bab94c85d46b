//! The identity service: accounts, users and the token key ring mirrored in memory from
//! the store, so that token validation and repeat logins never touch the database or
//! run argon2. Tokens are sealed with the ring (`auth::token`), so any gateway on the same
//! store accepts them at once; a user's tokens are revoked by recording when. Writes go to
//! the store first, then the mirror is rebuilt; writes by another process (the CLI,
//! another gateway) are noticed through the store's data version.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::keys::KeyHasher;
use super::ring::{self, Ring};
use super::throttle::Throttle;
use super::token::{self, Claims};
use crate::config::{Config, KeystoneConfig};
use crate::error::{Error, Result};
use crate::metrics;
use crate::store::{
    ADMIN_GROUP, AccountRecord, LoginEvent, RESELLER_ADMIN_GROUP, Snapshot, Store, StoreError,
    UserRecord, now_micros,
};
use crate::store::{AppCredentialRecord, Ec2CredentialRecord, MAX_CREDENTIALS};
use crate::swift::target::Prefixes;

/// The first user, made when the gateway starts on an empty store.
pub const BOOTSTRAP_ACCOUNT: &str = "admin";
pub const BOOTSTRAP_USER: &str = "admin";

/// Longest account or user name, in bytes.
pub const MAX_NAME_LENGTH: usize = 256;

/// An authenticated user, as a token or a verified key identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub account: String,
    pub user: String,
    pub storage_id: String,
    pub groups: Vec<String>,
    /// Unix seconds; for key-authenticated callers, the time of verification.
    pub expires_at: u64,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.groups
            .iter()
            .any(|g| g == ADMIN_GROUP || g == RESELLER_ADMIN_GROUP)
    }

    pub fn is_reseller_admin(&self) -> bool {
        self.groups.iter().any(|g| g == RESELLER_ADMIN_GROUP)
    }

    /// An admin of the account with this storage id.
    pub fn administers(&self, storage_id: &str) -> bool {
        self.storage_id == storage_id && self.is_admin()
    }

    /// Owns the account: administers it, or is a reseller admin.
    pub fn owns(&self, storage_id: &str) -> bool {
        self.is_reseller_admin() || self.administers(storage_id)
    }

    /// `X-Auth-Groups` as DevAuth and Swauth send it: `acct:user,acct`, then the
    /// storage id for account admins (the group that owns the account), then the
    /// remaining groups.
    pub fn groups_header(&self) -> String {
        self.acl_groups().join(",")
    }

    /// The groups container and account ACLs name: `account:user`, `account`, the storage
    /// id for account admins, and the user's other groups.
    pub fn acl_groups(&self) -> Vec<String> {
        let mut out = vec![
            format!("{}:{}", self.account, self.user),
            self.account.clone(),
        ];
        if self.is_admin() {
            out.push(self.storage_id.clone());
        }
        out.extend(self.groups.iter().filter(|g| *g != ADMIN_GROUP).cloned());
        out
    }

    pub fn label(&self) -> String {
        format!("{}:{}", self.account, self.user)
    }
}

/// The longest description of an application credential, in bytes.
const MAX_DESCRIPTION: usize = 1000;

/// What a new token reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    /// The user's account (v1 tokens, Keystone project-scoped tokens).
    Account,
    /// Nothing but Keystone's identity calls.
    Unscoped,
    /// The user's account, with the roles of the application credential of this id.
    AppCredential([u8; 16]),
    /// The user's account, from an EC2 credential's signature.
    Ec2,
}

/// What a v1 login asks for.
pub struct LoginRequest {
    pub account: String,
    pub user: String,
    /// Candidate keys (the header as sent, and URL-decoded when that differs).
    pub keys: Vec<String>,
    pub new_token: bool,
    pub lifetime: Option<Duration>,
    pub source: IpAddr,
    /// Bind the token to this client certificate (SHA-256).
    pub bound_to: Option<[u8; 32]>,
}

pub struct Issued {
    pub token: String,
    pub expires_at: u64,
    pub storage_id: String,
}

struct Verified {
    mac: [u8; 32],
    until: Instant,
    key_hash: String,
}

#[derive(Clone)]
struct IssuedToken {
    token: String,
    key_id: u32,
    claims: Claims,
}

#[derive(Default)]
struct State {
    accounts: HashMap<String, AccountRecord>,
    account_names: HashMap<i64, String>,
    storage_ids: HashMap<String, String>,
    users: HashMap<i64, UserRecord>,
    user_ids: HashMap<(String, String), i64>,
    ring: Ring,
    /// The live token of each user, reused by later logins; held only in memory.
    issued: HashMap<i64, IssuedToken>,
    verified: HashMap<i64, Verified>,
    super_admin_verified: Option<([u8; 32], Instant)>,
    app_credentials: HashMap<String, AppCredentialRecord>,
    /// By access key.
    ec2_credentials: HashMap<String, Ec2CredentialRecord>,
    /// Audit ids of single tokens revoked, as the tokens hold them.
    revoked: std::collections::HashSet<[u8; 8]>,
}

impl State {
    fn user(&self, account: &str, user: &str) -> Option<&UserRecord> {
        let id = self.user_ids.get(&(account.to_owned(), user.to_owned()))?;
        self.users.get(id)
    }

    fn principal(&self, user: &UserRecord, expires_at: u64) -> Option<Principal> {
        let account = self.account_names.get(&user.account_id)?;
        Some(Principal {
            user_id: user.id,
            account: account.clone(),
            user: user.name.clone(),
            storage_id: self.accounts.get(account)?.storage_id.clone(),
            groups: user.groups.clone(),
            expires_at,
        })
    }
}

/// The answer to an attempt while its address is over a limit: the same whatever the key.
fn throttled(wait: u64) -> Error {
    Error::TooManyRequests {
        retry_after: wait,
        message: format!("too many failed logins; try again in {wait} s"),
    }
}

/// What an EC2 secret is sealed for: its own record.
/// A sealed EC2 secret, opened with whichever credential key sealed it.
pub fn open_ec2_secret(keys: &ring::CredentialKeys, c: &Ec2CredentialRecord) -> Option<Vec<u8>> {
    keys.opening()
        .find_map(|k| token::open_secret(k, &ec2_context(&c.access), &c.secret))
}

/// An EC2 secret sealed under `key` for its record.
pub fn seal_ec2_secret(key: &[u8; 32], access: &str, secret: &[u8]) -> Vec<u8> {
    token::seal_secret(key, &ec2_context(access), secret)
}

fn ec2_context(access: &str) -> String {
    format!("ec2/{access}")
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

pub struct Identity {
    store: Arc<Store>,
    state: RwLock<State>,
    /// The store's data version the mirror was loaded at; `None` before the first load.
    data_version: Mutex<Option<i64>>,
    hasher: KeyHasher,
    throttle: Throttle,
    /// Keyed with random bytes at start: map keys for the keys of cached logins.
    mac: Hmac<Sha256>,
    /// Verified against when the user does not exist, so that an unknown user takes
    /// as long to refuse as a wrong key.
    dummy_hash: String,
    /// The super admin key's argon2 hash, and a keyed hash that tells a changed key at a
    /// reload; `None` when none is configured.
    super_admin: RwLock<Option<(String, [u8; 32])>>,
    /// Seals the token key ring in the store.
    /// The keys sealing the token ring and EC2 secrets; a reload changes them.
    credential_keys: std::sync::RwLock<ring::CredentialKeys>,
    pub reseller_prefix: String,
    service_prefix: Option<String>,
    service_group: String,
    token_life: Duration,
    max_token_life: Duration,
    credential_cache: Duration,
    /// The roles of Keystone's answers, by group.
    roles: KeystoneConfig,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Identity {
    /// An identity service on `store`, with nothing loaded yet (`reload` loads it).
    /// Hashing the super admin key and the dummy key costs two argon2 runs, once at start.
    pub fn open(store: Arc<Store>, config: &Config) -> std::result::Result<Identity, String> {
        let hasher = KeyHasher::new(&config.auth.argon2)?;
        let mut mac_key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut mac_key);
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&mac_key).map_err(|e| e.to_string())?;
        let dummy_hash = hasher
            .hash_blocking(&super::keys::generate_key())
            .map_err(|e| e.to_string())?;
        let super_admin_key = config.super_admin_key().map_err(|e| e.to_string())?;
        let super_admin_hash = match &super_admin_key {
            Some(k) => Some(hasher.hash_blocking(k).map_err(|e| e.to_string())?),
            None => None,
        };
        let mut identity = Identity {
            state: RwLock::new(State::default()),
            data_version: Mutex::new(None),
            store,
            hasher,
            throttle: Throttle::new(config.auth.throttle.clone()),
            mac,
            dummy_hash,
            super_admin: RwLock::new(None),
            credential_keys: std::sync::RwLock::new(
                ring::CredentialKeys::of(config).map_err(|e| e.to_string())?,
            ),
            reseller_prefix: config.auth.reseller_prefix.clone(),
            service_prefix: config.auth.service_prefix.clone(),
            service_group: config.auth.service_group.clone(),
            token_life: config.auth.token_life,
            max_token_life: config.auth.max_token_life,
            credential_cache: config.auth.credential_cache,
            roles: config.auth.keystone.clone(),
        };
        let known = super_admin_key
            .zip(super_admin_hash)
            .map(|(k, h)| (h, identity.mac(&k)));
        *identity
            .super_admin
            .get_mut()
            .unwrap_or_else(|p| p.into_inner()) = known;
        Ok(identity)
    }

    /// Takes a changed super admin key (a reload): the old key stops opening at once,
    /// users' sessions are untouched. Whether it changed.
    pub async fn set_super_admin_key(&self, key: Option<String>) -> Result<bool> {
        let mac = key.as_deref().map(|k| self.mac(k));
        let unchanged = read(&self.super_admin).as_ref().map(|(_, m)| *m) == mac;
        if unchanged {
            return Ok(false);
        }
        let known = match key {
            Some(k) => Some((self.hasher.hash(k).await?, mac.unwrap_or_default())),
            None => None,
        };
        *write(&self.super_admin) = known;
        write(&self.state).super_admin_verified = None;
        Ok(true)
    }

    fn mac(&self, key: &str) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(key.as_bytes());
        m.finalize().into_bytes().into()
    }

    /// Replaces the mirror with a fresh snapshot, keeping what is still valid of the
    /// in-memory extras: issued tokens not revoked, verified keys whose hash is unchanged.
    fn install(&self, snap: Snapshot, ring: Ring) {
        let mut st = write(&self.state);
        st.users.clear();
        st.accounts.clear();
        st.account_names.clear();
        st.storage_ids.clear();
        st.user_ids.clear();
        st.ring = ring;
        st.revoked = snap
            .revoked
            .iter()
            .filter_map(|id| token::audit_id_of(id))
            .collect();
        st.app_credentials = snap
            .app_credentials
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        st.ec2_credentials = snap
            .ec2_credentials
            .into_iter()
            .map(|c| (c.access.clone(), c))
            .collect();
        for a in snap.accounts {
            st.account_names.insert(a.id, a.name.clone());
            st.storage_ids.insert(a.storage_id.clone(), a.name.clone());
            st.accounts.insert(a.name.clone(), a);
        }
        for u in snap.users {
            if let Some(acct) = st.account_names.get(&u.account_id).cloned() {
                st.user_ids.insert((acct, u.name.clone()), u.id);
                st.users.insert(u.id, u);
            }
        }
        let State {
            users,
            ring,
            issued,
            verified,
            ..
        } = &mut *st;
        issued.retain(|id, t| {
            ring.has(t.key_id)
                && users
                    .get(id)
                    .is_some_and(|u| t.claims.issued_at >= u.tokens_after)
        });
        verified.retain(|id, v| users.get(id).is_some_and(|u| u.key_hash == v.key_hash));
    }

    /// Rebuilds the mirror from the store; on a store with no token key ring yet, makes
    /// its first keys.
    pub async fn reload(&self) -> Result<()> {
        let mut version = self.store.data_version().await?;
        let mut snap = self.store.snapshot().await?;
        let keys = self.credential_keys();
        if snap.keys.is_empty() {
            ring::start(&self.store, keys.current.as_ref()).await?;
            version = self.store.data_version().await?;
            snap = self.store.snapshot().await?;
        }
        let ring = Ring::open(&snap.keys, &keys)
            .map_err(|e| Error::broken(format!("cannot open the token key ring: {e}")))?;
        *self.data_version.lock().unwrap_or_else(|p| p.into_inner()) = Some(version);
        self.install(snap, ring);
        Ok(())
    }

    /// The credential keys in force.
    pub fn credential_keys(&self) -> ring::CredentialKeys {
        self.credential_keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Opens the token ring and EC2 secrets with `keys` from now on (a reload); the ring
    /// is opened again with them first, and nothing changes if it does not open.
    pub async fn set_credential_keys(
        &self,
        keys: ring::CredentialKeys,
    ) -> std::result::Result<(), String> {
        let snap = self.store.snapshot().await.map_err(|e| e.to_string())?;
        Ring::open(&snap.keys, &keys).map_err(|e| {
            format!(
                "the credential keys do not open the token key ring ({e}); they stay as they were"
            )
        })?;
        *self
            .credential_keys
            .write()
            .unwrap_or_else(|p| p.into_inner()) = keys;
        self.reload().await.map_err(|e| e.to_string())
    }

    /// Reloads when another process has written to the store.
    pub async fn reload_if_changed(&self) -> Result<bool> {
        let version = self.store.data_version().await?;
        let last = *self.data_version.lock().unwrap_or_else(|p| p.into_inner());
        if last == Some(version) {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    /// Picks up what another process (the CLI, another gateway) wrote, before a key is
    /// checked against it. The embedded store, unreadable, leaves what is in memory; a
    /// shared store that cannot be reached refuses the check, since another gateway may
    /// have changed the key meanwhile.
    pub async fn catch_up(&self) -> Result<()> {
        match self.reload_if_changed().await {
            Ok(_) => Ok(()),
            Err(e) if self.store.is_shared() => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the identity store; using what is in memory");
                Ok(())
            }
        }
    }

    /// Before a login looks at a user's account: a user this gateway does not know yet
    /// may just have been added by the CLI or another gateway.
    pub async fn look_for(&self, account: &str, user: &str) {
        if self.user(account, user).is_none() {
            // a store that cannot be read refuses the key check that follows
            let _ = self.catch_up().await;
        }
    }

    /// An account record for a login that hands out its upstream credentials: without
    /// any in memory, what the store holds now (a link may just have been finished on
    /// another gateway).
    pub async fn account_with_credentials(&self, name: &str) -> Result<Option<AccountRecord>> {
        if self.account(name).is_some_and(|r| r.credentials.is_none()) {
            self.catch_up().await?;
        }
        Ok(self.account(name))
    }

    /// Drops expired issued tokens and stale verified keys from memory.
    pub fn purge_expired(&self) {
        let now = unix_now();
        let instant = Instant::now();
        let mut st = write(&self.state);
        st.issued.retain(|_, t| t.claims.expires_at > now);
        st.verified.retain(|_, v| v.until > instant);
    }

    /// Checks a user's key. An address over its limit for the user is refused first,
    /// whatever the key (`auth::throttle`). Repeat logins within the credential cache
    /// time compare a keyed hash in memory; others run argon2 (also for unknown users,
    /// against a dummy hash), after picking up what another process (the CLI) wrote, so a
    /// user just added or a key just changed works at once.
    pub async fn verify_key(
        &self,
        account: &str,
        user: &str,
        keys: &[String],
        source: IpAddr,
    ) -> Result<UserRecord> {
        let name = format!("{account}:{user}");
        let macs: Vec<[u8; 32]> = keys.iter().map(|k| self.mac(k)).collect();
        if let Some(u) = self.remembered(account, user, &name, &macs, source)? {
            return Ok(u);
        }
        // one at a time for this user from this address: guesses sent together are held
        // as guesses one after another are, and parallel first logins of the owner wait
        // for the first to be checked
        let turn = self.throttle.turn(&name, source);
        let _turn = turn.lock().await;
        if let Some(u) = self.remembered(account, user, &name, &macs, source)? {
            return Ok(u);
        }
        metrics::credential_cache(false);
        self.catch_up().await?;
        let known = self.user(account, user);
        let phc = known
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |u| u.key_hash.clone());
        let matched = self.hasher.verify(keys.to_vec(), phc).await?;
        match (known, matched) {
            (Some(u), Some(i)) => {
                metrics::login(metrics::Login::Ok);
                self.login_succeeded(&name, source);
                write(&self.state).verified.insert(
                    u.id,
                    Verified {
                        mac: macs[i],
                        until: Instant::now() + self.credential_cache,
                        key_hash: u.key_hash.clone(),
                    },
                );
                Ok(u)
            }
            (known, _) => {
                metrics::login(if known.is_some() {
                    metrics::Login::BadKey
                } else {
                    metrics::Login::UnknownUser
                });
                self.login_failed(&name, source);
                Err(Error::unauthorized(account, "invalid account, user or key"))
            }
        }
    }

    /// Counts a failed login, here and, on a shared store, on every other gateway.
    fn login_failed(&self, name: &str, source: IpAddr) {
        self.throttle.failed(name, source);
        self.announce(LoginEvent::Failed {
            user: name.to_owned(),
            source,
        });
    }

    /// Counts a successful login; other gateways hear of it when it changed what their
    /// throttle knows.
    fn login_succeeded(&self, name: &str, source: IpAddr) {
        if self.throttle.succeeded(name, source) {
            self.announce(LoginEvent::Succeeded {
                user: name.to_owned(),
                source,
            });
        }
    }

    fn announce(&self, event: LoginEvent) {
        if !self.store.is_shared() {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.announce(&event).await {
                tracing::warn!(error = %e, "cannot tell the other gateways of a login");
            }
        });
    }

    /// Counts the other gateways' logins in this one's throttle, for as long as this
    /// identity service lives (on a shared store: the gateways throttle as one).
    pub fn follow_other_gateways(self: &Arc<Self>) {
        let Some(mut events) = self.store.login_events() else {
            return;
        };
        let identity = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                let Some(identity) = identity.upgrade() else {
                    return;
                };
                match e {
                    LoginEvent::Failed { user, source } => identity.throttle.failed(&user, source),
                    LoginEvent::Succeeded { user, source } => {
                        identity.throttle.succeeded(&user, source);
                    }
                }
            }
        });
    }

    /// The throttle's answer for this user and address, then the user if the key is the
    /// one remembered from a recent login (both counted in the metrics).
    fn remembered(
        &self,
        account: &str,
        user: &str,
        name: &str,
        macs: &[[u8; 32]],
        source: IpAddr,
    ) -> Result<Option<UserRecord>> {
        if let Some(wait) = self.throttle.check(name, source) {
            metrics::login(metrics::Login::Throttled);
            return Err(throttled(wait));
        }
        let st = read(&self.state);
        let Some(u) = st.user(account, user) else {
            return Ok(None);
        };
        let fresh = st.verified.get(&u.id).is_some_and(|v| {
            v.until > Instant::now()
                && v.key_hash == u.key_hash
                && macs.iter().any(|m| bool::from(m.ct_eq(&v.mac)))
        });
        if !fresh {
            return Ok(None);
        }
        let u = u.clone();
        drop(st);
        metrics::credential_cache(true);
        metrics::login(metrics::Login::Ok);
        self.login_succeeded(name, source);
        Ok(Some(u))
    }

    /// v1 login: verifies the key, then hands back the user's live token, or a new one.
    pub async fn login(&self, req: &LoginRequest) -> Result<Issued> {
        let user = self
            .verify_key(&req.account, &req.user, &req.keys, req.source)
            .await?;
        let storage_id = read(&self.state)
            .accounts
            .get(&req.account)
            .map(|a| a.storage_id.clone())
            .ok_or_else(|| Error::unauthorized(&req.account, "invalid account, user or key"))?;
        let now = unix_now();
        if req.new_token {
            self.revoke_user_tokens(user.id).await?;
        } else if let Some(t) = read(&self.state).issued.get(&user.id)
            && t.claims.expires_at > now + 1
            && t.claims.bound_to == req.bound_to
        {
            return Ok(Issued {
                token: t.token.clone(),
                expires_at: t.claims.expires_at,
                storage_id,
            });
        }
        let life = req.lifetime.unwrap_or(self.token_life);
        let issued = self.seal_new(user.id, life, req.bound_to, TokenScope::Account)?;
        let (token, expires_at) = (issued.token.clone(), issued.claims.expires_at);
        write(&self.state).issued.insert(user.id, issued);
        Ok(Issued {
            token,
            expires_at,
            storage_id,
        })
    }

    /// A new token of user `user_id`, good for `life` (within the gateway's bounds),
    /// sealed with the ring's primary key, reaching what `scope` says.
    pub fn seal_for(
        &self,
        user_id: i64,
        life: Duration,
        bound_to: Option<[u8; 32]>,
        scope: TokenScope,
    ) -> Result<(String, Claims)> {
        let t = self.seal_new(user_id, life, bound_to, scope)?;
        Ok((t.token, t.claims))
    }

    fn seal_new(
        &self,
        user_id: i64,
        life: Duration,
        bound_to: Option<[u8; 32]>,
        scope: TokenScope,
    ) -> Result<IssuedToken> {
        let life = life.min(self.max_token_life).max(Duration::from_secs(1));
        let st = read(&self.state);
        let Some(tokens_after) = st.users.get(&user_id).map(|u| u.tokens_after) else {
            // deleted meanwhile
            return Err(Error::unauthorized("-", "invalid account, user or key"));
        };
        let (key_id, key) = st
            .ring
            .primary()
            .ok_or_else(|| Error::broken("the token key ring has no primary key"))?;
        let claims = Claims {
            user_id,
            issued_at: now_micros().max(tokens_after),
            expires_at: unix_now() + life.as_secs(),
            audit_id: token::new_audit_id(),
            bound_to,
            unscoped: scope == TokenScope::Unscoped,
            app_credential: match scope {
                TokenScope::AppCredential(id) => Some(id),
                _ => None,
            },
            ec2: scope == TokenScope::Ec2,
        };
        Ok(IssuedToken {
            token: token::seal(&self.reseller_prefix, key_id, key, &claims),
            key_id,
            claims,
        })
    }

    /// The lifetime of tokens when the client asks for none.
    pub fn token_life(&self) -> Duration {
        self.token_life
    }

    /// For a service account (`SERVICE_<id>`), the account that owns it (`AUTH_<id>`).
    pub fn service_owner(&self, storage_id: &str) -> Option<String> {
        let id = storage_id.strip_prefix(self.service_prefix.as_deref()?)?;
        Some(format!("{}{id}", self.reseller_prefix))
    }

    /// The gateway's account prefixes, for naming accounts upstream.
    pub fn prefixes(&self) -> Prefixes<'_> {
        Prefixes {
            reseller: &self.reseller_prefix,
            service: self.service_prefix.as_deref(),
        }
    }

    /// Who the caller is in the service account `account` of `owner`: an admin of the
    /// owner whose request also carries the token of a user of the service group (good
    /// over a connection with `certificate`, as any token) acts as the service account's
    /// admin; everyone else stays who they are there.
    pub fn in_service_account(
        &self,
        p: Principal,
        account: &str,
        owner: &str,
        service_token: Option<&str>,
        certificate: Option<[u8; 32]>,
    ) -> Principal {
        if p.is_reseller_admin() || !p.administers(owner) {
            return p;
        }
        let service = service_token
            .and_then(|t| self.validate_over(t, certificate).ok())
            .is_some_and(|s| s.groups.contains(&self.service_group));
        if service {
            Principal {
                storage_id: account.to_owned(),
                ..p
            }
        } else {
            p
        }
    }

    /// The principal a token stands for, whatever connection it came over: a memory
    /// lookup, nothing else.
    pub fn validate(&self, token: &str) -> Option<Principal> {
        self.lookup(token).map(|(p, _)| p)
    }

    /// The principal a token stands for when presented over a connection with
    /// `certificate` (a token bound to a client certificate works only with it); else
    /// why not, in words for the client.
    pub fn validate_over(
        &self,
        token: &str,
        certificate: Option<[u8; 32]>,
    ) -> Result<Principal, &'static str> {
        match self.lookup(token) {
            None => Err("the token is invalid or has expired"),
            Some((_, Some(bound))) if certificate != Some(bound) => Err(
                "this token works only over a connection with the client certificate it was \
                 issued to",
            ),
            Some((p, _)) => Ok(p),
        }
    }

    /// Whether a token was made from an application or an EC2 credential (itself, or
    /// a token it was rescoped from).
    pub fn is_delegated(&self, token: &str) -> bool {
        self.open_uncounted(token, 0)
            .is_some_and(|(_, c)| c.app_credential.is_some() || c.ec2)
    }

    /// A live token's principal and the certificate it is bound to, if any: a token
    /// scoped to the user's account only.
    fn lookup(&self, token: &str) -> Option<(Principal, Option<[u8; 32]>)> {
        let (p, claims) = self.open_token(token, 0)?;
        (!claims.unscoped).then_some((p, claims.bound_to))
    }

    /// A token's principal and claims, scoped or not, also when it expired less than
    /// `expired_grace` seconds ago; never a revoked token, nor one of a user gone.
    pub fn open_token(&self, token: &str, expired_grace: u64) -> Option<(Principal, Claims)> {
        let opened = self.open_uncounted(token, expired_grace);
        metrics::token_validation(opened.is_some());
        opened
    }

    fn open_uncounted(&self, token: &str, expired_grace: u64) -> Option<(Principal, Claims)> {
        let st = read(&self.state);
        let claims = token::open(token, &self.reseller_prefix, |id| st.ring.get(id))?;
        if claims.expires_at.saturating_add(expired_grace) <= unix_now() {
            return None;
        }
        let user = st.users.get(&claims.user_id)?;
        if claims.issued_at < user.tokens_after || st.revoked.contains(&claims.audit_id) {
            return None;
        }
        let mut principal = st.principal(user, claims.expires_at)?;
        if let Some(id) = &claims.app_credential {
            let c = st.app_credentials.get(&hex::encode(id))?;
            if c.user_id != user.id || !self.credential_holds(c, &principal.groups) {
                return None;
            }
            principal.groups = self.groups_within(&principal.groups, &c.roles);
        }
        Some((principal, claims))
    }

    /// The roles a user with these groups has on their project, in Keystone's answers.
    pub fn roles_of(&self, groups: &[String]) -> std::collections::BTreeSet<String> {
        let mut roles: std::collections::BTreeSet<String> =
            self.roles.member_roles.iter().cloned().collect();
        for g in groups {
            if let Some(r) = self.roles_of_group(g) {
                roles.extend(r.iter().cloned());
            }
        }
        roles
    }

    fn roles_of_group(&self, group: &str) -> Option<&[String]> {
        let r = &self.roles;
        match group {
            ADMIN_GROUP => Some(&r.admin_roles),
            RESELLER_ADMIN_GROUP => Some(&r.reseller_admin_roles),
            g => r.group_roles.get(g).map(Vec::as_slice),
        }
    }

    /// Of a user's groups, those an application credential with `roles` keeps: a group
    /// whose roles it holds, every one of them. A group that gives no role (one named in
    /// ACLs, the service or validation groups) is not kept: a credential is its roles.
    fn groups_within(&self, groups: &[String], roles: &[String]) -> Vec<String> {
        groups
            .iter()
            .filter(|g| {
                self.roles_of_group(g)
                    .is_some_and(|given| given.iter().all(|r| roles.contains(r)))
            })
            .cloned()
            .collect()
    }

    /// Whether an application credential still works: not expired, and its user still
    /// has every role it gives (a user who lost one loses the credential, as in
    /// Keystone).
    fn credential_holds(&self, c: &AppCredentialRecord, groups: &[String]) -> bool {
        let now = self.roles_of(groups);
        c.expires_at.is_none_or(|t| t > unix_now()) && c.roles.iter().all(|r| now.contains(r))
    }

    /// An application credential by its id.
    pub fn app_credential(&self, id: &str) -> Option<AppCredentialRecord> {
        read(&self.state).app_credentials.get(id).cloned()
    }

    /// The application credentials of a user.
    pub fn app_credentials_of(&self, user_id: i64) -> Vec<AppCredentialRecord> {
        let mut v: Vec<_> = read(&self.state)
            .app_credentials
            .values()
            .filter(|c| c.user_id == user_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Makes an application credential of a user, with `roles` of the user's (all of
    /// them when none are named): the record, seen at once on every gateway.
    pub async fn create_app_credential(
        &self,
        user_id: i64,
        name: &str,
        description: &str,
        secret: &str,
        roles: Option<Vec<String>>,
        expires_at: Option<u64>,
    ) -> Result<AppCredentialRecord> {
        let principal = self
            .principal_by_id(user_id)
            .ok_or_else(|| StoreError::NoUser(user_id.to_string()))?;
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(Error::bad_request(
                "an application credential's name is 1 to 255 bytes of UTF-8, without \
                 control characters",
            ));
        }
        if description.len() > MAX_DESCRIPTION {
            return Err(Error::bad_request(format!(
                "an application credential's description is {MAX_DESCRIPTION} bytes at most"
            )));
        }
        if self.app_credentials_of(user_id).len() >= MAX_CREDENTIALS {
            return Err(Error::Conflict(format!(
                "{} has {MAX_CREDENTIALS} application credentials, as many as a user may; \
                 delete one first",
                principal.label()
            )));
        }
        check_key(secret)?;
        if expires_at.is_some_and(|t| t <= unix_now()) {
            return Err(Error::bad_request(
                "an application credential's expiry must be in the future",
            ));
        }
        let own = self.roles_of(&principal.groups);
        let roles = match roles {
            None => own.into_iter().collect(),
            Some(asked) => {
                if let Some(r) = asked.iter().find(|r| !own.contains(*r)) {
                    return Err(Error::forbidden(
                        "app-credential-roles",
                        format!("{} has no role {r:?} to give", principal.label()),
                    ));
                }
                asked
            }
        };
        let mut raw = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let record = AppCredentialRecord {
            id: hex::encode(raw),
            user_id,
            name: name.to_owned(),
            description: description.to_owned(),
            secret_hash: self.hasher.hash(secret.to_owned()).await?,
            roles,
            expires_at,
            created_at: unix_now(),
        };
        self.store.put_app_credential(&record).await?;
        self.reload().await?;
        Ok(record)
    }

    /// Deletes an application credential of a user, and so every token made from it.
    pub async fn delete_app_credential(&self, user_id: i64, id: &str) -> Result<bool> {
        let gone = self.store.delete_app_credential(user_id, id).await?;
        self.reload().await?;
        Ok(gone)
    }

    /// The user an application credential logs in as, and the credential, once its
    /// secret was checked, throttled as the user's logins are. `Ok(None)`: no such
    /// credential, found at the same cost (argon2 against a dummy hash) and counted as a
    /// failure, under `id` as given.
    pub async fn verify_app_credential(
        &self,
        id: &str,
        secret: &str,
        source: IpAddr,
    ) -> Result<Option<(Principal, AppCredentialRecord)>> {
        self.catch_up().await?;
        let found = read(&self.state).app_credentials.get(id).cloned();
        let principal = found.as_ref().and_then(|c| self.principal_by_id(c.user_id));
        let name = match &principal {
            Some(p) => p.label(),
            None => format!("application credential {id}"),
        };
        if let Some(wait) = self.throttle.check(&name, source) {
            return Err(throttled(wait));
        }
        let turn = self.throttle.turn(&name, source);
        let _turn = turn.lock().await;
        let phc = found
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |c| c.secret_hash.clone());
        let matched = self.hasher.verify(vec![secret.to_owned()], phc).await?;
        let (Some(c), Some(principal)) = (found, principal) else {
            self.login_failed(&name, source);
            return Ok(None);
        };
        if matched.is_none() || !self.credential_holds(&c, &principal.groups) {
            self.login_failed(&name, source);
            return Err(Error::unauthorized(
                &principal.account,
                "invalid application credential",
            ));
        }
        self.login_succeeded(&name, source);
        Ok(Some((principal, c)))
    }

    /// The EC2 credentials of a user, by access key.
    pub fn ec2_credentials_of(&self, user_id: i64) -> Vec<Ec2CredentialRecord> {
        let mut v: Vec<_> = read(&self.state)
            .ec2_credentials
            .values()
            .filter(|c| c.user_id == user_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.access.cmp(&b.access));
        v
    }

    /// An EC2 credential by its access key.
    pub fn ec2_credential(&self, access: &str) -> Option<Ec2CredentialRecord> {
        read(&self.state).ec2_credentials.get(access).cloned()
    }

    /// An EC2 credential's secret, opened.
    pub fn ec2_secret(&self, c: &Ec2CredentialRecord) -> Result<String> {
        let plain = if c.sealed {
            let keys = self.credential_keys();
            if keys.current.is_none() {
                return Err(Error::broken(
                    "an EC2 secret is sealed and auth.credential_key is not configured",
                ));
            }
            open_ec2_secret(&keys, c).ok_or_else(|| {
                Error::broken("an EC2 secret does not open with auth.credential_key")
            })?
        } else {
            c.secret.clone()
        };
        String::from_utf8(plain).map_err(|_| Error::broken("an EC2 secret is not text"))
    }

    /// Makes an EC2 credential of a user for their account: the record and its secret,
    /// seen at once on every gateway.
    pub async fn create_ec2_credential(
        &self,
        user_id: i64,
    ) -> Result<(Ec2CredentialRecord, String)> {
        let principal = self
            .principal_by_id(user_id)
            .ok_or_else(|| StoreError::NoUser(user_id.to_string()))?;
        if self.ec2_credentials_of(user_id).len() >= MAX_CREDENTIALS {
            return Err(Error::Conflict(format!(
                "{} has {MAX_CREDENTIALS} EC2 credentials, as many as a user may; \
                 delete one first",
                principal.label()
            )));
        }
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let access = hex::encode(&raw[..16]);
        let secret = hex::encode(&raw[16..]);
        let current = self.credential_keys().current;
        let record = Ec2CredentialRecord {
            secret: match &current {
                Some(key) => token::seal_secret(key, &ec2_context(&access), secret.as_bytes()),
                None => secret.clone().into_bytes(),
            },
            sealed: current.is_some(),
            access,
            user_id,
            created_at: unix_now(),
        };
        self.store.put_ec2_credential(&record).await?;
        self.reload().await?;
        Ok((record, secret))
    }

    /// Deletes an EC2 credential of a user.
    pub async fn delete_ec2_credential(&self, user_id: i64, access: &str) -> Result<bool> {
        let gone = self.store.delete_ec2_credential(user_id, access).await?;
        self.reload().await?;
        Ok(gone)
    }

    /// The user an S3 or EC2 request comes from: the owner of the EC2 credential
    /// `access`, when `check` finds the request signed with its secret. `Ok(None)`: no
    /// such credential (after catching up with the store).
    pub async fn verify_ec2_credential(
        &self,
        access: &str,
        check: impl FnOnce(&str) -> std::result::Result<bool, super::s3::Refusal>,
    ) -> Result<Option<Principal>> {
        if self.ec2_credential(access).is_none() {
            self.catch_up().await?;
        }
        let Some(c) = self.ec2_credential(access) else {
            return Ok(None);
        };
        let principal = self
            .principal_by_id(c.user_id)
            .ok_or_else(|| Error::unauthorized("keystone", "the EC2 credential's user is gone"))?;
        match check(&self.ec2_secret(&c)?) {
            Ok(true) => Ok(Some(principal)),
            Ok(false) => Err(Error::unauthorized(
                &principal.account,
                "EC2 signature mismatch",
            )),
            Err(why) => Err(Error::unauthorized(
                &principal.account,
                format!("not a signed request of a kind served ({why:?})"),
            )),
        }
    }

    /// Revokes one token, on every gateway of the store.
    pub async fn revoke_token(&self, claims: &Claims) -> Result<()> {
        let audit_id = claims.audit_id();
        self.store
            .revoke_token(&audit_id, claims.expires_at)
            .await?;
        let mut st = write(&self.state);
        st.revoked.insert(claims.audit_id);
        st.issued
            .retain(|_, t| t.claims.audit_id != claims.audit_id);
        Ok(())
    }

    /// Revokes every token of a user issued until now, on every gateway of the store.
    pub async fn revoke_user_tokens(&self, user_id: i64) -> Result<()> {
        let at = self.store.revoke_tokens(user_id).await?;
        let mut st = write(&self.state);
        if let Some(u) = st.users.get_mut(&user_id) {
            u.tokens_after = u.tokens_after.max(at);
        }
        st.issued.remove(&user_id);
        Ok(())
    }

    /// The principal for a verified key (admin API callers).
    pub async fn authenticate_key(
        &self,
        account: &str,
        user: &str,
        key: &str,
        source: IpAddr,
    ) -> Result<Principal> {
        let u = self
            .verify_key(account, user, &[key.to_owned()], source)
            .await?;
        read(&self.state)
            .principal(&u, unix_now())
            .ok_or_else(|| Error::unauthorized(account, "invalid account, user or key"))
    }

    pub async fn verify_super_admin(&self, key: &str, source: IpAddr) -> Result<()> {
        const NAME: &str = ".super_admin";
        let Some(phc) = read(&self.super_admin).as_ref().map(|(h, _)| h.clone()) else {
            return Err(Error::unauthorized(
                NAME,
                "no super admin key is configured (auth.super_admin_key_file)",
            ));
        };
        let mac = self.mac(key);
        let remembered = || {
            if let Some(wait) = self.throttle.check(NAME, source) {
                return Err(throttled(wait));
            }
            let fresh = read(&self.state)
                .super_admin_verified
                .is_some_and(|(m, until)| until > Instant::now() && bool::from(m.ct_eq(&mac)));
            if fresh {
                self.login_succeeded(NAME, source);
            }
            Ok(fresh)
        };
        if remembered()? {
            return Ok(());
        }
        let turn = self.throttle.turn(NAME, source);
        let _turn = turn.lock().await;
        if remembered()? {
            return Ok(());
        }
        if self
            .hasher
            .verify(vec![key.to_owned()], phc)
            .await?
            .is_some()
        {
            self.login_succeeded(NAME, source);
            write(&self.state).super_admin_verified =
                Some((mac, Instant::now() + self.credential_cache));
            Ok(())
        } else {
            self.login_failed(NAME, source);
            Err(Error::unauthorized(NAME, "invalid super admin key"))
        }
    }

    pub fn account(&self, name: &str) -> Option<AccountRecord> {
        read(&self.state).accounts.get(name).cloned()
    }

    /// The account whose storage id (`AUTH_…`) this is.
    pub fn account_by_storage_id(&self, storage_id: &str) -> Option<AccountRecord> {
        let st = read(&self.state);
        let name = st.storage_ids.get(storage_id)?;
        st.accounts.get(name).cloned()
    }

    pub fn accounts(&self) -> Vec<AccountRecord> {
        let mut v: Vec<_> = read(&self.state).accounts.values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn users_of(&self, account: &str) -> Vec<UserRecord> {
        let st = read(&self.state);
        let Some(acc) = st.accounts.get(account) else {
            return Vec::new();
        };
        let mut v: Vec<_> = st
            .users
            .values()
            .filter(|u| u.account_id == acc.id)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// A user as a caller without a token (a client certificate that acts as it).
    pub fn principal_of(&self, account: &str, user: &str) -> Option<Principal> {
        let st = read(&self.state);
        let u = st.user(account, user)?;
        st.principal(u, unix_now())
    }

    /// The accounts that have a user of this name.
    pub fn accounts_with_user(&self, user: &str) -> Vec<String> {
        let st = read(&self.state);
        st.user_ids
            .keys()
            .filter(|(_, u)| u == user)
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// The principal of the user with this id.
    pub fn principal_by_id(&self, user_id: i64) -> Option<Principal> {
        let st = read(&self.state);
        st.principal(st.users.get(&user_id)?, unix_now())
    }

    pub fn user(&self, account: &str, user: &str) -> Option<UserRecord> {
        read(&self.state).user(account, user).cloned()
    }

    /// The storage id a new account `name` gets (with `suffix`, or a random one): 400
    /// for a bad name, 409 for a storage id another account has.
    pub fn new_storage_id(&self, name: &str, suffix: Option<&str>) -> Result<String> {
        check_name("account", name, &self.reseller_prefix)?;
        let storage_id = storage_id(&self.reseller_prefix, suffix)?;
        if self.account_by_storage_id(&storage_id).is_some() {
            return Err(StoreError::StorageIdTaken(storage_id).into());
        }
        Ok(storage_id)
    }

    /// Records a new account, seen at once.
    pub async fn add_account(
        self: &Arc<Self>,
        name: &str,
        storage_id: &str,
        backend: &str,
    ) -> Result<AccountRecord> {
        let acc = self.store.create_account(name, storage_id, backend).await?;
        self.reload().await?;
        Ok(acc)
    }

    /// An account that may be deleted: it exists and has no users (409 otherwise).
    pub fn deletable_account(&self, name: &str) -> Result<AccountRecord> {
        let acc = self
            .account(name)
            .ok_or_else(|| StoreError::NoAccount(name.to_owned()))?;
        let users = self.users_of(name).len();
        if users > 0 {
            return Err(StoreError::AccountHasUsers {
                account: name.to_owned(),
                users,
            }
            .into());
        }
        Ok(acc)
    }

    /// Removes an account's record, seen at once.
    pub async fn remove_account(self: &Arc<Self>, name: &str) -> Result<()> {
        self.store.delete_account(name).await?;
        self.reload().await
    }

    /// Creates or replaces a user (key and groups); revokes its tokens when replaced.
    pub async fn put_user(
        self: &Arc<Self>,
        account: &str,
        user: &str,
        key: &str,
        groups: Vec<String>,
    ) -> Result<bool> {
        check_name("user", user, "")?;
        check_key(key)?;
        let key_hash = self.hasher.hash(key.to_owned()).await?;
        let (_, created) = self
            .store
            .put_user(account, user, &key_hash, &groups)
            .await?;
        self.reload().await?;
        Ok(created)
    }

    /// Replaces an account's sealed upstream credentials, seen at once.
    pub async fn set_credentials(self: &Arc<Self>, account: &str, sealed: Vec<u8>) -> Result<()> {
        self.store.set_credentials(account, &sealed).await?;
        self.reload().await
    }

    /// The store, for parts that keep state in it (rotated OAuth2 grants).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// On an embedded store with no users, creates `admin:admin` (account admin and
    /// reseller admin) with a random key, and returns that key; the only time it is seen.
    /// A shared store's first users come from the command line.
    pub async fn bootstrap_admin(self: &Arc<Self>) -> Result<Option<String>> {
        if self.store.is_shared() || self.store.count_users().await? > 0 {
            return Ok(None);
        }
        if self.account(BOOTSTRAP_ACCOUNT).is_none() {
            let storage_id = self.new_storage_id(BOOTSTRAP_ACCOUNT, None)?;
            self.add_account(BOOTSTRAP_ACCOUNT, &storage_id, "local")
                .await?;
        }
        let key = super::keys::generate_key();
        let groups = vec![ADMIN_GROUP.to_owned(), RESELLER_ADMIN_GROUP.to_owned()];
        self.put_user(BOOTSTRAP_ACCOUNT, BOOTSTRAP_USER, &key, groups)
            .await?;
        Ok(Some(key))
    }

    pub async fn delete_user(self: &Arc<Self>, account: &str, user: &str) -> Result<()> {
        self.store.delete_user(account, user).await?;
        self.reload().await
    }
}

/// A group a user may be put in: letters, digits, `_`, `-` and `.`, not starting with
/// `.` (the built-in groups' mark).
pub fn check_group(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(format!(
            "group {name:?}: use up to 64 letters, digits, '_', '-' and '.', not starting with '.'"
        )))
    }
}

/// Account and user names: 1 to 256 bytes, no separators, no leading dot (reserved,
/// as in Swauth), and account names never look like storage ids.
pub fn check_name(kind: &str, name: &str, reseller_prefix: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::bad_request(format!(
            "invalid {kind} name {name:?}: {why}"
        )))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LENGTH {
        return Err(Error::bad_request(format!(
            "{kind} name is {} bytes long; the limit is {MAX_NAME_LENGTH}",
            name.len()
        )));
    }
    if name.starts_with('.') {
        return bad("names starting with '.' are reserved");
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, ':' | '/' | '%' | '"' | ','))
    {
        return bad(&format!("it contains {c:?}"));
    }
    if !reseller_prefix.is_empty() && name.starts_with(reseller_prefix) {
        return bad(&format!(
            "account names must not start with {reseller_prefix:?}"
        ));
    }
    Ok(())
}

pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::bad_request("the key is empty"));
    }
    if key.len() > 1024 {
        return Err(Error::bad_request("the key is longer than 1024 bytes"));
    }
    Ok(())
}

/// `<prefix><suffix>`; a random 128-bit hex suffix unless one is given.
pub fn storage_id(reseller_prefix: &str, suffix: Option<&str>) -> Result<String> {
    match suffix {
        Some(s) => {
            if s.is_empty()
                || s.len() > 128
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(Error::bad_request(format!(
                    "invalid account suffix {s:?}: use 1 to 128 letters, digits, '_' or '-'"
                )));
            }
            Ok(format!("{reseller_prefix}{s}"))
        }
        None => {
            let mut raw = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut raw);
            Ok(format!("{reseller_prefix}{}", hex::encode(raw)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("account", "test", "AUTH_").is_ok());
        assert!(check_name("account", "AUTH_x", "AUTH_").is_err());
        assert!(check_name("user", ".admin", "").is_err());
        assert!(check_name("user", "a:b", "").is_err());
        assert!(check_name("user", "a b", "").is_err());
        assert!(check_name("user", &"x".repeat(257), "").is_err());
        assert!(check_name("user", "ünïcode", "").is_ok());
    }

    #[test]
    fn groups_header_names_the_owner_group() {
        let p = Principal {
            user_id: 1,
            account: "test".into(),
            user: "tester".into(),
            storage_id: "AUTH_abc".into(),
            groups: vec![".admin".into(), "ops".into()],
            expires_at: 0,
        };
        assert_eq!(p.groups_header(), "test:tester,test,AUTH_abc,ops");
        let plain = Principal {
            groups: vec![],
            ..p
        };
        assert_eq!(plain.groups_header(), "test:tester,test");
    }

    #[test]
    fn storage_ids() {
        let id = storage_id("AUTH_", None).unwrap();
        assert!(id.starts_with("AUTH_") && id.len() == 5 + 32);
        assert_eq!(storage_id("AUTH_", Some("abc")).unwrap(), "AUTH_abc");
        assert!(storage_id("AUTH_", Some("a/b")).is_err());
    }
}
