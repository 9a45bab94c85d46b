//! Tokens: 256 random bits, hex-encoded behind `<reseller_prefix>tk`. Only the
//! SHA-256 digest is stored or used as a map key; the token itself is handed to
//! the client and otherwise kept only in this process's memory.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Longer tokens are refused before any lookup (Swauth's limit).
pub const MAX_TOKEN_LENGTH: usize = 5000;

pub fn mint(reseller_prefix: &str) -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!("{reseller_prefix}tk{}", hex::encode(raw))
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a string has the shape of a token this gateway issued.
pub fn is_ours(token: &str, reseller_prefix: &str) -> bool {
    token
        .strip_prefix(reseller_prefix)
        .and_then(|t| t.strip_prefix("tk"))
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_are_ours_and_distinct() {
        let a = mint("AUTH_");
        let b = mint("AUTH_");
        assert_ne!(a, b);
        assert!(a.starts_with("AUTH_tk"));
        assert_eq!(a.len(), 7 + 64);
        assert!(is_ours(&a, "AUTH_"));
        assert!(!is_ours(&a, "SERVICE_"));
        assert!(!is_ours("AUTH_tk1234", "AUTH_"));
        assert_ne!(digest(&a), digest(&b));
    }
}
