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
        let keys = |meta: &Meta, kind: &str| -> Vec<String> {
            ["", "-2"]
                .iter()
                .filter_map(|n| meta.get(&format!("x-{kind}-meta-temp-url-key{n}")).cloned())
                .collect()
        };
        let account_keys = keys(&account_meta, "account");
        let container_keys = cont.map(|c| keys(&c.meta, "container")).unwrap_or_default();
        signed.scope(&refs(&account_keys), &refs(&container_keys))
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
