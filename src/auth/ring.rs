//! The token key ring, as Keystone's Fernet repository: one primary key mints tokens, a
//! staged key is accepted already and mints after the next rotation, secondary keys are
//! still accepted. A rotation turns staged into primary, primary into secondary, adds a
//! new staged key and drops the oldest secondaries beyond `auth.token_keys`, so that a
//! token outlives its key only if the ring turns faster than tokens expire.

use std::collections::HashMap;

use super::token;
use crate::store::{KeyState, RingKey, Store, StoreError};

/// The credential keys: the one that seals from now on, and those a rotation replaced,
/// which still open what they sealed until it is sealed again
/// (`swiftgate keys rotate-credential-key`).
#[derive(Clone, Default)]
pub struct CredentialKeys {
    pub current: Option<[u8; 32]>,
    pub previous: Vec<[u8; 32]>,
}

impl CredentialKeys {
    pub fn of(
        config: &crate::config::Config,
    ) -> Result<CredentialKeys, crate::config::ConfigError> {
        Ok(CredentialKeys {
            current: config.credential_key()?,
            previous: config.previous_credential_keys()?,
        })
    }

    /// Every key that opens, the current one first.
    pub fn opening(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.current.iter().chain(&self.previous)
    }
}

/// The ring in memory: keys by id, and the one that mints.
#[derive(Default)]
pub struct Ring {
    keys: HashMap<u32, [u8; 32]>,
    primary: Option<u32>,
}

impl Ring {
    /// The ring of the store's keys; sealed keys need the credential key they were sealed
    /// with (the current one or a previous one).
    pub fn open(keys: &[RingKey], credential: &CredentialKeys) -> Result<Ring, String> {
        let mut ring = Ring::default();
        for k in keys {
            let id = u32::try_from(k.id)
                .map_err(|_| format!("token key id {} is out of range", k.id))?;
            let key = if k.sealed {
                if credential.current.is_none() {
                    return Err(
                        "the token key ring is sealed with auth.credential_key, which is not \
                         configured"
                            .to_owned(),
                    );
                }
                open_ring_key(credential, k).ok_or_else(|| {
                    format!(
                        "token key {} does not open with the configured auth.credential_key",
                        k.id
                    )
                })?
            } else {
                k.key
                    .as_slice()
                    .try_into()
                    .map_err(|_| format!("token key {} is not 32 bytes", k.id))?
            };
            ring.keys.insert(id, key);
            if k.state == KeyState::Primary {
                ring.primary = Some(id);
            }
        }
        Ok(ring)
    }

    /// The key that mints, with its id.
    pub fn primary(&self) -> Option<(u32, &[u8; 32])> {
        let id = self.primary?;
        Some((id, self.keys.get(&id)?))
    }

    pub fn get(&self, id: u32) -> Option<&[u8; 32]> {
        self.keys.get(&id)
    }

    pub fn has(&self, id: u32) -> bool {
        self.keys.contains_key(&id)
    }
}

/// A sealed ring key, opened with whichever credential key sealed it.
pub fn open_ring_key(credential: &CredentialKeys, k: &RingKey) -> Option<[u8; 32]> {
    credential
        .opening()
        .find_map(|c| token::open_ring_key(c, k.id, &k.key))
}

/// A new random key for the ring, sealed when a credential key is configured.
fn new_ring_key(id: i64, state: KeyState, credential_key: Option<&[u8; 32]>) -> RingKey {
    let key = token::new_key();
    RingKey {
        id,
        key: match credential_key {
            Some(c) => token::seal_ring_key(c, id, &key),
            None => key.to_vec(),
        },
        sealed: credential_key.is_some(),
        state,
        created_at: crate::store::now_micros() / 1_000_000,
    }
}

/// The first ring of a store: a primary key and a staged one.
pub async fn start(store: &Store, credential_key: Option<&[u8; 32]>) -> Result<(), StoreError> {
    store
        .start_ring(&[
            new_ring_key(1, KeyState::Primary, credential_key),
            new_ring_key(2, KeyState::Staged, credential_key),
        ])
        .await
}

/// Rotates the store's ring once, keeping `keep` keys; the ring after it.
pub async fn rotate(
    store: &Store,
    credential: &CredentialKeys,
    keep: usize,
) -> Result<Vec<RingKey>, StoreError> {
    let credential_key = credential.current.as_ref();
    let mut seen = store.snapshot().await?.keys;
    if seen.is_empty() {
        start(store, credential_key).await?;
        seen = store.snapshot().await?.keys;
    }
    // a key the gateways cannot open would stop every one of them from reloading
    Ring::open(&seen, credential).map_err(StoreError::Ring)?;
    let next = seen.iter().map(|k| k.id).max().unwrap_or(0) + 1;
    let staged = new_ring_key(next, KeyState::Staged, credential_key);
    store.rotate_ring(&seen, &staged, keep).await?;
    Ok(store.snapshot().await?.keys)
}
