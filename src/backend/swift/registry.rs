//! The configured upstream backends by name, and for `keystone`, `v1` and `oauth2`
//! backends each account's own upstream, made at its first use from its sealed
//! credentials.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Cluster, GrantKeeper, Login, Naming};
use crate::auth::v1::{DirectCredentials, Upstreams};
use crate::backend::client::{HttpClient, http_client};
use crate::backend::credentials::Sealer;
use crate::backend::oauth;
use crate::config::{BackendConfig, Config, ConfigError, Delivery, OAuthSettings};
use crate::error::{Error, Result};
use crate::store::{AccountRecord, Store};
use crate::swift::target::Prefixes;

/// The credential keys in force, shared by everything that seals or opens upstream
/// credentials, and changed in place by a reload.
#[derive(Clone, Default)]
pub struct SealerCell(Arc<std::sync::RwLock<Option<Arc<Sealer>>>>);

impl SealerCell {
    fn of(config: &Config) -> std::result::Result<SealerCell, ConfigError> {
        let cell = SealerCell::default();
        cell.set(config)?;
        Ok(cell)
    }

    fn set(&self, config: &Config) -> std::result::Result<(), ConfigError> {
        let previous = config.previous_credential_keys()?;
        let sealer = config
            .credential_key()?
            .map(|k| Arc::new(Sealer::with_previous(&k, &previous)));
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = sealer;
        Ok(())
    }

    /// The sealer now; an error saying what to configure when there is none.
    pub fn current(&self) -> Result<Arc<Sealer>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| {
                Error::Conflict(
                    "no credential key is configured (auth.credential_key_file): upstream \
                     credentials cannot be kept"
                        .into(),
                )
            })
    }
}

/// An account's upstream, and the version of the credentials it was made from (its
/// OAuth2 grant renews itself in place).
struct AccountUpstream {
    version: i64,
    cluster: Arc<Cluster>,
}

type AccountUpstreams = Arc<std::sync::Mutex<HashMap<String, AccountUpstream>>>;

/// A `keystone`, `v1` or `oauth2` backend: each account's upstream, made at its first
/// use from its sealed credentials, and made again when an admin changes them.
struct AccountBackend {
    cfg: BackendConfig,
    client: HttpClient,
    accounts: AccountUpstreams,
    /// `oauth2`: the provider and the gateway's client secret.
    oauth: Option<OAuthSettings>,
}

/// Where an account's requests go upstream, and how its clients get there.
pub struct Upstream {
    pub cluster: Arc<Cluster>,
    pub delivery: Delivery,
}

/// The configured upstream backends, by name.
#[derive(Default)]
pub struct Clusters {
    clusters: HashMap<String, Arc<Cluster>>,
    per_account: HashMap<String, AccountBackend>,
    sealer: SealerCell,
    /// Where rotated OAuth2 grants are kept.
    store: Option<Arc<Store>>,
}

impl std::fmt::Debug for Clusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clusters")
            .field("clusters", &self.clusters)
            .field("per_account", &self.per_account)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AccountBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountBackend")
            .field("name", &self.cfg.name)
            .finish_non_exhaustive()
    }
}

impl Clusters {
    pub fn from_config(config: &Config) -> std::result::Result<Clusters, ConfigError> {
        let mut out = Clusters {
            sealer: SealerCell::of(config)?,
            ..Clusters::default()
        };
        for b in &config.backends {
            if b.per_account() {
                let backend = AccountBackend {
                    cfg: b.clone(),
                    client: http_client(b)?,
                    accounts: Default::default(),
                    oauth: (b.kind == "oauth2").then(|| b.oauth()).transpose()?,
                };
                out.per_account.insert(b.name.clone(), backend);
            } else {
                out.clusters
                    .insert(b.name.clone(), Arc::new(Cluster::new(b)?));
            }
        }
        Ok(out)
    }

    /// Keeps rotated OAuth2 grants in `store`.
    pub fn with_store(mut self, store: Arc<Store>) -> Clusters {
        self.store = Some(store);
        self
    }

    /// Checks that every configured backend answers, each within `within`: a cluster's
    /// `/healthcheck`, the login endpoint of a `keystone` or `v1` backend, an OAuth2
    /// provider's token endpoint. By backend name, what is wrong.
    pub async fn probe(&self, within: Duration) -> Vec<(String, std::result::Result<(), String>)> {
        let clusters = self.clusters.iter().map(|(name, c)| {
            let c = c.clone();
            let name = name.clone();
            async move { (name, c.probe(within).await) }
        });
        let others = self.per_account.values().map(|b| async move {
            let url = match &b.oauth {
                Some(o) => o.token_url.clone(),
                None => b.cfg.auth_url.clone(),
            };
            (
                b.cfg.name.clone(),
                super::probe(&b.client, &url, within).await,
            )
        });
        let (mut a, b) = futures_util::future::join(
            futures_util::future::join_all(clusters),
            futures_util::future::join_all(others),
        )
        .await;
        a.extend(b);
        a.sort_by(|x, y| x.0.cmp(&y.0));
        a
    }

    /// A `swift` backend.
    pub fn get(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.clusters.get(name)
    }

    /// Whether a backend name is the embedded store (or names nothing configured).
    pub fn is_local(&self, backend: &str) -> bool {
        !self.clusters.contains_key(backend) && !self.per_account.contains_key(backend)
    }

    /// The type of a configured backend.
    pub fn kind(&self, backend: &str) -> Option<&str> {
        if self.clusters.contains_key(backend) {
            return Some("swift");
        }
        self.per_account.get(backend).map(|b| b.cfg.kind.as_str())
    }

    /// The sealer of upstream credentials; an error saying what to configure when none.
    pub fn sealer(&self) -> Result<Arc<Sealer>> {
        self.sealer.current()
    }

    /// Seals and opens with the credential keys of `config` from now on (a reload).
    pub fn set_credential_keys(&self, config: &Config) -> std::result::Result<(), ConfigError> {
        self.sealer.set(config)
    }

    /// Where an account's storage requests go: `None` for the embedded store.
    pub fn upstream(&self, record: &AccountRecord) -> Result<Option<Upstream>> {
        if let Some(c) = self.clusters.get(&record.backend) {
            return Ok(Some(Upstream {
                cluster: c.clone(),
                delivery: Delivery::Proxy,
            }));
        }
        let Some(backend) = self.per_account.get(&record.backend) else {
            return Ok(None);
        };
        let Some(sealed) = &record.credentials else {
            let how = if backend.oauth.is_some() {
                format!(
                    "is not linked to its OAuth2 provider {:?} yet; an admin of the account \
                     links it at /link/{}",
                    record.backend, record.name
                )
            } else {
                format!(
                    "has no credentials for its upstream {:?} yet; an admin sets them with: \
                     swiftgate account set-credentials {}",
                    record.backend, record.name
                )
            };
            return Err(Error::unauthorized(
                &record.name,
                format!("account {} {how}", record.name),
            ));
        };
        let delivery = backend.cfg.delivery;
        let mut accounts = backend.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = accounts.get(&record.storage_id)
            && known.version == record.credentials_version
        {
            return Ok(Some(Upstream {
                cluster: known.cluster.clone(),
                delivery,
            }));
        }
        let creds = self.sealer()?.open(&record.storage_id, sealed)?;
        if !creds.fits(&backend.cfg.kind) {
            return Err(Error::Conflict(format!(
                "account {} holds credentials of another kind than its {} backend {:?}; set \
                 them again",
                record.name, backend.cfg.kind, record.backend
            )));
        }
        let keeper = match (&self.store, self.sealer.current()) {
            (Some(store), Ok(_)) => Some(GrantKeeper {
                store: store.clone(),
                sealer: self.sealer.clone(),
                name: record.name.clone(),
                storage_id: record.storage_id.clone(),
            }),
            _ => None,
        };
        let login = Login::for_account(&backend.cfg, backend.oauth.as_ref(), &creds, keeper)?;
        let cluster = Arc::new(Cluster::with(
            &backend.cfg,
            login,
            Naming::Own {
                storage_id: record.storage_id.clone(),
                name: record.name.clone(),
            },
            backend.client.clone(),
        ));
        let known = AccountUpstream {
            version: record.credentials_version,
            cluster: cluster.clone(),
        };
        accounts.insert(record.storage_id.clone(), known);
        Ok(Some(Upstream { cluster, delivery }))
    }

    /// `oauth2` backends: the provider's settings.
    pub fn oauth(&self, backend: &str) -> Option<&OAuthSettings> {
        self.per_account.get(backend)?.oauth.as_ref()
    }

    /// Trades an authorization code for a grant: the refresh token to keep.
    pub async fn link_grant(
        &self,
        backend: &str,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<String> {
        let Some((b, settings)) = self
            .per_account
            .get(backend)
            .and_then(|b| b.oauth.as_ref().map(|s| (b, s)))
        else {
            return Err(Error::Conflict(format!(
                "backend {backend:?} is not an OAuth2 provider"
            )));
        };
        let answer = oauth::exchange_code(
            &b.client,
            b.cfg.timeout,
            settings,
            code,
            verifier,
            redirect_uri,
        )
        .await;
        match answer {
            Ok(t) => t.refresh_token.ok_or_else(|| {
                Error::BadGateway(
                    "the OAuth2 provider gave no refresh token, so the link could not last".into(),
                )
            }),
            Err(oauth::TokenError::Revoked(said)) => Err(Error::bad_request(format!(
                "the OAuth2 provider refused the authorization code ({said}); start the link again"
            ))),
            Err(oauth::TokenError::Other(e)) => Err(e),
        }
    }

    /// Creates the upstream account of a new account on a cluster backend, and its
    /// service account when the gateway has them.
    pub async fn provision(
        &self,
        backend: &str,
        storage_id: &str,
        gateway: Prefixes<'_>,
    ) -> Result<()> {
        let Some(c) = self.clusters.get(backend) else {
            return Ok(());
        };
        let main = c.upstream_account(storage_id, gateway).await?;
        c.create_account(&main).await?;
        if let Some(service) = c.upstream_service_account(storage_id, gateway)
            && let Err(e) = c.create_account(&service).await
        {
            // refused while it holds containers: an account in use stays
            let _ = c.delete_account(&main).await;
            return Err(e);
        }
        Ok(())
    }

    /// Makes an account: its upstream accounts on a cluster backend first, then
    /// `record`. When recording fails, the upstream accounts just made go again, so a
    /// failure leaves nothing half-made and a retry succeeds.
    pub async fn provision_then<T>(
        &self,
        backend: &str,
        storage_id: &str,
        gateway: Prefixes<'_>,
        record: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.provision(backend, storage_id, gateway).await?;
        let recorded = record.await;
        if recorded.is_err()
            && let Err(undo) = self.deprovision(backend, storage_id, gateway).await
        {
            tracing::warn!(storage_id, error = %undo, "cannot undo an upstream account");
        }
        recorded
    }

    /// Deletes the upstream account of an account on a cluster backend, and its service
    /// account; each is refused while it holds containers.
    pub async fn deprovision(
        &self,
        backend: &str,
        storage_id: &str,
        gateway: Prefixes<'_>,
    ) -> Result<()> {
        let Some(c) = self.clusters.get(backend) else {
            return Ok(());
        };
        if let Some(service) = c.upstream_service_account(storage_id, gateway) {
            c.delete_account(&service).await?;
        }
        c.delete_account(&c.upstream_account(storage_id, gateway).await?)
            .await
    }

    /// The backend an account is bound to must exist: `local` or a configured one.
    pub fn check(&self, backend: &str) -> Result<()> {
        if backend == "local" || !self.is_local(backend) {
            return Ok(());
        }
        let mut names: Vec<&str> = self
            .clusters
            .keys()
            .chain(self.per_account.keys())
            .map(String::as_str)
            .collect();
        names.sort();
        Err(Error::bad_request(format!(
            "no backend {backend:?}; configured: local{}",
            names.iter().map(|k| format!(", {k}")).collect::<String>()
        )))
    }
}

impl Upstreams for Clusters {
    fn own_credentials(&self, backend: &str) -> bool {
        self.kind(backend).is_some_and(|k| k != "swift")
    }

    async fn direct(
        &self,
        account: &AccountRecord,
        renew: bool,
    ) -> Result<Option<DirectCredentials>> {
        let upstream = self
            .upstream(account)?
            .ok_or_else(|| Error::broken(format!("backend {:?} is gone", account.backend)))?;
        let direct = upstream.cluster.direct_credentials(renew).await?;
        upstream.cluster.renew_ahead();
        Ok((upstream.delivery == Delivery::Direct).then_some(direct))
    }
}
