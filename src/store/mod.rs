//! Where accounts, users and tokens persist: the embedded SQLite store of one gateway
//! (`sqlite`), or a PostgreSQL database that several gateways share (`postgres`), behind
//! one interface. Records here are what is stored: user keys only as argon2id PHC
//! strings, upstream credentials only sealed, the token key ring sealed when a credential
//! key is configured (always on a shared store). Tokens are not stored: any gateway checks
//! them with the ring; revoking a user's tokens records when (`tokens_after`).

mod postgres;
pub mod salvage;
mod sqlite;

use std::path::Path;
use std::sync::Arc;

use http::StatusCode;

use crate::config::SharedStore;

pub const ADMIN_GROUP: &str = ".admin";
pub const RESELLER_ADMIN_GROUP: &str = ".reseller_admin";
/// The backend name of the embedded object store.
pub const EMBEDDED_BACKEND: &str = "local";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: i64,
    pub name: String,
    /// `<reseller_prefix><suffix>`, the account part of storage paths.
    pub storage_id: String,
    /// Which backend holds the account's objects.
    pub backend: String,
    /// Its own upstream credentials (`keystone`, `v1` and `oauth2` backends), sealed.
    pub credentials: Option<Vec<u8>>,
    /// Counts an admin's changes of `credentials`; their renewals (rotated OAuth2
    /// refresh tokens) keep it.
    pub credentials_version: i64,
    /// Unix seconds.
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    /// argon2id PHC string.
    pub key_hash: String,
    pub groups: Vec<String>,
    /// Unix microseconds: tokens issued before are revoked (a new key, `X-Auth-New-Token`,
    /// `swiftgate token revoke`; a new user's own creation).
    pub tokens_after: u64,
}

impl AccountRecord {
    /// A new account as just stored: no upstream credentials yet.
    pub(crate) fn created(
        id: i64,
        name: &str,
        storage_id: &str,
        backend: &str,
        created_at: u64,
    ) -> AccountRecord {
        AccountRecord {
            id,
            name: name.into(),
            storage_id: storage_id.into(),
            backend: backend.into(),
            credentials: None,
            credentials_version: 0,
            created_at,
        }
    }
}

/// A user's groups as both stores keep them: a JSON list.
pub(crate) fn groups_text(groups: &[String]) -> String {
    serde_json::to_string(groups).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn groups_of(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl UserRecord {
    pub fn is_admin(&self) -> bool {
        self.groups
            .iter()
            .any(|g| g == ADMIN_GROUP || g == RESELLER_ADMIN_GROUP)
    }

    pub fn is_reseller_admin(&self) -> bool {
        self.groups.iter().any(|g| g == RESELLER_ADMIN_GROUP)
    }
}

/// A key of the token ring: staged keys are accepted and will mint next, the primary key
/// mints, secondary keys are still accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingKey {
    pub id: i64,
    /// 32 bytes, or sealed with the credential key.
    pub key: Vec<u8>,
    pub sealed: bool,
    pub state: KeyState,
    /// Unix seconds.
    pub created_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Staged,
    Primary,
    Secondary,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Staged => "staged",
            KeyState::Primary => "primary",
            KeyState::Secondary => "secondary",
        }
    }

    pub fn parse(s: &str) -> Option<KeyState> {
        match s {
            "staged" => Some(KeyState::Staged),
            "primary" => Some(KeyState::Primary),
            "secondary" => Some(KeyState::Secondary),
            _ => None,
        }
    }
}

/// Everything the gateway keeps in memory, read in one transaction.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub accounts: Vec<AccountRecord>,
    pub users: Vec<UserRecord>,
    pub keys: Vec<RingKey>,
    pub app_credentials: Vec<AppCredentialRecord>,
    pub ec2_credentials: Vec<Ec2CredentialRecord>,
    /// The audit ids of single tokens revoked and not yet expired.
    pub revoked: Vec<String>,
}

/// A Keystone application credential: a secret of a user's, kept only as its argon2id
/// hash, that logs in as the user with some of its roles, until it expires. Deleted with
/// its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCredentialRecord {
    /// 32 hex digits, random.
    pub id: String,
    pub user_id: i64,
    pub name: String,
    pub description: String,
    /// argon2id PHC string.
    pub secret_hash: String,
    /// The roles its tokens have (of the user's, when it was made).
    pub roles: Vec<String>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    pub created_at: u64,
}

/// An EC2-style credential of a user, for S3 clients of a Swift cluster's `s3api`: an
/// access key, which names it, and a secret, which checking a signature needs, so it is
/// kept readable: sealed with `auth.credential_key` when one is configured. Deleted with
/// its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2CredentialRecord {
    /// 32 hex digits, random.
    pub access: String,
    pub user_id: i64,
    /// The secret, sealed (`sealed`) or as is.
    pub secret: Vec<u8>,
    pub sealed: bool,
    pub created_at: u64,
}

/// A link to an OAuth2 provider on its way, kept by the SHA-256 of its `state` until the
/// provider sends the browser back (to any gateway of the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    pub account: String,
    /// The PKCE verifier, sealed.
    pub verifier: Vec<u8>,
    pub redirect_uri: String,
    /// Unix seconds.
    pub until: u64,
}

/// How many links may wait at once: in all, and for one account (so that one account's
/// admin cannot keep every other account from linking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    pub total: usize,
    pub per_account: usize,
}

impl LinkLimits {
    fn refuses(&self, total: usize, of_account: usize) -> Option<StoreError> {
        if of_account >= self.per_account {
            Some(StoreError::TooManyLinks { of_account: true })
        } else if total >= self.total {
            Some(StoreError::TooManyLinks { of_account: false })
        } else {
            None
        }
    }
}

/// An account's sealed credentials, and the sealed access token a refresh left with its
/// end.
pub(crate) type GrantState = (Option<Vec<u8>>, Option<(Vec<u8>, u64)>);

/// A value the store keeps sealed with the credential key.
#[derive(Debug, Clone, Copy)]
pub enum Sealed<'a> {
    /// An account's upstream credentials, by account name.
    Credentials(&'a str),
    /// A key of the token key ring, by id.
    RingKey(i64),
    /// An EC2 credential's secret, by access key.
    Ec2Secret(&'a str),
}

/// A [`Sealed`] that owns its name, to cross into the blocking pool.
enum SealedOwned {
    Credentials(String),
    RingKey(i64),
    Ec2Secret(String),
}

impl Sealed<'_> {
    fn owned(self) -> SealedOwned {
        match self {
            Sealed::Credentials(n) => SealedOwned::Credentials(n.to_owned()),
            Sealed::RingKey(id) => SealedOwned::RingKey(id),
            Sealed::Ec2Secret(a) => SealedOwned::Ec2Secret(a.to_owned()),
        }
    }
}

impl SealedOwned {
    fn borrowed(&self) -> Sealed<'_> {
        match self {
            SealedOwned::Credentials(n) => Sealed::Credentials(n),
            SealedOwned::RingKey(id) => Sealed::RingKey(*id),
            SealedOwned::Ec2Secret(a) => Sealed::Ec2Secret(a),
        }
    }
}

/// An account's OAuth2 grant as stored, held for one refresh: no other gateway of the
/// store reads or refreshes it until `finish` or `release` (or the drop of this).
pub struct GrantLock {
    /// The sealed credentials: the refresh token to use.
    pub credentials: Option<Vec<u8>>,
    /// The sealed access token another refresh left, and until when it is good (Unix
    /// seconds).
    pub access: Option<(Vec<u8>, u64)>,
    held: Held,
}

enum Held {
    Embedded {
        store: Arc<sqlite::Store>,
        name: String,
    },
    Shared(Box<postgres::GrantLock>),
}

impl GrantLock {
    /// Keeps what a refresh gave: the renewed credentials when the provider rotated the
    /// refresh token, and the sealed access token with its end; then lets go.
    pub async fn finish(
        self,
        renewed: Option<Vec<u8>>,
        access: Vec<u8>,
        until: u64,
    ) -> Result<(), StoreError> {
        match self.held {
            Held::Embedded { store, name } => {
                embedded(&store, move |s| {
                    s.finish_grant(&name, renewed.as_deref(), &access, until)
                })
                .await
            }
            Held::Shared(lock) => lock.finish(renewed.as_deref(), &access, until).await,
        }
    }

    /// Lets go, changing nothing.
    pub async fn release(self) {
        if let Held::Shared(lock) = self.held {
            lock.release().await;
        }
    }
}

/// The current time in Unix microseconds: when tokens were issued and revoked.
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Application credentials, and EC2 credentials, a user may have at once (each kind).
pub const MAX_CREDENTIALS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("account {0:?} already exists")]
    AccountExists(String),
    #[error("the user has an application credential named {0:?} already")]
    AppCredentialExists(String),
    #[error("storage id {0:?} is already taken")]
    StorageIdTaken(String),
    #[error("no account {0:?}")]
    NoAccount(String),
    #[error("no user {0:?}")]
    NoUser(String),
    #[error("account {account:?} still has {users} user(s); delete them first")]
    AccountHasUsers { account: String, users: usize },
    #[error(
        "the store at {path} was written by a newer swiftgate (schema {found}, this one knows {known})"
    )]
    SchemaTooNew {
        path: String,
        found: usize,
        known: usize,
    },
    #[error("store error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("shared store error: {}", with_causes(.0))]
    Postgres(tokio_postgres::Error),
    #[error("the shared store cannot be reached: {0}")]
    Unreachable(String),
    #[error("the store's task failed: {0}")]
    Task(String),
    #[error("the token key ring changed meanwhile (another rotation?); run it again")]
    RingChanged,
    #[error("{0}; nothing was changed")]
    Ring(String),
    #[error("the target store is not empty: it holds accounts, users or token keys already")]
    NotEmpty,
    #[error(
        "account {0:?} would be on the embedded object store (backend \"local\"), which lives \
         on one machine; a shared store holds accounts on [[backend]] clusters only"
    )]
    EmbeddedOnShared(String),
    #[error(
        "too many links are under way{}; try again in a few minutes",
        if *of_account { " for this account" } else { "" }
    )]
    TooManyLinks { of_account: bool },
    #[error(
        "the user has {MAX_CREDENTIALS} {0} credentials, as many as a user may; delete one first"
    )]
    TooManyCredentials(&'static str),
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Damaged(#[from] salvage::Damage),
    #[error("{path} is in use by another swiftgate process{}; stop it first", pid_of(*.pid))]
    InUse { path: String, pid: Option<u32> },
}

fn pid_of(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

/// The lock of a data directory, held by the one process that serves or salvages it: a
/// second gateway would sweep the first one's uploads under way as leftovers, and a
/// salvage renames the databases a gateway has open. The lock is on the directory itself
/// (no file in it can be removed to lift it); `DIR/swiftgate.lock` holds the holder's pid,
/// for the message of the next one. The system releases it when its process ends,
/// however it ends.
#[derive(Debug)]
pub struct DataDirLock {
    _dir: std::fs::File,
}

impl DataDirLock {
    /// Takes the lock of `data_dir`, creating the directory (its owner's only) if needed.
    pub fn take(data_dir: &Path) -> Result<DataDirLock, StoreError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let open_error = |path: &Path, source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| open_error(data_dir, e))?;
        let dir = std::fs::File::open(data_dir).map_err(|e| open_error(data_dir, e))?;
        let pid_file = data_dir.join("swiftgate.lock");
        match dir.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
                return Err(StoreError::InUse {
                    path: data_dir.display().to_string(),
                    pid: pid.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(open_error(data_dir, e)),
        }
        // a link in its place is not followed: what it points to is not the gateway's
        let no_follow = i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or_default();
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(no_follow)
            .open(&pid_file)
            .and_then(|mut f| {
                use std::io::Write;
                writeln!(f, "{}", std::process::id())
            });
        Ok(DataDirLock { _dir: dir })
    }
}

impl StoreError {
    pub fn status(&self) -> StatusCode {
        match self {
            StoreError::AccountExists(_)
            | StoreError::AppCredentialExists(_)
            | StoreError::StorageIdTaken(_)
            | StoreError::AccountHasUsers { .. }
            | StoreError::RingChanged
            | StoreError::TooManyCredentials(_)
            | StoreError::NotEmpty
            | StoreError::Ring(_) => StatusCode::CONFLICT,
            StoreError::NoAccount(_) | StoreError::NoUser(_) => StatusCode::NOT_FOUND,
            StoreError::EmbeddedOnShared(_) => StatusCode::BAD_REQUEST,
            StoreError::Sqlite(e) if is_busy(e) => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::Sqlite(e) if is_full(e) => StatusCode::INSUFFICIENT_STORAGE,
            StoreError::Unreachable(_) | StoreError::TooManyLinks { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            StoreError::Postgres(e) if e.is_closed() || e.as_db_error().is_none() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error and what caused it, as one line ("error performing TLS handshake: invalid
/// peer certificate: UnknownIssuer").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !out.ends_with(&said) {
            out.push_str(": ");
            out.push_str(&said);
        }
        cause = c.source();
    }
    out
}

/// The disk under the database is full (SQLite's `SQLITE_FULL`).
pub fn is_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// Another connection holds the database (`SQLITE_BUSY`, `SQLITE_LOCKED`).
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Salvages the embedded identity store of `data_dir` when it is damaged (see
/// [`salvage`]): `None` when it is sound or absent.
pub fn salvage_embedded(data_dir: &Path) -> Result<Option<salvage::Salvaged>, StoreError> {
    sqlite::Store::salvage(data_dir)
}

/// What one gateway tells the others on a shared store about logins, so that they throttle
/// as one: a failure, or a success that cleared failures or made an address the owner's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LoginEvent {
    Failed {
        user: String,
        source: std::net::IpAddr,
    },
    Succeeded {
        user: String,
        source: std::net::IpAddr,
    },
}

/// The store: embedded, or shared by several gateways.
pub enum Store {
    Embedded(Arc<sqlite::Store>),
    Shared(postgres::Store),
}

/// Runs a call of the embedded store off the async threads.
async fn embedded<T: Send + 'static>(
    store: &Arc<sqlite::Store>,
    f: impl FnOnce(&sqlite::Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

impl Store {
    /// The shared store when one is configured, else the embedded one in `data_dir`.
    pub async fn open(shared: Option<&SharedStore>, data_dir: &Path) -> Result<Store, StoreError> {
        match shared {
            Some(s) => Ok(Store::Shared(postgres::Store::open(s).await?)),
            None => {
                let dir = data_dir.to_owned();
                let store = tokio::task::spawn_blocking(move || sqlite::Store::open(&dir))
                    .await
                    .map_err(|e| StoreError::Task(e.to_string()))??;
                Ok(Store::Embedded(Arc::new(store)))
            }
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Shared(_))
    }

    /// Changes when another process (the CLI, another gateway) has written.
    pub async fn data_version(&self) -> Result<i64, StoreError> {
        match self {
            Store::Embedded(s) => embedded(s, |s| s.data_version()).await,
            Store::Shared(s) => s.data_version().await,
        }
    }

    /// Woken at once when another gateway has written; `None` for the embedded store,
    /// whose other writer (the CLI) is polled for.
    pub fn changed(&self) -> Option<Arc<tokio::sync::Notify>> {
        match self {
            Store::Embedded(_) => None,
            Store::Shared(s) => Some(s.changed()),
        }
    }

    /// Tells the other gateways of a login event; nothing on the embedded store.
    pub async fn announce(&self, event: &LoginEvent) -> Result<(), StoreError> {
        match self {
            Store::Embedded(_) => Ok(()),
            Store::Shared(s) => s.announce(event).await,
        }
    }

    /// The other gateways' login events, once: `None` on the embedded store, or when
    /// taken before.
    pub fn login_events(&self) -> Option<tokio::sync::mpsc::Receiver<LoginEvent>> {
        match self {
            Store::Embedded(_) => None,
            Store::Shared(s) => s.login_events(),
        }
    }

    /// Keeps a new application credential; `AppCredentialExists` when its user has one
    /// of the same name.
    pub async fn put_app_credential(&self, c: &AppCredentialRecord) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => {
                let c = c.clone();
                embedded(s, move |s| s.put_app_credential(&c)).await
            }
            Store::Shared(s) => s.put_app_credential(c).await,
        }
    }

    /// Keeps a new EC2 credential.
    pub async fn put_ec2_credential(&self, c: &Ec2CredentialRecord) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => {
                let c = c.clone();
                embedded(s, move |s| s.put_ec2_credential(&c)).await
            }
            Store::Shared(s) => s.put_ec2_credential(c).await,
        }
    }

    /// Deletes an EC2 credential of a user; whether there was one.
    pub async fn delete_ec2_credential(
        &self,
        user_id: i64,
        access: &str,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(s) => {
                let access = access.to_owned();
                embedded(s, move |s| s.delete_ec2_credential(user_id, &access)).await
            }
            Store::Shared(s) => s.delete_ec2_credential(user_id, access).await,
        }
    }

    /// Revokes one token, by its audit id, until it would have expired (Unix seconds).
    pub async fn revoke_token(&self, audit_id: &str, until: u64) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => {
                let id = audit_id.to_owned();
                embedded(s, move |s| s.revoke_token(&id, until)).await
            }
            Store::Shared(s) => s.revoke_token(audit_id, until).await,
        }
    }

    /// Deletes an application credential of a user; whether there was one.
    pub async fn delete_app_credential(&self, user_id: i64, id: &str) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(s) => {
                let id = id.to_owned();
                embedded(s, move |s| s.delete_app_credential(user_id, &id)).await
            }
            Store::Shared(s) => s.delete_app_credential(user_id, id).await,
        }
    }

    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        match self {
            Store::Embedded(s) => embedded(s, |s| s.snapshot()).await,
            Store::Shared(s) => s.snapshot().await,
        }
    }

    pub async fn create_account(
        &self,
        name: &str,
        storage_id: &str,
        backend: &str,
    ) -> Result<AccountRecord, StoreError> {
        match self {
            Store::Embedded(s) => {
                let (n, i, b) = (name.to_owned(), storage_id.to_owned(), backend.to_owned());
                embedded(s, move |s| s.create_account(&n, &i, &b)).await
            }
            Store::Shared(_) if backend == EMBEDDED_BACKEND => {
                Err(StoreError::EmbeddedOnShared(name.to_owned()))
            }
            Store::Shared(s) => s.create_account(name, storage_id, backend).await,
        }
    }

    /// Sets an account's sealed upstream credentials anew (an admin's change).
    /// Replaces a sealed value with `sealed` only if it is still `expected` (a refresh or
    /// another gateway may have changed it meanwhile); whether it was.
    pub async fn reseal(
        &self,
        what: Sealed<'_>,
        expected: &[u8],
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        match self {
            Store::Embedded(s) => {
                let what = what.owned();
                let (e, c) = (expected.to_vec(), sealed.to_vec());
                embedded(s, move |s| s.reseal(&what.borrowed(), &e, &c)).await
            }
            Store::Shared(s) => s.reseal(&what, expected, sealed).await,
        }
    }

    pub async fn set_credentials(&self, name: &str, sealed: &[u8]) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => {
                let (n, c) = (name.to_owned(), sealed.to_vec());
                embedded(s, move |s| s.set_credentials(&n, &c)).await
            }
            Store::Shared(s) => s.set_credentials(name, sealed).await,
        }
    }

    /// An account's OAuth2 grant, held for a refresh: on a shared store, a gateway
    /// waits here while another one refreshes, and then finds the access token it left.
    pub async fn lock_grant(&self, name: &str) -> Result<GrantLock, StoreError> {
        match self {
            Store::Embedded(s) => {
                let n = name.to_owned();
                let (credentials, access) = embedded(s, move |s| s.grant(&n)).await?;
                Ok(GrantLock {
                    credentials,
                    access,
                    held: Held::Embedded {
                        store: s.clone(),
                        name: name.to_owned(),
                    },
                })
            }
            Store::Shared(s) => {
                let (lock, credentials, access) = s.lock_grant(name).await?;
                Ok(GrantLock {
                    credentials,
                    access,
                    held: Held::Shared(Box::new(lock)),
                })
            }
        }
    }

    /// Keeps a link under way; `TooManyLinks` when as many as `limits` allow are
    /// waiting already (the count and the insert are one step, on every gateway).
    pub async fn put_link(
        &self,
        state_hash: &[u8],
        link: &LinkRecord,
        limits: LinkLimits,
    ) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => {
                let (h, l) = (state_hash.to_vec(), link.clone());
                embedded(s, move |s| s.put_link(&h, &l, limits)).await
            }
            Store::Shared(s) => s.put_link(state_hash, link, limits).await,
        }
    }

    /// The link under way for a `state`'s hash, once, while it has not expired.
    pub async fn take_link(&self, state_hash: &[u8]) -> Result<Option<LinkRecord>, StoreError> {
        match self {
            Store::Embedded(s) => {
                let h = state_hash.to_vec();
                embedded(s, move |s| s.take_link(&h)).await
            }
            Store::Shared(s) => s.take_link(state_hash).await,
        }
    }

    pub async fn account(&self, name: &str) -> Result<Option<AccountRecord>, StoreError> {
        match self {
            Store::Embedded(s) => {
                let n = name.to_owned();
                embedded(s, move |s| s.account(&n)).await
            }
            Store::Shared(s) => s.account(name).await,
        }
    }

    pub async fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        Ok(self.snapshot().await?.accounts)
    }

    /// Deletes an account that has no users left.
    pub async fn delete_account(&self, name: &str) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => {
                let n = name.to_owned();
                embedded(s, move |s| s.delete_account(&n)).await
            }
            Store::Shared(s) => s.delete_account(name).await,
        }
    }

    /// Users of one account, or of all accounts, with their account names.
    pub async fn users(
        &self,
        account: Option<&str>,
    ) -> Result<Vec<(String, UserRecord)>, StoreError> {
        let snap = self.snapshot().await?;
        if let Some(a) = account
            && !snap.accounts.iter().any(|acc| acc.name == a)
        {
            return Err(StoreError::NoAccount(a.into()));
        }
        let mut out: Vec<(String, UserRecord)> = snap
            .users
            .into_iter()
            .filter_map(|u| {
                let acc = snap.accounts.iter().find(|a| a.id == u.account_id)?;
                Some((acc.name.clone(), u))
            })
            .filter(|(a, _)| account.is_none_or(|want| want == a))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1.name).cmp(&(&b.0, &b.1.name)));
        Ok(out)
    }

    /// Creates a user, or replaces an existing user's key and groups (Swauth's PUT).
    /// Replacing revokes the user's tokens. Returns the record and whether it was created.
    pub async fn put_user(
        &self,
        account: &str,
        name: &str,
        key_hash: &str,
        groups: &[String],
    ) -> Result<(UserRecord, bool), StoreError> {
        match self {
            Store::Embedded(s) => {
                let (a, n, k, g) = (
                    account.to_owned(),
                    name.to_owned(),
                    key_hash.to_owned(),
                    groups.to_vec(),
                );
                embedded(s, move |s| s.put_user(&a, &n, &k, &g)).await
            }
            Store::Shared(s) => s.put_user(account, name, key_hash, groups).await,
        }
    }

    pub async fn user(&self, account: &str, name: &str) -> Result<UserRecord, StoreError> {
        match self {
            Store::Embedded(s) => {
                let (a, n) = (account.to_owned(), name.to_owned());
                embedded(s, move |s| s.user(&a, &n)).await
            }
            Store::Shared(s) => s.user(account, name).await,
        }
    }

    /// Sets a new key and revokes every token of the user.
    pub async fn set_key(
        &self,
        account: &str,
        name: &str,
        key_hash: &str,
    ) -> Result<UserRecord, StoreError> {
        let user = self.user(account, name).await?;
        let (user, _) = self.put_user(account, name, key_hash, &user.groups).await?;
        Ok(user)
    }

    pub async fn delete_user(&self, account: &str, name: &str) -> Result<UserRecord, StoreError> {
        match self {
            Store::Embedded(s) => {
                let (a, n) = (account.to_owned(), name.to_owned());
                embedded(s, move |s| s.delete_user(&a, &n)).await
            }
            Store::Shared(s) => s.delete_user(account, name).await,
        }
    }

    pub async fn count_users(&self) -> Result<i64, StoreError> {
        match self {
            Store::Embedded(s) => embedded(s, |s| s.count_users()).await,
            Store::Shared(s) => s.count_users().await,
        }
    }

    /// Revokes every token of a user issued until now; returns when (Unix µs).
    pub async fn revoke_tokens(&self, user_id: i64) -> Result<u64, StoreError> {
        match self {
            Store::Embedded(s) => embedded(s, move |s| s.revoke_tokens(user_id)).await,
            Store::Shared(s) => s.revoke_tokens(user_id).await,
        }
    }

    /// Copies a whole embedded store, ids and all, into this shared store, which must be
    /// empty.
    pub async fn import(&self, snap: &Snapshot) -> Result<(), StoreError> {
        match self {
            Store::Embedded(_) => Err(StoreError::Unreachable(
                "only a shared store takes an import".into(),
            )),
            Store::Shared(s) => s.import(snap).await,
        }
    }

    /// Adds the first keys of the token ring, unless another process added some first.
    pub async fn start_ring(&self, keys: &[RingKey]) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => {
                let k = keys.to_vec();
                embedded(s, move |s| s.start_ring(&k)).await
            }
            Store::Shared(s) => s.start_ring(keys).await,
        }
    }

    /// Rotates the ring as it was in `seen`: its staged key becomes the primary, the
    /// primary a secondary, `staged` the new staged key; the oldest secondaries go so
    /// that `keep` keys stay. `RingChanged` when the ring is no longer `seen`.
    pub async fn rotate_ring(
        &self,
        seen: &[RingKey],
        staged: &RingKey,
        keep: usize,
    ) -> Result<(), StoreError> {
        match self {
            Store::Embedded(s) => {
                let (seen, staged) = (seen.to_vec(), staged.clone());
                embedded(s, move |s| s.rotate_ring(&seen, &staged, keep)).await
            }
            Store::Shared(s) => s.rotate_ring(seen, staged, keep).await,
        }
    }
}

/// The ring after a rotation: what changes state, what goes.
pub(crate) struct Rotation {
    pub to_primary: i64,
    pub to_secondary: Option<i64>,
    pub dropped: Vec<i64>,
}

/// Plans a rotation of `ring` (ids ascending by age) keeping `keep` keys in all.
pub(crate) fn plan_rotation(ring: &[RingKey], keep: usize) -> Result<Rotation, StoreError> {
    let staged = ring
        .iter()
        .find(|k| k.state == KeyState::Staged)
        .ok_or(StoreError::RingChanged)?;
    let primary = ring.iter().find(|k| k.state == KeyState::Primary);
    let mut secondaries: Vec<i64> = ring
        .iter()
        .filter(|k| k.state == KeyState::Secondary)
        .map(|k| k.id)
        .chain(primary.map(|k| k.id))
        .collect();
    secondaries.sort_unstable();
    // the new staged key and the new primary stay besides the secondaries
    let room = keep.saturating_sub(2).max(1);
    let dropped = secondaries[..secondaries.len().saturating_sub(room)].to_vec();
    Ok(Rotation {
        to_primary: staged.id,
        to_secondary: primary.map(|k| k.id),
        dropped,
    })
}

/// Copies the database at `from` to `to` page by page (SQLite's online backup: writers
/// go on meanwhile, and the copy is the database as one of its transactions left it).
pub fn copy_database(from: &Path, to: &Path) -> Result<(), String> {
    // never made if missing
    let src = rusqlite::Connection::open_with_flags(
        from,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("{}: {e}", from.display()))?;
    src.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let mut dst = rusqlite::Connection::open(to).map_err(|e| format!("{}: {e}", to.display()))?;
    {
        let backup = rusqlite::backup::Backup::new(&src, &mut dst)
            .map_err(|e| format!("backing up {}: {e}", from.display()))?;
        backup
            .run_to_completion(1024, std::time::Duration::from_millis(5), None)
            .map_err(|e| format!("backing up {}: {e}", from.display()))?;
    }
    // one file, without a WAL beside it
    dst.pragma_update(None, "journal_mode", "DELETE")
        .map_err(|e| e.to_string())?;
    Ok(())
}
