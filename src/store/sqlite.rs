//! The embedded store: one SQLite database in WAL mode. The server and the CLI
//! open it at the same time; the server notices the CLI's writes through
//! `PRAGMA data_version` and reloads.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{
    AccountRecord, AppCredentialRecord, Ec2CredentialRecord, KeyState, LinkLimits, LinkRecord,
    RingKey, Snapshot, StoreError, UserRecord, groups_of, groups_text, now_micros, plan_rotation,
};

/// Schema migrations, applied in order; `PRAGMA user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    storage_id  TEXT NOT NULL UNIQUE,
    backend     TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL,
    groups      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (account_id, name)
);
CREATE TABLE tokens (
    digest      BLOB PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX tokens_by_user ON tokens(user_id);
"#,
    r#"
ALTER TABLE accounts ADD COLUMN credentials BLOB;
ALTER TABLE accounts ADD COLUMN credentials_version INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
ALTER TABLE tokens ADD COLUMN bound_to BLOB;
"#,
    r#"
DROP TABLE tokens;
ALTER TABLE users ADD COLUMN tokens_after INTEGER NOT NULL DEFAULT 0;
CREATE TABLE token_keys (
    id          INTEGER PRIMARY KEY,
    key         BLOB NOT NULL,
    sealed      INTEGER NOT NULL,
    state       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
"#,
    r#"
ALTER TABLE accounts ADD COLUMN access BLOB;
ALTER TABLE accounts ADD COLUMN access_until INTEGER NOT NULL DEFAULT 0;
CREATE TABLE link_states (
    state_hash   BLOB PRIMARY KEY,
    account      TEXT NOT NULL,
    verifier     BLOB NOT NULL,
    redirect_uri TEXT NOT NULL,
    until        INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE app_credentials (
    id          TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    roles       TEXT NOT NULL,
    expires_at  INTEGER,
    created_at  INTEGER NOT NULL,
    UNIQUE (user_id, name)
);
CREATE TABLE revoked_tokens (
    audit_id    TEXT PRIMARY KEY,
    until       INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE ec2_credentials (
    access      TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    secret      BLOB NOT NULL,
    sealed      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
"#,
];

pub struct Store {
    conn: Mutex<Connection>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl Store {
    /// Opens (creating if needed) `DIR/swiftgate.db` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Open {
            path: data_dir.display().to_string(),
            source: e,
        })?;
        restrict_permissions(data_dir);
        let path = data_dir.join("swiftgate.db");
        let conn = Store::open_checked(&path).map_err(|e| match e {
            StoreError::Sqlite(e) if super::salvage::is_damage(&e) => damage(&path, e.to_string()),
            e => e,
        })?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// Salvages `DIR/swiftgate.db` when it is damaged (`super::salvage`): `None` when it
    /// is sound or absent. Every token issued before is made void (the ring's keys are
    /// dropped, and a new ring is made at the next start): a revocation may be among what
    /// was lost, and a token it revoked must not open again.
    pub fn salvage(data_dir: &Path) -> Result<Option<super::salvage::Salvaged>, StoreError> {
        let path = data_dir.join("swiftgate.db");
        if !path.exists() || super::salvage::is_sound(&path) {
            return Ok(None);
        }
        let (kept, mut salvaged) = super::salvage::rebuild(&path, |fresh| {
            let conn = Store::open_checked(fresh)?;
            let salvaged = super::salvage::copy_rows(&path, &conn)?;
            conn.execute("DELETE FROM token_keys", [])?;
            Ok(salvaged)
        })?;
        salvaged.kept_as = kept.unwrap_or_default();
        Ok(Some(salvaged))
    }

    /// The connection to a sound database at `path`, migrated to this schema.
    fn open_checked(path: &Path) -> Result<Connection, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // commits are durable: an acknowledged account or user change survives a power cut
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        if let Err(detail) = super::salvage::quick_check(&conn)? {
            return Err(damage(path, detail));
        }
        migrate(&mut conn, path)?;
        Ok(conn)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: the
        // transaction rolls back on drop. Keep serving.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes when another connection (another process) commits.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    pub fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let accounts = {
            let mut st = tx.prepare(
                "SELECT id, name, storage_id, backend, credentials, credentials_version, created_at FROM accounts ORDER BY name",
            )?;
            st.query_map([], account_row)?
                .collect::<Result<Vec<_>, _>>()?
        };
        let users = {
            let mut st = tx.prepare(
                "SELECT id, account_id, name, key_hash, groups, tokens_after FROM users ORDER BY name",
            )?;
            st.query_map([], user_row)?.collect::<Result<Vec<_>, _>>()?
        };
        let keys = ring(&tx)?;
        let app_credentials = {
            let mut st = tx.prepare(
                "SELECT id, user_id, name, description, secret_hash, roles, expires_at, created_at \
                 FROM app_credentials ORDER BY id",
            )?;
            st.query_map([], |r| {
                let roles: String = r.get(5)?;
                Ok(AppCredentialRecord {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    name: r.get(2)?,
                    description: r.get(3)?,
                    secret_hash: r.get(4)?,
                    roles: groups_of(&roles),
                    expires_at: r.get(6)?,
                    created_at: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        let ec2_credentials = {
            let mut st = tx.prepare(
                "SELECT access, user_id, secret, sealed, created_at FROM ec2_credentials \
                 ORDER BY access",
            )?;
            st.query_map([], |r| {
                Ok(Ec2CredentialRecord {
                    access: r.get(0)?,
                    user_id: r.get(1)?,
                    secret: r.get(2)?,
                    sealed: r.get(3)?,
                    created_at: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        let revoked = {
            let mut st = tx.prepare("SELECT audit_id FROM revoked_tokens WHERE until > ?1")?;
            st.query_map([now()], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?
        };
        tx.commit()?;
        Ok(Snapshot {
            accounts,
            users,
            keys,
            app_credentials,
            ec2_credentials,
            revoked,
        })
    }

    pub fn put_ec2_credential(&self, c: &Ec2CredentialRecord) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        credentials_below_cap(&tx, "ec2_credentials", c.user_id, "EC2")?;
        tx.execute(
            "INSERT INTO ec2_credentials (access, user_id, secret, sealed, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![c.access, c.user_id, c.secret, c.sealed, c.created_at],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn delete_ec2_credential(&self, user_id: i64, access: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM ec2_credentials WHERE access = ?1 AND user_id = ?2",
            params![access, user_id],
        )? > 0)
    }

    pub fn revoke_token(&self, audit_id: &str, until: u64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM revoked_tokens WHERE until <= ?1", [now()])?;
        tx.execute(
            "INSERT OR IGNORE INTO revoked_tokens (audit_id, until) VALUES (?1, ?2)",
            params![audit_id, until],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn put_app_credential(&self, c: &AppCredentialRecord) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let taken: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM app_credentials WHERE user_id = ?1 AND name = ?2)",
            params![c.user_id, c.name],
            |r| r.get(0),
        )?;
        if taken {
            return Err(StoreError::AppCredentialExists(c.name.clone()));
        }
        credentials_below_cap(&tx, "app_credentials", c.user_id, "application")?;
        tx.execute(
            "INSERT INTO app_credentials (id, user_id, name, description, secret_hash, roles, \
             expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                c.id,
                c.user_id,
                c.name,
                c.description,
                c.secret_hash,
                groups_text(&c.roles),
                c.expires_at,
                c.created_at
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn delete_app_credential(&self, user_id: i64, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM app_credentials WHERE id = ?1 AND user_id = ?2",
            params![id, user_id],
        )? > 0)
    }

    pub fn create_account(
        &self,
        name: &str,
        storage_id: &str,
        backend: &str,
    ) -> Result<AccountRecord, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if find_account(&tx, name)?.is_some() {
            return Err(StoreError::AccountExists(name.into()));
        }
        let taken: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM accounts WHERE storage_id = ?1)",
            [storage_id],
            |r| r.get(0),
        )?;
        if taken {
            return Err(StoreError::StorageIdTaken(storage_id.into()));
        }
        let created_at = now();
        tx.execute(
            "INSERT INTO accounts (name, storage_id, backend, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![name, storage_id, backend, created_at],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(AccountRecord::created(
            id, name, storage_id, backend, created_at,
        ))
    }

    /// Sets an account's sealed upstream credentials anew (an admin's change); an
    /// access token of the credentials before goes with them.
    /// Replaces a sealed value with `sealed` only if it is still `expected` (what a
    /// re-sealing read); whether it was.
    pub fn reseal(
        &self,
        what: &super::Sealed<'_>,
        expected: &[u8],
        sealed: &[u8],
    ) -> Result<bool, StoreError> {
        let conn = self.conn();
        let changed = match what {
            super::Sealed::Credentials(name) => conn.execute(
                "UPDATE accounts SET credentials = ?2, credentials_version = credentials_version + 1, \
                 access = NULL, access_until = 0 WHERE name = ?1 AND credentials = ?3",
                params![name, sealed, expected],
            )?,
            super::Sealed::RingKey(id) => conn.execute(
                "UPDATE token_keys SET key = ?2 WHERE id = ?1 AND sealed = 1 AND key = ?3",
                params![id, sealed, expected],
            )?,
            super::Sealed::Ec2Secret(access) => conn.execute(
                "UPDATE ec2_credentials SET secret = ?2 WHERE access = ?1 AND sealed = 1 \
                 AND secret = ?3",
                params![access, sealed, expected],
            )?,
        };
        Ok(changed == 1)
    }

    pub fn set_credentials(&self, name: &str, sealed: &[u8]) -> Result<(), StoreError> {
        let changed = self.conn().execute(
            "UPDATE accounts SET credentials = ?2, credentials_version = credentials_version + 1, \
             access = NULL, access_until = 0 WHERE name = ?1",
            params![name, sealed],
        )?;
        if changed == 0 {
            return Err(StoreError::NoAccount(name.into()));
        }
        Ok(())
    }

    /// An account's sealed credentials, and the sealed access token a refresh left.
    pub fn grant(&self, name: &str) -> Result<super::GrantState, StoreError> {
        let found = self
            .conn()
            .query_row(
                "SELECT credentials, access, access_until FROM accounts WHERE name = ?1",
                [name],
                |r| {
                    Ok((
                        r.get::<_, Option<Vec<u8>>>(0)?,
                        r.get::<_, Option<Vec<u8>>>(1)?,
                        r.get::<_, u64>(2)?,
                    ))
                },
            )
            .optional()?;
        let (credentials, access, until) =
            found.ok_or_else(|| StoreError::NoAccount(name.into()))?;
        Ok((credentials, access.map(|a| (a, until))))
    }

    /// Keeps what a refresh of an account's grant gave: its renewed credentials (the
    /// same credentials, so their version stays) and its access token.
    pub fn finish_grant(
        &self,
        name: &str,
        renewed: Option<&[u8]>,
        access: &[u8],
        until: u64,
    ) -> Result<(), StoreError> {
        let changed = self.conn().execute(
            "UPDATE accounts SET credentials = COALESCE(?2, credentials), access = ?3, \
             access_until = ?4 WHERE name = ?1",
            params![name, renewed, access, until],
        )?;
        if changed == 0 {
            return Err(StoreError::NoAccount(name.into()));
        }
        Ok(())
    }

    pub fn put_link(
        &self,
        state_hash: &[u8],
        link: &LinkRecord,
        limits: LinkLimits,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM link_states WHERE until <= ?1", [now()])?;
        let (total, of_account): (usize, usize) = tx.query_row(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE account = ?1) FROM link_states",
            [&link.account],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if let Some(refused) = limits.refuses(total, of_account) {
            return Err(refused);
        }
        tx.execute(
            "INSERT INTO link_states (state_hash, account, verifier, redirect_uri, until) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                state_hash,
                link.account,
                link.verifier,
                link.redirect_uri,
                link.until
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn take_link(&self, state_hash: &[u8]) -> Result<Option<LinkRecord>, StoreError> {
        let found = self
            .conn()
            .query_row(
                "DELETE FROM link_states WHERE state_hash = ?1 \
                 RETURNING account, verifier, redirect_uri, until",
                [state_hash],
                |r| {
                    Ok(LinkRecord {
                        account: r.get(0)?,
                        verifier: r.get(1)?,
                        redirect_uri: r.get(2)?,
                        until: r.get(3)?,
                    })
                },
            )
            .optional()?;
        Ok(found.filter(|l| l.until > now()))
    }

    pub fn account(&self, name: &str) -> Result<Option<AccountRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        find_account(&tx, name)
    }

    /// Deletes an account that has no users left.
    pub fn delete_account(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let account = find_account(&tx, name)?.ok_or_else(|| StoreError::NoAccount(name.into()))?;
        let users: usize = tx.query_row(
            "SELECT COUNT(*) FROM users WHERE account_id = ?1",
            [account.id],
            |r| r.get(0),
        )?;
        if users > 0 {
            return Err(StoreError::AccountHasUsers {
                account: name.into(),
                users,
            });
        }
        tx.execute("DELETE FROM accounts WHERE id = ?1", [account.id])?;
        tx.commit()?;
        Ok(())
    }

    /// Creates a user, or replaces an existing user's key and groups (Swauth's PUT).
    /// Replacing revokes the user's tokens. Returns the record and whether it was created.
    pub fn put_user(
        &self,
        account: &str,
        name: &str,
        key_hash: &str,
        groups: &[String],
    ) -> Result<(UserRecord, bool), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let acc =
            find_account(&tx, account)?.ok_or_else(|| StoreError::NoAccount(account.into()))?;
        let groups_json = groups_text(groups);
        let tokens_after = now_micros();
        let existing = find_user(&tx, acc.id, name)?;
        let (id, created, tokens_after) = match existing {
            Some(u) => {
                let after = tx.query_row(
                    "UPDATE users SET key_hash = ?1, groups = ?2, tokens_after = MAX(tokens_after + 1, ?3) \
                     WHERE id = ?4 RETURNING tokens_after",
                    params![key_hash, groups_json, tokens_after, u.id],
                    |r| r.get(0),
                )?;
                (u.id, false, after)
            }
            None => {
                tx.execute(
                    "INSERT INTO users (account_id, name, key_hash, groups, created_at, tokens_after) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![acc.id, name, key_hash, groups_json, now(), tokens_after],
                )?;
                (tx.last_insert_rowid(), true, tokens_after)
            }
        };
        tx.commit()?;
        Ok((
            UserRecord {
                id,
                account_id: acc.id,
                name: name.into(),
                key_hash: key_hash.into(),
                groups: groups.to_vec(),
                tokens_after,
            },
            created,
        ))
    }

    pub fn user(&self, account: &str, name: &str) -> Result<UserRecord, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let acc =
            find_account(&tx, account)?.ok_or_else(|| StoreError::NoAccount(account.into()))?;
        find_user(&tx, acc.id, name)?.ok_or_else(|| StoreError::NoUser(format!("{account}:{name}")))
    }

    pub fn delete_user(&self, account: &str, name: &str) -> Result<UserRecord, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let acc =
            find_account(&tx, account)?.ok_or_else(|| StoreError::NoAccount(account.into()))?;
        let user = find_user(&tx, acc.id, name)?
            .ok_or_else(|| StoreError::NoUser(format!("{account}:{name}")))?;
        tx.execute("DELETE FROM users WHERE id = ?1", [user.id])?;
        tx.commit()?;
        Ok(user)
    }

    pub fn count_users(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
    }

    /// Revokes every token of a user issued until now; returns when (Unix µs).
    pub fn revoke_tokens(&self, user_id: i64) -> Result<u64, StoreError> {
        // always forward, also past a time set by a clock ahead of this one
        let at: Option<u64> = self
            .conn()
            .query_row(
                "UPDATE users SET tokens_after = MAX(tokens_after + 1, ?1) WHERE id = ?2 \
                 RETURNING tokens_after",
                params![now_micros(), user_id],
                |r| r.get(0),
            )
            .optional()?;
        at.ok_or_else(|| StoreError::NoUser(format!("user id {user_id}")))
    }

    pub fn start_ring(&self, keys: &[RingKey]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        if ring(&tx)?.is_empty() {
            for k in keys {
                insert_key(&tx, k)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn rotate_ring(
        &self,
        seen: &[RingKey],
        staged: &RingKey,
        keep: usize,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current = ring(&tx)?;
        if current != seen {
            return Err(StoreError::RingChanged);
        }
        let plan = plan_rotation(&current, keep)?;
        let set = "UPDATE token_keys SET state = ?1 WHERE id = ?2";
        if let Some(id) = plan.to_secondary {
            tx.execute(set, params![KeyState::Secondary.as_str(), id])?;
        }
        tx.execute(set, params![KeyState::Primary.as_str(), plan.to_primary])?;
        for id in plan.dropped {
            tx.execute("DELETE FROM token_keys WHERE id = ?1", [id])?;
        }
        insert_key(&tx, staged)?;
        tx.commit()?;
        Ok(())
    }
}

fn ring(tx: &Transaction<'_>) -> Result<Vec<RingKey>, StoreError> {
    let mut st =
        tx.prepare("SELECT id, key, sealed, state, created_at FROM token_keys ORDER BY id")?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u64>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, key, sealed, state, created_at)| {
            Some(RingKey {
                id,
                key,
                sealed,
                state: KeyState::parse(&state)?,
                created_at,
            })
        })
        .collect())
}

fn insert_key(tx: &Transaction<'_>, k: &RingKey) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO token_keys (id, key, sealed, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![k.id, k.key, k.sealed, k.state.as_str(), k.created_at],
    )?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let known = MIGRATIONS.len();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > known {
        return Err(StoreError::SchemaTooNew {
            path: path.display().to_string(),
            found: version,
            known,
        });
    }
    for sql in &MIGRATIONS[version..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", known)?;
    tx.commit()?;
    Ok(())
}

/// The data directory holds key hashes and token digests: owner only.
fn restrict_permissions(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot restrict the data directory to its owner");
    }
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        storage_id: r.get(2)?,
        backend: r.get(3)?,
        credentials: r.get(4)?,
        credentials_version: r.get(5)?,
        created_at: r.get(6)?,
    })
}

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    let groups: String = r.get(4)?;
    Ok(UserRecord {
        id: r.get(0)?,
        account_id: r.get(1)?,
        name: r.get(2)?,
        key_hash: r.get(3)?,
        groups: groups_of(&groups),
        tokens_after: r.get(5)?,
    })
}

fn find_account(tx: &Transaction<'_>, name: &str) -> Result<Option<AccountRecord>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT id, name, storage_id, backend, credentials, credentials_version, created_at FROM accounts WHERE name = ?1",
            [name],
            account_row,
        )
        .optional()?)
}

fn find_user(
    tx: &Transaction<'_>,
    account_id: i64,
    name: &str,
) -> Result<Option<UserRecord>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT id, account_id, name, key_hash, groups, tokens_after FROM users \
             WHERE account_id = ?1 AND name = ?2",
            params![account_id, name],
            user_row,
        )
        .optional()?)
}

/// `TooManyCredentials` when a user has as many credentials of a kind (`table`) as
/// they may: checked in the transaction that adds one.
fn credentials_below_cap(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    user_id: i64,
    kind: &'static str,
) -> Result<(), StoreError> {
    let held: i64 = tx.query_row(
        &format!("SELECT count(*) FROM {table} WHERE user_id = ?1"),
        [user_id],
        |r| r.get(0),
    )?;
    if usize::try_from(held).unwrap_or(usize::MAX) >= super::MAX_CREDENTIALS {
        return Err(StoreError::TooManyCredentials(kind));
    }
    Ok(())
}

fn damage(path: &Path, detail: String) -> StoreError {
    StoreError::Damaged(super::salvage::Damage {
        what: "the identity store",
        path: path.to_path_buf(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_keeps_the_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let store = Store::open(dir.path()).unwrap();
        let v: usize = store
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len());
    }

    #[test]
    fn another_connection_changes_the_data_version() {
        let dir = tempfile::tempdir().unwrap();
        let server = Store::open(dir.path()).unwrap();
        let cli = Store::open(dir.path()).unwrap();
        let v0 = server.data_version().unwrap();
        server.create_account("a", "AUTH_a", "local").unwrap();
        assert_eq!(
            server.data_version().unwrap(),
            v0,
            "own writes do not count"
        );
        cli.create_account("b", "AUTH_b", "local").unwrap();
        assert_ne!(server.data_version().unwrap(), v0);
    }
}
