//! The account lifecycle: an account is made, made again and deleted in the identity
//! store and, on a cluster backend, on the cluster too, in the order that leaves nothing
//! half-made.

use std::sync::Arc;

use crate::auth::identity::Identity;
use crate::backend::swift::Clusters;
use crate::error::Result;
use crate::store::AccountRecord;

/// Creates an account on `backend`: an upstream cluster's account first, then the
/// record, so that a failure leaves nothing half-made and a retry succeeds.
pub async fn create(
    identity: &Arc<Identity>,
    clusters: &Clusters,
    name: &str,
    suffix: Option<&str>,
    backend: &str,
) -> Result<AccountRecord> {
    let storage_id = identity.new_storage_id(name, suffix)?;
    clusters.check(backend)?;
    let record = identity.add_account(name, &storage_id, backend);
    clusters
        .provision_then(backend, &storage_id, identity.prefixes(), record)
        .await
}

/// Creates every account on a cluster backend there again (after the cluster was
/// wiped, as DevAuth's `recreate_accounts`): how many were tried, and which failed.
pub async fn recreate(identity: &Identity, clusters: &Clusters) -> (usize, Vec<String>) {
    let accounts: Vec<_> = identity
        .accounts()
        .into_iter()
        .filter(|a| clusters.get(&a.backend).is_some())
        .collect();
    let mut failures = Vec::new();
    for a in &accounts {
        if let Err(e) = clusters
            .provision(&a.backend, &a.storage_id, identity.prefixes())
            .await
        {
            tracing::warn!(account = %a.name, error = %e, "cannot recreate an upstream account");
            failures.push(a.name.clone());
        }
    }
    (accounts.len(), failures)
}

/// Deletes an account without users; on an upstream cluster, only while it holds
/// no containers (409), and the upstream account goes with it.
pub async fn delete(identity: &Arc<Identity>, clusters: &Clusters, name: &str) -> Result<()> {
    let acc = identity.deletable_account(name)?;
    clusters
        .deprovision(&acc.backend, &acc.storage_id, identity.prefixes())
        .await?;
    identity.remove_account(name).await
}
