//! What a storage request addresses, how the gateway's accounts are named (their
//! prefixes), and how a challenge names an account.

/// What a storage request addresses.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub account: String,
    pub container: Option<String>,
    pub object: Option<String>,
}

/// The realm of a challenge names the account as it appears in a URL.
pub(crate) fn realm(account: &str) -> String {
    percent_encoding::utf8_percent_encode(account, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%5F", "_")
        .replace("%2D", "-")
        .replace("%2E", ".")
}

/// The gateway's account prefixes: its reseller prefix, and its service prefix when it
/// has service accounts.
#[derive(Debug, Clone, Copy)]
pub struct Prefixes<'a> {
    pub reseller: &'a str,
    pub service: Option<&'a str>,
}
