//! `[store]`: where accounts, users and tokens persist. Without a `url`, the embedded
//! SQLite store in the data directory; with one, a PostgreSQL database that any number of
//! gateways share.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, read_secret_file};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `postgres://USER@HOST:PORT/DATABASE?sslmode=require`; the password inline in
    /// the URL, in `password_file`, or in `SWIFTGATE_STORE_PASSWORD`.
    #[serde(serialize_with = "se_url")]
    pub url: Option<String>,
    pub password_file: Option<PathBuf>,
    /// The authorities the database's certificate is checked against (PEM); the
    /// system's when unset.
    pub ca_file: Option<PathBuf>,
    /// Connections each gateway keeps open to the database (default 8).
    pub pool_size: Option<usize>,
}

/// The store's URL with its password, if it holds one, shown as `<set>`.
fn se_url<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        None => s.serialize_none(),
        Some(url) => s.serialize_str(&super::without_password(url)),
    }
}

/// What a gateway needs to reach its shared store.
#[derive(Clone)]
pub struct SharedStore {
    /// The URL without its password.
    pub url: String,
    pub password: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub pool_size: usize,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl StoreConfig {
    /// The shared store, when one is configured.
    pub fn shared(&self) -> Result<Option<SharedStore>, ConfigError> {
        let Some(url) = &self.url else {
            if self.password_file.is_some() || self.ca_file.is_some() || self.pool_size.is_some() {
                return Err(ConfigError::Invalid(
                    "store.password_file, store.ca_file and store.pool_size need store.url".into(),
                ));
            }
            return Ok(None);
        };
        let invalid = |why: &str| {
            ConfigError::Invalid(format!(
                "store.url: {why}; write e.g. \"postgres://swiftgate@db.example:5432/swiftgate\""
            ))
        };
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| invalid("only postgres:// URLs are known"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if path.contains('@') {
            return Err(invalid(
                "a user name or password holds a '/' (write it %2F), or the URL names two users",
            ));
        }
        let query = path.split_once('?').map_or("", |(_, q)| q);
        if query.split('&').any(|kv| {
            kv.split('=').next().is_some_and(|k| {
                percent_encoding::percent_decode_str(k)
                    .decode_utf8_lossy()
                    .eq_ignore_ascii_case("password")
            })
        }) {
            return Err(invalid(
                "the password goes before the host (postgres://USER:PASSWORD@HOST/…), in store.password_file or in SWIFTGATE_STORE_PASSWORD, not in ?password=",
            ));
        }
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(invalid("it names no host"));
        }
        let (user, inline) = match userinfo.map(|u| u.split_once(':')) {
            Some(Some((user, password))) => (Some(user), Some(password)),
            Some(None) => (userinfo, None),
            None => (None, None),
        };
        let password = match (inline, &self.password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "give the store's password in store.url or in store.password_file, not both"
                        .into(),
                ));
            }
            (Some(p), None) => Some(
                percent_encoding::percent_decode_str(p)
                    .decode_utf8()
                    .map_err(|_| invalid("the password is not UTF-8"))?
                    .into_owned(),
            ),
            (None, Some(path)) => Some(read_secret_file(path)?),
            (None, None) => std::env::var("SWIFTGATE_STORE_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty()),
        };
        let user = user.map(|u| format!("{u}@")).unwrap_or_default();
        let pool_size = self.pool_size.unwrap_or(8);
        if pool_size == 0 {
            return Err(ConfigError::Invalid(
                "store.pool_size must be above zero".into(),
            ));
        }
        let url = format!("postgres://{user}{host}/{path}");
        let parsed = url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| invalid(&sslmode_hint(path).unwrap_or_else(|| e.to_string())))?;
        if self.ca_file.is_some()
            && parsed.get_ssl_mode() == tokio_postgres::config::SslMode::Disable
        {
            return Err(ConfigError::Invalid(
                "store.ca_file is set but store.url says sslmode=disable: the CA would not be \
                 used"
                    .into(),
            ));
        }
        Ok(Some(SharedStore {
            url,
            password,
            ca_file: self.ca_file.clone(),
            pool_size,
        }))
    }
}

/// What to write instead of an `sslmode` of libpq's that the driver does not know.
fn sslmode_hint(path: &str) -> Option<String> {
    let (_, query) = path.split_once('?')?;
    let mode = query.split('&').find_map(|p| p.strip_prefix("sslmode="))?;
    matches!(mode, "allow" | "verify-ca" | "verify-full").then(|| {
        format!(
            "sslmode={mode} is not known here: use sslmode=require, which checks the server's \
             certificate and name (against store.ca_file, or the system's authorities), or \
             prefer or disable"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(url: &str) -> StoreConfig {
        StoreConfig {
            url: Some(url.into()),
            ..StoreConfig::default()
        }
    }

    #[test]
    fn the_password_leaves_the_url() {
        let s = store("postgres://gw:s%40cret@db:5432/sg?sslmode=require")
            .shared()
            .unwrap()
            .unwrap();
        assert_eq!(s.url, "postgres://gw@db:5432/sg?sslmode=require");
        assert_eq!(s.password.as_deref(), Some("s@cret"));
        assert!(!format!("{s:?}").contains("s@cret"));
    }

    #[test]
    fn bad_store_urls_say_what_is_wrong() {
        for (url, says) in [
            ("mysql://db/sg", "only postgres://"),
            ("postgres:///sg", "no host"),
            ("postgres://db/sg?sslmode=sometimes", "store.url"),
            (
                "postgres://db/sg?sslmode=verify-full",
                "use sslmode=require",
            ),
            (
                "postgres://db/sg?x=1&sslmode=verify-ca",
                "use sslmode=require",
            ),
        ] {
            let e = store(url).shared().unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
        }
        let e = StoreConfig {
            ca_file: Some("ca.pem".into()),
            ..StoreConfig::default()
        }
        .shared()
        .unwrap_err();
        assert!(e.to_string().contains("need store.url"), "{e}");
        let e = StoreConfig {
            ca_file: Some("ca.pem".into()),
            ..store("postgres://db/sg?sslmode=disable")
        }
        .shared()
        .unwrap_err();
        assert!(e.to_string().contains("sslmode=disable"), "{e}");
        let e = StoreConfig {
            pool_size: Some(0),
            ..store("postgres://db/sg")
        }
        .shared()
        .unwrap_err();
        assert!(e.to_string().contains("pool_size"), "{e}");
    }
}
