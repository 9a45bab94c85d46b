//! Headers only an account's owner (or a reseller admin) sees and sets.

use std::borrow::Cow;

use http::HeaderMap;

/// Account quotas as Swift's account_quotas names them (set by reseller admins only).
pub(crate) const ACCOUNT_QUOTAS: &[&str] = &[
    "x-account-quota-bytes",
    "x-account-quota-count",
    "x-account-quota-bytes-policy-policy-0",
    "x-account-quota-count-policy-policy-0",
];

/// Removes the headers only an account's owner sees and sets, and their `X-Remove-`
/// forms: ACLs, temporary URL keys, container sync settings, and the reading of expired
/// objects.
pub(crate) fn strip_privileged(headers: &mut HeaderMap) {
    let privileged: Vec<_> = headers
        .keys()
        .filter(|k| is_privileged(k.as_str()))
        .cloned()
        .collect();
    for k in privileged {
        headers.remove(k);
    }
}

/// A header as it sets what it names: `x-remove-<name>` removes what `x-<name>` sets.
fn set_form(name: &str) -> Cow<'_, str> {
    match name.strip_prefix("x-remove-") {
        Some(rest) => Cow::Owned(format!("x-{rest}")),
        None => Cow::Borrowed(name),
    }
}

fn is_privileged(name: &str) -> bool {
    let name = set_form(name);
    let k = name.as_ref();
    k.ends_with("x-container-read")
        || k.ends_with("x-container-write")
        || k.ends_with("-access-control")
        || k.contains("-meta-temp-url-key")
        || k.starts_with("x-container-sync-")
        || k == "x-open-expired"
}

/// Whether a header sets or removes an account quota (a reseller admin's business).
pub(crate) fn is_quota_header(name: &str) -> bool {
    let name = set_form(name);
    name == "x-account-meta-quota-bytes" || ACCOUNT_QUOTAS.contains(&name.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_is_as_privileged_as_setting() {
        for name in [
            "x-container-read",
            "x-remove-container-read",
            "x-container-write",
            "x-remove-container-write",
            "x-account-access-control",
            "x-remove-account-access-control",
            "x-account-meta-temp-url-key-2",
            "x-remove-container-meta-temp-url-key",
            "x-container-sync-to",
            "x-remove-container-sync-key",
            "x-open-expired",
        ] {
            assert!(is_privileged(name), "{name}");
        }
        for name in [
            "x-container-meta-color",
            "x-remove-container-meta-color",
            "x-versions-location",
        ] {
            assert!(!is_privileged(name), "{name}");
        }
        assert!(is_quota_header("x-remove-account-meta-quota-bytes"));
    }
}
