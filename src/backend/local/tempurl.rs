//! Temporary URLs on the embedded store: the keys a signature is checked against are
//! the account's and the container's `Temp-URL-Key`s stored with them.

use std::net::IpAddr;

use http::Method;

use super::db::Meta;
use super::{LocalStore, headers};
use crate::error::Result;
use crate::swift::tempurl::{Scope, Signed};

impl LocalStore {
    /// Checks a temporary URL for `method` on `/v1/<account>/<container>/<object>`.
    pub async fn temp_url_scope(
        &self,
        account: &str,
        container: &str,
        object: &str,
        method: &Method,
        pairs: &[(String, String)],
        client: IpAddr,
    ) -> Result<Scope> {
        let signed = Signed::parse(
            account,
            container,
            object,
            method,
            pairs,
            client,
            headers::now(),
        )?;
        let account_meta = {
            let a = account.to_owned();
            self.db(move |db| db.account_meta(&a)).await?
        };
        let cont = self.container(account, container).await?;
        signed.scope(
            &keys(
                Some(&account_meta),
                [
                    "x-account-meta-temp-url-key",
                    "x-account-meta-temp-url-key-2",
                ],
            ),
            &keys(
                cont.as_ref().map(|c| &c.meta),
                [
                    "x-container-meta-temp-url-key",
                    "x-container-meta-temp-url-key-2",
                ],
            ),
        )
    }
}

/// The keys of `names` that `meta` holds.
fn keys<'a>(meta: Option<&'a Meta>, names: [&str; 2]) -> Vec<&'a str> {
    names
        .iter()
        .filter_map(|n| meta?.get(*n).map(String::as_str))
        .collect()
}
