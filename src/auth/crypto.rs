//! Random secrets and their stored form: every opaque credential Roost hands out (refresh
//! tokens, API key secrets, invite and setup codes, rotation tokens) is 128 to 256 random bits
//! from the system generator, and only its SHA-256 is kept. SHA-256 (not argon2) is right
//! here because the inputs are uniformly random and too long to guess, unlike passwords.
//!
//! Nothing here stores, logs or compares plaintext secrets anywhere else.

use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// Fills `N` bytes from the system CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The system generator only fails if the OS has no entropy source at all (no getrandom,
    // no /dev/urandom); Roost cannot issue any credential safely then.
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random generator is available");
    bytes
}

/// 256 random bits as 64 lowercase hex characters.
pub fn token_256() -> String {
    hex::encode(random_bytes::<32>())
}

/// 128 random bits as 32 lowercase hex characters (session ids, JWT ids).
pub fn id_128() -> String {
    hex::encode(random_bytes::<16>())
}

/// The form a secret is stored in.
pub fn sha256(secret: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
        .as_ref()
        .to_vec()
}

/// True if `secret` is the one whose stored form (SHA-256) is `stored`. Constant time: the
/// stored hash must not leak through timing, byte by byte. A stored value of another length
/// never matches.
pub fn matches_stored(stored: &[u8], secret: &str) -> bool {
    bool::from(stored.ct_eq(&sha256(secret)))
}

/// The stored form of a human-typed code (invite, setup): case and surrounding space do not
/// matter.
pub fn code_hash(code: &str) -> Vec<u8> {
    sha256(&normalize_code(code))
}

/// Characters of human-typed codes: no 0/O, 1/l/I, so they survive being read aloud.
const CODE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A code for humans: `groups` groups of four characters joined by '-', about 19.6 bits per
/// group. Rejection sampling keeps every character equally likely.
pub fn human_code(groups: usize) -> String {
    let mut out = String::with_capacity(groups * 5);
    let mut produced = 0;
    while produced < groups * 4 {
        for b in random_bytes::<32>() {
            // 248 = 8 * 31: bytes at or above it would bias the first characters.
            if b >= 248 || produced == groups * 4 {
                continue;
            }
            if produced > 0 && produced % 4 == 0 {
                out.push('-');
            }
            out.push(CODE_ALPHABET[usize::from(b) % CODE_ALPHABET.len()] as char);
            produced += 1;
        }
    }
    out
}

/// Normalizes a human-typed code before hashing: case and surrounding space do not matter.
pub fn normalize_code(code: &str) -> String {
    code.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_codes_have_the_promised_shape() {
        let code = human_code(5);
        assert_eq!(code.len(), 24, "{code}");
        assert_eq!(code.split('-').count(), 5);
        assert!(code
            .chars()
            .all(|c| c == '-' || CODE_ALPHABET.contains(&(c as u8))));
        assert_ne!(human_code(5), code);
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        assert_eq!(token_256().len(), 64);
        assert_ne!(token_256(), token_256());
        assert_eq!(sha256("x").len(), 32);
    }

    #[test]
    fn stored_secrets_match_only_themselves() {
        let stored = sha256("secret");
        assert!(matches_stored(&stored, "secret"));
        assert!(!matches_stored(&stored, "secreT"));
        assert!(
            !matches_stored(&stored[..31], "secret"),
            "a shorter stored value"
        );
        assert!(!matches_stored(&[], "secret"));
        assert_eq!(code_hash("  AbCd-EFGH "), sha256("abcd-efgh"));
    }
}
