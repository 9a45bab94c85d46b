//! The token key ring, as Keystone's Fernet repository: one primary key mints tokens, a
//! staged key is accepted already and mints after the next rotation, secondary keys are
//! still accepted. A rotation turns staged into primary, primary into secondary, adds a
//! new staged key and drops the oldest secondaries beyond `auth.token_keys`, so that a
//! token outlives its key only if the ring turns faster than tokens expire.

use std::collections::HashMap;

use super::token;
use crate::store::{KeyState, RingKey, Store, StoreError};

/// The ring in memory: keys by id, and the one that mints.
#[derive(Default)]
pub struct Ring {
    keys: HashMap<u32, [u8; 32]>,
    primary: Option<u32>,
}

impl Ring {
    /// The ring of the store's keys; sealed keys need the credential key they were sealed
    /// with.
    pub fn open(keys: &[RingKey], credential_key: Option<&[u8; 32]>) -> Result<Ring, String> {
        let mut ring = Ring::default();
        for k in keys {
            let id = u32::try_from(k.id)
                .map_err(|_| format!("token key id {} is out of range", k.id))?;
            let key = if k.sealed {
                let credential = credential_key.ok_or_else(|| {
                    "the token key ring is sealed with auth.credential_key, which is not configured"
                        .to_owned()
                })?;
                token::open_ring_key(credential, k.id, &k.key).ok_or_else(|| {
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
    credential_key: Option<&[u8; 32]>,
    keep: usize,
) -> Result<Vec<RingKey>, StoreError> {
    let mut seen = store.snapshot().await?.keys;
    if seen.is_empty() {
        start(store, credential_key).await?;
        seen = store.snapshot().await?.keys;
    }
    // a key the gateways cannot open would stop every one of them from reloading
    Ring::open(&seen, credential_key).map_err(StoreError::Ring)?;
    let next = seen.iter().map(|k| k.id).max().unwrap_or(0) + 1;
    let staged = new_ring_key(next, KeyState::Staged, credential_key);
    store.rotate_ring(&seen, &staged, keep).await?;
    Ok(store.snapshot().await?.keys)
}
