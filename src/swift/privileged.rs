//! Headers only an account's owner (or a reseller admin) sees and sets.

use http::HeaderMap;

/// Account quotas as Swift's account_quotas names them (set by reseller admins only).
pub(crate) const ACCOUNT_QUOTAS: &[&str] = &[
    "x-account-quota-bytes",
    "x-account-quota-count",
    "x-account-quota-bytes-policy-policy-0",
    "x-account-quota-count-policy-policy-0",
];

/// Removes the headers only an account's owner sees and sets: ACLs, temporary URL keys,
/// container sync settings, and the reading of expired objects.
pub(crate) fn strip_privileged(headers: &mut HeaderMap) {
    let privileged: Vec<_> = headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            k.ends_with("x-container-read")
                || k.ends_with("x-container-write")
                || k.ends_with("-access-control")
                || k.contains("-meta-temp-url-key")
                || k.starts_with("x-container-sync-")
                || k == "x-open-expired"
        })
        .cloned()
        .collect();
    for k in privileged {
        headers.remove(k);
    }
}

/// Whether a header sets or removes an account quota (a reseller admin's business).
pub(crate) fn is_quota_header(name: &str) -> bool {
    let name = name
        .strip_prefix("x-remove-")
        .map_or(name.to_owned(), |r| format!("x-{r}"));
    name == "x-account-meta-quota-bytes" || ACCOUNT_QUOTAS.contains(&name.as_str())
}
