//! Tokens any gateway can check with the key ring alone, in memory: `<reseller_prefix>tk`
//! and, in URL-safe base64, a format byte, the id of the ring key that sealed the token, a
//! random nonce, and the sealed claims (XChaCha20-Poly1305, the prefix authenticated
//! with them). The claims are whose the token is (a user id), when it was issued (µs),
//! when it expires, an audit id, whether it is scoped to the user's account (v1 tokens
//! and Keystone project-scoped tokens are; an unscoped Keystone token reaches no storage),
//! the client certificate it works with, if bound to one, and the Keystone application
//! credential it was made from, if it was. Nothing in a token is readable without the ring, and the ring holds no user's
//! secret: a stolen ring mints tokens, so it is kept sealed (`seal_ring_key`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// Longer tokens are refused before any work (Swauth's limit).
const MAX_TOKEN_LENGTH: usize = 5000;

const FORMAT: u8 = 1;
const NONCE: usize = 24;
const TAG: usize = 16;
/// user id, issued (µs), expires (s), audit id, flags
const CLAIMS: usize = 8 + 8 + 8 + 8 + 1;
/// Flags: the token is bound to a client certificate, whose digest follows.
const BOUND_FLAG: u8 = 1;
/// Flags: the token is not scoped to the user's account.
const UNSCOPED_FLAG: u8 = 2;
/// Flags: the token was made from an application credential, whose id follows.
const APP_CREDENTIAL_FLAG: u8 = 4;
/// Flags: the token was made from an EC2 credential's signature.
const EC2_FLAG: u8 = 8;
const APP_CREDENTIAL: usize = 16;
const BOUND: usize = 32;
const HEAD: usize = 1 + 4 + NONCE;

/// What a token says, once opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub user_id: i64,
    /// Unix microseconds.
    pub issued_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
    /// Names the token in logs and revocations without being it.
    pub audit_id: [u8; 8],
    /// The SHA-256 of the client certificate the token works with only.
    pub bound_to: Option<[u8; 32]>,
    /// Scoped to no account: good for Keystone's identity calls, never for storage.
    pub unscoped: bool,
    /// The application credential the token was made from: it has that credential's
    /// roles only, and ends with it.
    pub app_credential: Option<[u8; 16]>,
    /// Made from an EC2 credential's signature (Keystone's `ec2credential` method): it
    /// reaches the user's storage, and no credential of theirs.
    pub ec2: bool,
}

impl Claims {
    pub fn audit_id(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.audit_id)
    }
}

/// An audit id as `Claims::audit_id` writes it, read back.
pub fn audit_id_of(text: &str) -> Option<[u8; 8]> {
    URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()
}

pub fn new_audit_id() -> [u8; 8] {
    let mut id = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut id);
    id
}

/// A new random key for the ring.
pub fn new_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// Seals `claims` into a token with the ring key `key_id`.
pub fn seal(reseller_prefix: &str, key_id: u32, key: &[u8; 32], claims: &Claims) -> String {
    let mut plain = Vec::with_capacity(CLAIMS + BOUND);
    plain.extend_from_slice(&claims.user_id.to_be_bytes());
    plain.extend_from_slice(&claims.issued_at.to_be_bytes());
    plain.extend_from_slice(&claims.expires_at.to_be_bytes());
    plain.extend_from_slice(&claims.audit_id);
    let mut flags = if claims.unscoped { UNSCOPED_FLAG } else { 0 };
    if claims.bound_to.is_some() {
        flags |= BOUND_FLAG;
    }
    if claims.app_credential.is_some() {
        flags |= APP_CREDENTIAL_FLAG;
    }
    if claims.ec2 {
        flags |= EC2_FLAG;
    }
    plain.push(flags);
    if let Some(b) = &claims.bound_to {
        plain.extend_from_slice(b);
    }
    if let Some(a) = &claims.app_credential {
        plain.extend_from_slice(a);
    }
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut head = [0u8; HEAD];
    head[0] = FORMAT;
    head[1..5].copy_from_slice(&key_id.to_be_bytes());
    head[5..].copy_from_slice(&nonce);
    let aad = associated(reseller_prefix, &head);
    let sealed = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .unwrap_or_default();
    let mut raw = Vec::with_capacity(HEAD + sealed.len());
    raw.extend_from_slice(&head);
    raw.extend_from_slice(&sealed);
    format!("{reseller_prefix}tk{}", URL_SAFE_NO_PAD.encode(raw))
}

/// What sealing authenticates besides the claims: the prefix and the token's head.
fn associated(reseller_prefix: &str, head: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(reseller_prefix.len() + head.len());
    aad.extend_from_slice(reseller_prefix.as_bytes());
    aad.extend_from_slice(head);
    aad
}

fn decode(token: &str, reseller_prefix: &str) -> Option<Vec<u8>> {
    if token.len() > MAX_TOKEN_LENGTH {
        return None;
    }
    let body = token.strip_prefix(reseller_prefix)?.strip_prefix("tk")?;
    let raw = URL_SAFE_NO_PAD.decode(body).ok()?;
    let sealed = raw.len().checked_sub(HEAD)?;
    let extra = sealed.checked_sub(CLAIMS + TAG)?;
    [0, BOUND, APP_CREDENTIAL, BOUND + APP_CREDENTIAL]
        .contains(&extra)
        .then_some(raw)
}

/// The claims of a token sealed with the ring key it names (`key_for` gives the ring's key
/// of an id), or `None` for anything else.
pub fn open<'k>(
    token: &str,
    reseller_prefix: &str,
    key_for: impl FnOnce(u32) -> Option<&'k [u8; 32]>,
) -> Option<Claims> {
    let raw = decode(token, reseller_prefix)?;
    let (head, sealed) = raw.split_at(HEAD);
    if head[0] != FORMAT {
        return None;
    }
    let key = key_for(u32::from_be_bytes(head[1..5].try_into().ok()?))?;
    let aad = associated(reseller_prefix, head);
    let plain = XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(&head[5..]),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .ok()?;
    let u64_at = |i: usize| plain.get(i..i + 8)?.try_into().ok().map(u64::from_be_bytes);
    let flags = *plain.get(32)?;
    if flags & !(BOUND_FLAG | UNSCOPED_FLAG | APP_CREDENTIAL_FLAG | EC2_FLAG) != 0 {
        return None;
    }
    let mut rest = &plain[CLAIMS..];
    let mut take = |flag: u8, n: usize| -> Option<Option<&[u8]>> {
        if flags & flag == 0 {
            return Some(None);
        }
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(Some(head))
    };
    let bound_to = take(BOUND_FLAG, BOUND)?.map(<[u8; 32]>::try_from);
    let app_credential = take(APP_CREDENTIAL_FLAG, APP_CREDENTIAL)?.map(<[u8; 16]>::try_from);
    if !rest.is_empty() {
        return None;
    }
    let bound_to = bound_to.transpose().ok()?;
    let app_credential = app_credential.transpose().ok()?;
    Some(Claims {
        user_id: i64::from_be_bytes(plain.get(0..8)?.try_into().ok()?),
        issued_at: u64_at(8)?,
        expires_at: u64_at(16)?,
        audit_id: plain.get(24..32)?.try_into().ok()?,
        bound_to,
        unscoped: flags & UNSCOPED_FLAG != 0,
        ec2: flags & EC2_FLAG != 0,
        app_credential,
    })
}

/// Seals a ring key for the store with the credential key: what reads the store alone
/// cannot mint tokens.
pub fn seal_ring_key(credential_key: &[u8; 32], id: i64, key: &[u8; 32]) -> Vec<u8> {
    seal_with(credential_key, &ring_aad(id), key)
}

/// A ring key sealed by `seal_ring_key`; `None` when the credential key is not the one
/// it was sealed with.
pub fn open_ring_key(credential_key: &[u8; 32], id: i64, sealed: &[u8]) -> Option<[u8; 32]> {
    if sealed.len() != NONCE + 32 + TAG {
        return None;
    }
    open_with(credential_key, &ring_aad(id), sealed)?
        .try_into()
        .ok()
}

/// Seals a secret the gateway must read back (an S3 secret) with the credential key, for
/// the record `context` names and no other.
pub fn seal_secret(credential_key: &[u8; 32], context: &str, secret: &[u8]) -> Vec<u8> {
    seal_with(credential_key, &secret_aad(context), secret)
}

/// A secret sealed by `seal_secret` for `context`.
pub fn open_secret(credential_key: &[u8; 32], context: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    open_with(credential_key, &secret_aad(context), sealed)
}

fn seal_with(credential_key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = XChaCha20Poly1305::new(credential_key.into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    out
}

fn open_with(credential_key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE + TAG {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE);
    XChaCha20Poly1305::new(credential_key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
        .ok()
}

fn secret_aad(context: &str) -> Vec<u8> {
    let mut aad = b"swiftgate secret ".to_vec();
    aad.extend_from_slice(context.as_bytes());
    aad
}

fn ring_aad(id: i64) -> Vec<u8> {
    let mut aad = b"swiftgate token key ".to_vec();
    aad.extend_from_slice(&id.to_be_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(bound_to: Option<[u8; 32]>) -> Claims {
        Claims {
            user_id: 42,
            issued_at: 1_796_000_000_123_456,
            expires_at: 1_796_086_400,
            audit_id: new_audit_id(),
            bound_to,
            unscoped: false,
            app_credential: None,
            ec2: false,
        }
    }

    #[test]
    fn a_token_opens_with_its_key_and_prefix_only() {
        let key = new_key();
        let unscoped = Claims {
            unscoped: true,
            ..claims(Some([9; 32]))
        };
        let from_credential = Claims {
            app_credential: Some([3; 16]),
            ..claims(None)
        };
        let both = Claims {
            app_credential: Some([4; 16]),
            ..claims(Some([5; 32]))
        };
        let from_ec2 = Claims {
            ec2: true,
            ..claims(Some([6; 32]))
        };
        for c in [
            claims(None),
            claims(Some([7; 32])),
            from_ec2,
            unscoped,
            from_credential,
            both,
        ] {
            let t = seal("AUTH_", 3, &key, &c);
            assert!(t.starts_with("AUTH_tk"));
            assert!(t.len() < 250, "{} bytes", t.len());
            let ring = |id| (id == 3).then_some(&key);
            assert_eq!(open(&t, "AUTH_", ring), Some(c.clone()));
            let other_key = new_key();
            assert_eq!(open(&t, "AUTH_", |_| Some(&other_key)), None, "another key");
            assert_eq!(
                open(&t, "AUTH_", |_| None),
                None,
                "a key no longer in the ring"
            );
            let other = t.replacen("AUTH_", "SERVICE_", 1);
            assert_eq!(open(&other, "SERVICE_", ring), None, "another prefix");
            assert_ne!(seal("AUTH_", 3, &key, &c), t, "a fresh nonce each time");
        }
    }

    #[test]
    fn an_audit_id_reads_back_as_written() {
        let c = claims(None);
        assert_eq!(audit_id_of(&c.audit_id()), Some(c.audit_id));
        assert_eq!(audit_id_of("short"), None);
        assert_eq!(audit_id_of("not base64!"), None);
    }

    #[test]
    fn a_changed_token_opens_to_nothing() {
        let key = new_key();
        let t = seal("AUTH_", 1, &key, &claims(None));
        let body = t.strip_prefix("AUTH_tk").unwrap();
        let mut raw = URL_SAFE_NO_PAD.decode(body).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 1;
            let changed = format!("AUTH_tk{}", URL_SAFE_NO_PAD.encode(&raw));
            assert_eq!(
                open(&changed, "AUTH_", |_| Some(&key)),
                None,
                "byte {i} changed"
            );
            raw[i] ^= 1;
        }
        for bad in [
            "",
            "AUTH_tk",
            "AUTH_tk!!!!",
            "AUTH_tkAAAA",
            &t[..t.len() - 1],
            &format!("{t}A"),
            &"A".repeat(MAX_TOKEN_LENGTH + 1),
        ] {
            assert_eq!(open(bad, "AUTH_", |_| Some(&key)), None, "{bad:?}");
        }
        // the token of the v1 format before this one
        let old = format!("AUTH_tk{}", "ab".repeat(32));
        assert_eq!(open(&old, "AUTH_", |_| Some(&key)), None);
    }

    #[test]
    fn ring_keys_open_with_their_credential_key_and_id_only() {
        let (credential, key) = (new_key(), new_key());
        let sealed = seal_ring_key(&credential, 5, &key);
        assert_eq!(open_ring_key(&credential, 5, &sealed), Some(key));
        assert_eq!(open_ring_key(&credential, 6, &sealed), None);
        assert_eq!(open_ring_key(&new_key(), 5, &sealed), None);
        assert_eq!(open_ring_key(&credential, 5, &sealed[1..]), None);
    }
}
