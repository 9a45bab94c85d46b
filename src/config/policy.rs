//! `[[policy]]` and `[[deny]]`: the rules as written; `policy` compiles and checks them.

use serde::{Deserialize, Serialize};

use super::de_size;

/// `[[policy]]`: limits for the callers it is attached to (one of `identity`, `group`,
/// `cert_fingerprint`). Every policy attached to a caller must allow a request. Lists
/// left empty do not limit; names in `accounts` and `containers` may hold `*` and `?`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Named in refusals; `policy N` (from 1, in file order) when absent.
    pub name: Option<String>,
    /// `ACCOUNT:USER`
    pub identity: Option<String>,
    /// A group of the caller (`.admin` included).
    pub group: Option<String>,
    /// A client certificate (`sha256:<hex of the DER>`), whoever the request acts as.
    pub cert_fingerprint: Option<String>,
    /// Accounts, by storage id (`AUTH_…`) or name.
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub containers: Vec<String>,
    /// Object names must start with one of these; container listings must ask for one.
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    /// Only GET, HEAD and OPTIONS.
    #[serde(default)]
    pub read_only: bool,
    /// Largest upload body, in bytes or with a unit (`"5 GiB"`, `"100 MB"`).
    #[serde(default, deserialize_with = "de_size")]
    pub max_upload: Option<u64>,
}

/// `[[deny]]`: requests refused for everyone, reseller admins included. A rule refuses a
/// request when every criterion it gives matches: the method, the account, container and
/// object names (of the request's path, or of an object it copies, links or lists as
/// segments), a header present, a query parameter present.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DenyConfig {
    pub name: String,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub containers: Vec<String>,
    #[serde(default)]
    pub objects: Vec<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub query: Vec<String>,
}
