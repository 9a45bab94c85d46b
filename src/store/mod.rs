//! Where accounts, users and tokens persist. Records here are what is stored:
//! user keys only as argon2id PHC strings, tokens only as SHA-256 digests, upstream
//! credentials only sealed.

mod sqlite;

pub use sqlite::Store;

use http::StatusCode;

pub const ADMIN_GROUP: &str = ".admin";
pub const RESELLER_ADMIN_GROUP: &str = ".reseller_admin";

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub digest: [u8; 32],
    pub user_id: i64,
    /// Unix seconds.
    pub expires_at: u64,
    /// The SHA-256 of the client certificate it works with only, when bound to one.
    pub bound_to: Option<[u8; 32]>,
}

/// Everything the gateway keeps in memory, read in one transaction.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub accounts: Vec<AccountRecord>,
    pub users: Vec<UserRecord>,
    pub tokens: Vec<TokenRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("account {0:?} already exists")]
    AccountExists(String),
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
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
}

impl StoreError {
    pub fn status(&self) -> StatusCode {
        match self {
            StoreError::AccountExists(_)
            | StoreError::StorageIdTaken(_)
            | StoreError::AccountHasUsers { .. } => StatusCode::CONFLICT,
            StoreError::NoAccount(_) | StoreError::NoUser(_) => StatusCode::NOT_FOUND,
            StoreError::Sqlite(e) if is_busy(e) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}
