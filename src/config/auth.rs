//! `[auth]`: tokens, reseller prefixes, keys and their hashing, the login throttle, and
//! who may validate tokens.

use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{de_duration, de_nets};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    #[serde(
        deserialize_with = "de_duration",
        serialize_with = "super::se_duration"
    )]
    pub token_life: Duration,
    /// Upper bound for `X-Auth-Token-Lifetime`.
    #[serde(
        deserialize_with = "de_duration",
        serialize_with = "super::se_duration"
    )]
    pub max_token_life: Duration,
    #[serde(serialize_with = "super::se_secret")]
    pub super_admin_key: Option<String>,
    pub super_admin_key_file: Option<PathBuf>,
    /// The key that seals accounts' upstream credentials in the store: 32 bytes, in hex
    /// or base64; inline, from its file, or from `SWIFTGATE_CREDENTIAL_KEY`.
    #[serde(serialize_with = "super::se_secret")]
    pub credential_key: Option<String>,
    pub credential_key_file: Option<PathBuf>,
    /// Credential keys replaced by the current one, still accepted to open what they
    /// sealed while `swiftgate keys rotate-credential-key` seals it again.
    pub previous_credential_key_files: Vec<PathBuf>,
    pub default_backend: String,
    /// Prefix of storage ids (`AUTH_<id>`) and of tokens (`AUTH_tk…`).
    pub reseller_prefix: String,
    /// With a prefix such as `SERVICE_`, each account `AUTH_<id>` also has a service
    /// account `SERVICE_<id>`: its owner reaches it only together with a token of a user
    /// in `service_group` (in `X-Service-Token`), as OpenStack services store data there.
    pub service_prefix: Option<String>,
    pub service_group: String,
    /// Keys the token ring keeps: the primary, the staged one and the secondaries that
    /// still accept tokens. Keep `max_token_life / rotation interval + 2`.
    pub token_keys: usize,
    /// How long a verified key is remembered (as a keyed hash) so repeat logins skip argon2.
    #[serde(
        deserialize_with = "de_duration",
        serialize_with = "super::se_duration"
    )]
    pub credential_cache: Duration,
    pub throttle: ThrottleConfig,
    pub argon2: Argon2Config,
    pub token_validation: TokenValidationConfig,
    pub keystone: KeystoneConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_life: Duration::from_secs(86_400),
            max_token_life: Duration::from_secs(7 * 86_400),
            super_admin_key: None,
            super_admin_key_file: None,
            credential_key: None,
            credential_key_file: None,
            previous_credential_key_files: Vec::new(),
            default_backend: "local".into(),
            reseller_prefix: "AUTH_".into(),
            service_prefix: None,
            service_group: "service".into(),
            token_keys: 3,
            credential_cache: Duration::from_secs(600),
            throttle: ThrottleConfig::default(),
            argon2: Argon2Config::default(),
            token_validation: TokenValidationConfig::default(),
            keystone: KeystoneConfig::default(),
        }
    }
}

/// Failed logins allowed per window before further attempts get 429 (see
/// `auth::throttle` for how they keep a user's owner in).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// From one address, for one user.
    pub failures_per_user_address: u32,
    /// From one address (an IPv6 /64), for all users.
    pub failures_per_address: u32,
    /// For one user, from every address but those it logged in from lately.
    pub failures_per_user: u32,
    #[serde(
        deserialize_with = "de_duration",
        serialize_with = "super::se_duration"
    )]
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            failures_per_user_address: 10,
            failures_per_address: 30,
            failures_per_user: 1000,
            window: Duration::from_secs(300),
        }
    }
}

/// argon2id cost; the defaults are OWASP's (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Who may call `GET /token/<token>` and `GET /auth/v2/.token/<token>`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenValidationConfig {
    /// Users in any of these groups (by token or admin headers) may validate tokens.
    pub groups: Vec<String>,
    /// Sources allowed without credentials (e.g. a Ceph RGW with `rgw_swift_auth_url`).
    #[serde(deserialize_with = "de_nets", serialize_with = "super::se_display_all")]
    pub addresses: Vec<IpNet>,
}

impl TokenValidationConfig {
    /// Whether `source` may validate tokens without credentials.
    pub fn allows_address(&self, source: std::net::IpAddr) -> bool {
        self.addresses.iter().any(|n| n.contains(&source))
    }
}

impl Default for TokenValidationConfig {
    fn default() -> Self {
        TokenValidationConfig {
            groups: vec![".reseller_admin".into()],
            addresses: Vec::new(),
        }
    }
}

/// `[auth.keystone]`: the Keystone identity API v3 that swiftgate answers (`/v3`): how its
/// accounts, users and groups look as Keystone projects, users and roles.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeystoneConfig {
    /// The region of the catalog's endpoints.
    pub region: String,
    /// Roles of every user on their account's project.
    pub member_roles: Vec<String>,
    /// Roles of the account's admins (`.admin`) besides.
    pub admin_roles: Vec<String>,
    /// Roles of reseller admins (`.reseller_admin`) besides, as a cluster's
    /// `reseller_admin_role`.
    pub reseller_admin_roles: Vec<String>,
    /// Roles of the users in other groups: group name to roles.
    pub group_roles: std::collections::BTreeMap<String, Vec<String>>,
    /// How long after expiry a service may still validate a token with `allow_expired`.
    #[serde(
        deserialize_with = "de_duration",
        serialize_with = "super::se_duration"
    )]
    pub allow_expired_window: Duration,
    /// Whether services (`auth.token_validation.groups`) may read a user's EC2 credential,
    /// secret included, by its access key, as `s3token` does with `secret_cache_duration`
    /// set: each of them can then sign S3 requests as any user.
    pub ec2_secrets_for_services: bool,
}

impl KeystoneConfig {
    /// Role and region names are words: not empty, no control characters, no commas
    /// (authtoken hands roles to Swift as a comma-separated header).
    pub fn validate(&self) -> Result<(), super::ConfigError> {
        let roles = self
            .member_roles
            .iter()
            .chain(&self.admin_roles)
            .chain(&self.reseller_admin_roles)
            .chain(self.group_roles.values().flatten());
        for name in roles.chain(std::iter::once(&self.region)) {
            if name.trim().is_empty()
                || name.len() > 255
                || name.chars().any(|c| c.is_control() || c == ',')
            {
                return Err(super::ConfigError::Invalid(format!(
                    "auth.keystone: {name:?} is not a role or region name (1 to 255 \
                     characters, no control characters or commas)"
                )));
            }
        }
        Ok(())
    }
}

impl Default for KeystoneConfig {
    fn default() -> Self {
        KeystoneConfig {
            region: "RegionOne".into(),
            member_roles: vec!["member".into()],
            admin_roles: vec!["admin".into(), "reader".into()],
            reseller_admin_roles: vec!["ResellerAdmin".into()],
            group_roles: Default::default(),
            allow_expired_window: Duration::from_secs(0),
            ec2_secrets_for_services: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_role_names_are_words() {
        assert!(KeystoneConfig::default().validate().is_ok());
        for bad in ["", " ", "a,b", "x\ny"] {
            let c = KeystoneConfig {
                admin_roles: vec![bad.into()],
                ..KeystoneConfig::default()
            };
            assert!(c.validate().is_err(), "{bad:?}");
        }
        let c = KeystoneConfig {
            region: String::new(),
            ..KeystoneConfig::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("auth.keystone"), "{e}");
    }
}
