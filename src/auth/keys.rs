//! User keys: argon2id hashes, verified off the async runtime with a bound on how
//! many run at once (each takes `memory_kib` of RAM), and generated keys.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use tokio::sync::Semaphore;

use crate::config::Argon2Config;
use crate::error::{Error, Result};

#[derive(Clone)]
pub struct KeyHasher {
    params: Params,
    permits: Arc<Semaphore>,
}

impl KeyHasher {
    pub fn new(cfg: &Argon2Config) -> Result<KeyHasher, String> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| format!("invalid [auth.argon2] parameters: {e}"))?;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(KeyHasher {
            params,
            permits: Arc::new(Semaphore::new(workers)),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string for `key`, computed on the calling thread (CLI and setup use).
    pub fn hash_blocking(&self, key: &str) -> Result<String> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        self.argon2()
            .hash_password(key.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal("argon2 hashing failed", e))
    }

    /// Checks `key` against a PHC string on the calling thread.
    pub fn verify_blocking(&self, key: &str, phc: &str) -> bool {
        PasswordHash::new(phc)
            .is_ok_and(|h| self.argon2().verify_password(key.as_bytes(), &h).is_ok())
    }

    /// Runs `work` on a blocking thread once a permit is free.
    async fn limited<T: Send + 'static>(
        &self,
        work: impl FnOnce(&KeyHasher) -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Unavailable {
                retry_after: 1,
                message: "the gateway is shutting down".into(),
            })?;
        let hasher = self.clone();
        tokio::task::spawn_blocking(move || work(&hasher))
            .await
            .map_err(|e| Error::internal("argon2 task failed", e))
    }

    /// Checks `keys` against `phc`; the index of the one that matches.
    pub async fn verify(&self, keys: Vec<String>, phc: String) -> Result<Option<usize>> {
        self.limited(move |h| keys.iter().position(|k| h.verify_blocking(k, &phc)))
            .await
    }

    pub async fn hash(&self, key: String) -> Result<String> {
        self.limited(move |h| h.hash_blocking(&key)).await?
    }
}

/// A new random key: 32 characters of [A-Za-z0-9], about 190 bits.
pub fn generate_key() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    (0..32)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> KeyHasher {
        KeyHasher::new(&Argon2Config {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = cheap();
        let phc = h.hash_blocking("secret").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(!phc.contains("secret"));
        assert!(h.verify_blocking("secret", &phc));
        assert!(!h.verify_blocking("Secret", &phc));
        assert!(!h.verify_blocking("secret", "not a hash"));
    }

    #[test]
    fn generated_keys_differ() {
        let a = generate_key();
        assert_eq!(a.len(), 32);
        assert_ne!(a, generate_key());
    }
}
