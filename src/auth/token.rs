//! Access tokens: HS256 JWTs with `sub, role, sid, iat, exp, jti, iss, aud`, and the keys
//! that sign and verify them.
//!
//! Verification accepts HS256 only, signed by the current key or — for one access-token
//! lifetime after a rotation — the previous one. Every rejection has its own [`Reject`]
//! reason (the `roost_auth_failures_total` label). A wrong key and a tampered token are the
//! same thing to HMAC (the signature does not match) and share the reason `bad_signature`.
//! Time checks use the caller's clock, not the library's, so they are testable.
//!
//! A valid token is not enough to be let in: `principal` also checks that the session named
//! by `sid` is still live and its user enabled. This module knows nothing of sessions.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::unix_secs;
use crate::config::Config;
use crate::secret_file;

pub const ISSUER: &str = "roost";
pub const AUDIENCE: &str = "roost-api";
/// Clock skew tolerated for `nbf` and `iat` in the future.
pub const LEEWAY_SECS: i64 = 60;
/// The HS256 signing key's file, generated at first run (`ops::provision` writes it 0600).
pub fn key_path(config: &Config) -> PathBuf {
    config.secrets_dir().join("jwt_signing.key")
}

/// The previous signing key, kept after a rotation (see [`rotate_key_files`]).
pub const PREVIOUS_KEY_FILE: &str = "jwt_signing.previous.key";

/// The claims of a Roost access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a decimal string.
    pub sub: String,
    pub role: String,
    /// The session (refresh family) the token belongs to.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub iss: String,
    pub aud: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Why a token was refused. `reason()` is the metric label; all are 401s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("unsigned tokens (alg none) are not accepted")]
    AlgNone,
    #[error("only HS256 tokens are accepted")]
    Algorithm,
    #[error("the token signature does not match")]
    Signature,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was not issued by this server")]
    Issuer,
    #[error("the token is not meant for this API")]
    Audience,
}

impl Reject {
    pub fn reason(self) -> &'static str {
        match self {
            Reject::AlgNone => "alg_none",
            Reject::Algorithm => "bad_algorithm",
            Reject::Signature => "bad_signature",
            Reject::Malformed => "malformed_token",
            Reject::Expired => "token_expired",
            Reject::NotYetValid => "token_not_yet_valid",
            Reject::Issuer => "bad_issuer",
            Reject::Audience => "bad_audience",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the token signing key {path}: {source} (run `roost init`)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token signing key {0} is empty")]
    Empty(PathBuf),
}

struct VerifyKey {
    key: DecodingKey,
    /// `None`: always valid (the current key); else accepted until this instant.
    valid_until: Option<SystemTime>,
}

/// The current signing key and the keys accepted for verification.
pub struct Keys {
    encoding: EncodingKey,
    verifying: Vec<VerifyKey>,
    validation: Validation,
    access_ttl: Duration,
}

impl Keys {
    /// `[auth] jwt_secret` if configured, else the key file `roost init` wrote; plus the
    /// previous key file if it was rotated out less than one access-token lifetime ago.
    pub fn load(config: &Config, now: SystemTime) -> Result<Keys, KeyError> {
        let access_ttl = Duration::from_secs(config.auth.access_token_ttl_secs);
        let current = if config.auth.jwt_secret.is_empty() {
            read_key(&key_path(config))?
        } else {
            config.auth.jwt_secret.expose().as_bytes().to_vec()
        };
        let mut keys = Keys::from_secret(&current, access_ttl);
        let previous = config.secrets_dir().join(PREVIOUS_KEY_FILE);
        if let Ok(meta) = std::fs::metadata(&previous) {
            // The file's modification time is the rotation time.
            let rotated_at = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let until = rotated_at + access_ttl + Duration::from_secs(LEEWAY_SECS as u64);
            if until > now {
                keys.accept_previous(&read_key(&previous)?, until);
            }
        }
        Ok(keys)
    }

    /// Keys from a raw secret (tests, and the configured-secret case).
    pub fn from_secret(secret: &[u8], access_ttl: Duration) -> Keys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        // Time is checked against our clock in `verify`, not the library's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        Keys {
            encoding: EncodingKey::from_secret(secret),
            verifying: vec![VerifyKey {
                key: DecodingKey::from_secret(secret),
                valid_until: None,
            }],
            validation,
            access_ttl,
        }
    }

    /// Also accepts tokens signed with `secret` until `until`.
    pub fn accept_previous(&mut self, secret: &[u8], until: SystemTime) {
        self.verifying.push(VerifyKey {
            key: DecodingKey::from_secret(secret),
            valid_until: Some(until),
        });
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Signs an access token for `user_id` in session `sid`; returns it with its `exp`.
    pub fn issue(&self, user_id: i64, role: &str, sid: &str, now: SystemTime) -> (String, i64) {
        let iat = unix_secs(now);
        let exp = iat + self.access_ttl.as_secs() as i64;
        let claims = Claims {
            sub: user_id.to_string(),
            role: role.to_owned(),
            sid: sid.to_owned(),
            iat,
            exp,
            jti: super::crypto::id_128(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            nbf: None,
        };
        (self.sign(&claims), exp)
    }

    /// Signs arbitrary claims with the current key (also used by tests to forge tokens).
    pub fn sign(&self, claims: &Claims) -> String {
        // HS256 with an in-memory key and serializable claims cannot fail to encode.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 encoding of plain claims cannot fail")
    }

    /// Checks a token completely: algorithm, signature, issuer, audience, then time.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, Reject> {
        check_header(token)?;
        let mut last = Reject::Signature;
        let mut claims = None;
        for vk in &self.verifying {
            if vk.valid_until.is_some_and(|until| until <= now) {
                continue;
            }
            match jsonwebtoken::decode::<Claims>(token, &vk.key, &self.validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => {
                    last = map_error(e.kind());
                    // Only a signature mismatch is worth trying the next key for.
                    if last != Reject::Signature {
                        return Err(last);
                    }
                }
            }
        }
        let claims = claims.ok_or(last)?;
        let now = unix_secs(now);
        if now >= claims.exp {
            return Err(Reject::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) || claims.iat > now + LEEWAY_SECS {
            return Err(Reject::NotYetValid);
        }
        Ok(claims)
    }
}

/// Looks at the header before the library does, so `alg: none` and other algorithms get
/// their own reasons instead of a generic parse error.
fn check_header(token: &str) -> Result<(), Reject> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| Reject::Malformed)?;
    #[derive(Deserialize)]
    struct Head {
        alg: String,
    }
    let head: Head = serde_json::from_slice(&bytes).map_err(|_| Reject::Malformed)?;
    match head.alg.as_str() {
        "HS256" => Ok(()),
        alg if alg.eq_ignore_ascii_case("none") => Err(Reject::AlgNone),
        _ => Err(Reject::Algorithm),
    }
}

fn map_error(kind: &ErrorKind) -> Reject {
    match kind {
        ErrorKind::InvalidSignature => Reject::Signature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => Reject::Algorithm,
        ErrorKind::InvalidIssuer => Reject::Issuer,
        ErrorKind::InvalidAudience => Reject::Audience,
        ErrorKind::ExpiredSignature => Reject::Expired,
        ErrorKind::ImmatureSignature => Reject::NotYetValid,
        _ => Reject::Malformed,
    }
}

fn read_key(path: &Path) -> Result<Vec<u8>, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let key = text.trim_end_matches(['\n', '\r']).as_bytes().to_vec();
    if key.is_empty() {
        return Err(KeyError::Empty(path.to_path_buf()));
    }
    Ok(key)
}

/// Rotates the generated signing key in `secrets_dir`: the current key becomes
/// `jwt_signing.previous.key` (its modification time marks the rotation, so it is accepted for
/// one access-token lifetime more) and a new random key takes its place. Takes effect at the
/// next start of the daemon. Both files are written by [`secret_file::replace`], so a crash
/// leaves either the old or the new key, never a torn one.
pub fn rotate_key_files(secrets_dir: &Path) -> std::io::Result<()> {
    let current = secrets_dir.join("jwt_signing.key");
    let old = std::fs::read(&current)?;
    secret_file::replace(&secrets_dir.join(PREVIOUS_KEY_FILE), &old)?;
    let fresh = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(super::crypto::random_bytes::<32>());
    secret_file::replace(&current, fresh.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const NOW: u64 = 1_800_000_000;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    fn keys() -> Keys {
        Keys::from_secret(
            b"0123456789abcdef0123456789abcdef",
            Duration::from_secs(900),
        )
    }

    fn claims() -> Claims {
        Claims {
            sub: "7".into(),
            role: "member".into(),
            sid: "s1".into(),
            iat: NOW as i64,
            exp: NOW as i64 + 900,
            jti: "j".into(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            nbf: None,
        }
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A token with any header, HMAC-signed with `alg` under `key`, or unsigned for `None`.
    fn forge(
        header: &str,
        claims: &Claims,
        key: &[u8],
        alg: Option<ring::hmac::Algorithm>,
    ) -> String {
        let msg = format!(
            "{}.{}",
            b64(header.as_bytes()),
            b64(&serde_json::to_vec(claims).unwrap())
        );
        let sig = match alg {
            Some(alg) => {
                b64(ring::hmac::sign(&ring::hmac::Key::new(alg, key), msg.as_bytes()).as_ref())
            }
            None => String::new(),
        };
        format!("{msg}.{sig}")
    }

    #[test]
    fn a_fresh_token_verifies_with_all_claims() {
        let k = keys();
        let (token, exp) = k.issue(7, "admin", "sid-1", now());
        let c = k.verify(&token, now()).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.role.as_str(), c.sid.as_str()),
            ("7", "admin", "sid-1")
        );
        assert_eq!((c.iat, c.exp), (NOW as i64, exp));
        assert_eq!(exp, NOW as i64 + 900);
        assert_eq!((c.iss.as_str(), c.aud.as_str()), (ISSUER, AUDIENCE));
        assert_eq!(c.jti.len(), 32);
    }

    #[test]
    fn alg_none_is_refused() {
        let t = forge(r#"{"alg":"none","typ":"JWT"}"#, &claims(), b"", None);
        assert_eq!(keys().verify(&t, now()), Err(Reject::AlgNone));
        let t = forge(r#"{"alg":"None"}"#, &claims(), b"", None);
        assert_eq!(keys().verify(&t, now()), Err(Reject::AlgNone));
    }

    #[test]
    fn other_algorithms_are_refused_even_with_the_right_key() {
        let key = b"0123456789abcdef0123456789abcdef";
        let hs512 = forge(
            r#"{"alg":"HS512"}"#,
            &claims(),
            key,
            Some(ring::hmac::HMAC_SHA512),
        );
        assert_eq!(keys().verify(&hs512, now()), Err(Reject::Algorithm));
        // Algorithm confusion: an "RS256" token whose signature is an HMAC with the secret.
        let rs256 = forge(
            r#"{"alg":"RS256"}"#,
            &claims(),
            key,
            Some(ring::hmac::HMAC_SHA256),
        );
        assert_eq!(keys().verify(&rs256, now()), Err(Reject::Algorithm));
        let es256 = forge(
            r#"{"alg":"ES256"}"#,
            &claims(),
            key,
            Some(ring::hmac::HMAC_SHA256),
        );
        assert_eq!(keys().verify(&es256, now()), Err(Reject::Algorithm));
    }

    #[test]
    fn wrong_key_and_tampering_break_the_signature() {
        let other = Keys::from_secret(
            b"another key entirely, 32 bytes!!",
            Duration::from_secs(900),
        );
        assert_eq!(
            keys().verify(&other.sign(&claims()), now()),
            Err(Reject::Signature)
        );

        let token = keys().sign(&claims());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut elevated = claims();
        elevated.role = "admin".into();
        parts[1] = b64(&serde_json::to_vec(&elevated).unwrap());
        assert_eq!(
            keys().verify(&parts.join("."), now()),
            Err(Reject::Signature)
        );
    }

    #[test]
    fn time_is_checked_against_the_given_clock() {
        let k = keys();
        let mut c = claims();
        c.exp = NOW as i64;
        assert_eq!(k.verify(&k.sign(&c), now()), Err(Reject::Expired));
        c.exp = NOW as i64 - 3600;
        assert_eq!(k.verify(&k.sign(&c), now()), Err(Reject::Expired));

        let mut c = claims();
        c.nbf = Some(NOW as i64 + 120);
        assert_eq!(k.verify(&k.sign(&c), now()), Err(Reject::NotYetValid));
        c.nbf = Some(NOW as i64 + 30); // within the leeway
        assert!(k.verify(&k.sign(&c), now()).is_ok());

        let mut c = claims();
        c.iat = NOW as i64 + 120;
        c.exp = NOW as i64 + 1000;
        assert_eq!(k.verify(&k.sign(&c), now()), Err(Reject::NotYetValid));
    }

    #[test]
    fn issuer_and_audience_must_be_ours() {
        let k = keys();
        let mut c = claims();
        c.iss = "someone-else".into();
        assert_eq!(k.verify(&k.sign(&c), now()), Err(Reject::Issuer));
        let mut c = claims();
        c.aud = "another-api".into();
        assert_eq!(k.verify(&k.sign(&c), now()), Err(Reject::Audience));
    }

    #[test]
    fn garbage_is_malformed() {
        let k = keys();
        for t in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &format!("{}.e30.", b64(b"{}")),
        ] {
            assert_eq!(k.verify(t, now()), Err(Reject::Malformed), "{t:?}");
        }
        // Right signature, but claims missing.
        let msg = format!("{}.{}", b64(br#"{"alg":"HS256"}"#), b64(br#"{"sub":"1"}"#));
        let sig = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"0123456789abcdef0123456789abcdef"),
            msg.as_bytes(),
        );
        let t = format!("{msg}.{}", b64(sig.as_ref()));
        assert_eq!(k.verify(&t, now()), Err(Reject::Malformed));
    }

    #[test]
    fn previous_key_is_accepted_for_one_lifetime_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        std::fs::create_dir_all(config.secrets_dir()).unwrap();
        std::fs::write(key_path(&config), "old-key-old-key-old-key-old-key!").unwrap();

        let wall = SystemTime::now();
        let before = Keys::load(&config, wall).unwrap();
        let (old_token, _) = before.issue(1, "member", "s", wall);

        rotate_key_files(&config.secrets_dir()).unwrap();
        let after = Keys::load(&config, wall).unwrap();
        let (new_token, _) = after.issue(1, "member", "s", wall);
        assert!(
            after.verify(&old_token, wall).is_ok(),
            "old tokens still work"
        );
        assert!(after.verify(&new_token, wall).is_ok());
        assert_eq!(before.verify(&new_token, wall), Err(Reject::Signature));

        // One access-token lifetime (plus leeway) later the previous key is no longer loaded.
        let later = wall + Duration::from_secs(900 + 61);
        let reloaded = Keys::load(&config, later).unwrap();
        assert_eq!(reloaded.verify(&old_token, later), Err(Reject::Signature));
        // An in-memory key set also stops accepting it at that instant.
        assert_eq!(
            after.verify(&old_token, later).unwrap_err(),
            Reject::Signature
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(config.secrets_dir().join(PREVIOUS_KEY_FILE))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
