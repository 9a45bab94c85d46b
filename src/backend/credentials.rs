//! Accounts' own upstream credentials (`keystone` and `v1` backends), sealed at rest
//! with XChaCha20-Poly1305 under the configured credential key. The account's storage
//! id is the associated data, so a sealed blob copied to another account does not open.
//! Nothing here prints a secret: `Debug` shows which kind of credential, not its value.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The first byte of a sealed blob: the format, so a later one can be told apart.
const FORMAT: u8 = 1;
const NONCE_LEN: usize = 24;

/// How an account logs in upstream.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Login {
    /// Keystone v3 password, scoped to a project.
    Password {
        user: String,
        user_domain: String,
        password: String,
        project: String,
        project_domain: String,
    },
    /// A Keystone v3 application credential (it carries its user and project).
    ApplicationCredential { id: String, secret: String },
    /// v1 auth: `X-Auth-User` / `X-Auth-Key`.
    V1 { user: String, key: String },
    /// An OAuth2 grant, linked by an account admin; rotated refresh tokens replace it.
    OAuth2 { refresh_token: String },
}

/// An account's upstream credentials, and which catalog endpoint to use (Keystone).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountCredentials {
    pub login: Login,
    /// Overrides the backend's region and interface for this account.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub interface: Option<String>,
}

impl std::fmt::Debug for AccountCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountCredentials")
            .field("login", &self.describe())
            .field("region", &self.region)
            .field("interface", &self.interface)
            .finish()
    }
}

impl AccountCredentials {
    /// An OAuth2 grant: its refresh token.
    pub fn oauth2(refresh_token: String) -> AccountCredentials {
        AccountCredentials {
            login: Login::OAuth2 { refresh_token },
            region: None,
            interface: None,
        }
    }

    /// Who logs in, without the secret: for listings and logs.
    pub fn describe(&self) -> String {
        match &self.login {
            Login::Password {
                user,
                user_domain,
                project,
                project_domain,
                ..
            } => format!("password of {user}@{user_domain} for project {project}@{project_domain}"),
            Login::ApplicationCredential { id, .. } => format!("application credential {id}"),
            Login::V1 { user, .. } => format!("v1 user {user}"),
            Login::OAuth2 { .. } => "OAuth2 grant".into(),
        }
    }

    /// Whether these credentials suit a backend of type `kind`.
    pub fn fits(&self, kind: &str) -> bool {
        match self.login {
            Login::V1 { .. } => kind == "v1",
            Login::OAuth2 { .. } => kind == "oauth2",
            Login::Password { .. } | Login::ApplicationCredential { .. } => kind == "keystone",
        }
    }
}

/// Seals credentials under the credential key, and opens what that key or a previous
/// one sealed (while a rotation re-seals them).
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    previous: Vec<XChaCha20Poly1305>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer::with_previous(key, &[])
    }

    /// Seals under `key`; opens also what one of `previous` sealed.
    pub fn with_previous(key: &[u8; 32], previous: &[[u8; 32]]) -> Sealer {
        Sealer {
            cipher: XChaCha20Poly1305::new(key.into()),
            previous: previous
                .iter()
                .map(|k| XChaCha20Poly1305::new(k.into()))
                .collect(),
        }
    }

    /// `FORMAT ‖ nonce ‖ ciphertext`, bound to `storage_id`.
    pub fn seal(&self, storage_id: &str, creds: &AccountCredentials) -> Result<Vec<u8>> {
        let plain =
            serde_json::to_vec(creds).map_err(|e| Error::internal("upstream credentials", e))?;
        self.seal_bytes(storage_id, &plain)
    }

    /// The credentials sealed for `storage_id`; an error when the blob was sealed under
    /// another key, for another account, or altered.
    pub fn open(&self, storage_id: &str, blob: &[u8]) -> Result<AccountCredentials> {
        self.open_bytes(storage_id, blob)
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or_else(|| {
                Error::broken(format!(
                    "the upstream credentials of {storage_id} do not open with the configured \
                     credential key (another key, or altered); set them again"
                ))
            })
    }

    /// Seals a secret other than credentials (an access token, a PKCE verifier), bound to
    /// what it is for: `context` names it.
    pub fn seal_secret(&self, context: &str, secret: &str) -> Result<Vec<u8>> {
        self.seal_bytes(&format!("secret:{context}"), secret.as_bytes())
    }

    /// A secret sealed for `context`, or `None`.
    pub fn open_secret(&self, context: &str, blob: &[u8]) -> Option<String> {
        self.open_bytes(&format!("secret:{context}"), blob)
            .and_then(|plain| String::from_utf8(plain).ok())
    }

    fn seal_bytes(&self, aad: &str, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::broken("a secret could not be sealed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open_bytes(&self, aad: &str, blob: &[u8]) -> Option<Vec<u8>> {
        let (&format, rest) = blob.split_first()?;
        if format != FORMAT || rest.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        std::iter::once(&self.cipher)
            .chain(&self.previous)
            .find_map(|cipher| {
                cipher
                    .decrypt(
                        XNonce::from_slice(nonce),
                        Payload {
                            msg: sealed,
                            aad: aad.as_bytes(),
                        },
                    )
                    .ok()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_key_opens_and_only_the_current_one_seals() {
        let (old, new) = ([1u8; 32], [2u8; 32]);
        let sealed_old = Sealer::new(&old).seal("AUTH_a", &creds()).unwrap();
        let during = Sealer::with_previous(&new, &[old]);
        assert_eq!(during.open("AUTH_a", &sealed_old).unwrap(), creds());
        let resealed = during.seal("AUTH_a", &creds()).unwrap();
        assert!(Sealer::new(&old).open("AUTH_a", &resealed).is_err());
        let after = Sealer::new(&new);
        assert_eq!(after.open("AUTH_a", &resealed).unwrap(), creds());
        assert!(after.open("AUTH_a", &sealed_old).is_err());
        // the account stays bound whichever key opens
        assert!(during.open("AUTH_b", &sealed_old).is_err());
    }

    fn creds() -> AccountCredentials {
        AccountCredentials {
            login: Login::Password {
                user: "alice".into(),
                user_domain: "Default".into(),
                password: "s3cret-pass".into(),
                project: "alice".into(),
                project_domain: "Default".into(),
            },
            region: Some("RegionOne".into()),
            interface: None,
        }
    }

    #[test]
    fn sealed_credentials_open_only_for_their_account_and_key() {
        let sealer = Sealer::new(&[7; 32]);
        let blob = sealer.seal("AUTH_a", &creds()).unwrap();
        assert!(!blob.windows(11).any(|w| w == b"s3cret-pass"));
        assert_eq!(sealer.open("AUTH_a", &blob).unwrap(), creds());
        assert!(sealer.open("AUTH_b", &blob).is_err());
        assert!(Sealer::new(&[8; 32]).open("AUTH_a", &blob).is_err());
        let mut altered = blob.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(sealer.open("AUTH_a", &altered).is_err());
        assert!(sealer.open("AUTH_a", &[]).is_err());
        // a secret opens only for what it was sealed for, and never as credentials
        let secret = sealer.seal_secret("access/AUTH_a", "tok-1").unwrap();
        assert_eq!(
            sealer.open_secret("access/AUTH_a", &secret).as_deref(),
            Some("tok-1")
        );
        assert!(sealer.open_secret("access/AUTH_b", &secret).is_none());
        assert!(sealer.open("access/AUTH_a", &secret).is_err());
        assert!(sealer.open_secret("AUTH_a", &blob).is_none());
        // two seals of the same credentials differ (fresh nonce)
        assert_ne!(sealer.seal("AUTH_a", &creds()).unwrap(), blob);
    }

    #[test]
    fn debug_and_errors_never_show_the_secret() {
        let shown = format!("{:?}", creds());
        assert!(!shown.contains("s3cret-pass"), "{shown}");
        assert!(shown.contains("alice@Default"));
        let err = Sealer::new(&[7; 32])
            .open("AUTH_a", b"\x01short")
            .unwrap_err();
        assert!(err.to_string().contains("set them again"));
    }
}
