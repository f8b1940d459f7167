//! Secret values: never printed, never required inline.
//!
//! Every secret key `x` in a section `s` is resolved in this order: the inline value, the file
//! named by `x_file`, then `$CREDENTIALS_DIRECTORY/s_x` (systemd `LoadCredential=s_x:...`).
//! An empty result means "use the secret `roost init` generated in the data dir". In the
//! production profile a configured secret that is short or looks like a placeholder is an error.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Config, Problem, Profile};

/// The minimum length of a configured secret in the production profile.
pub const MIN_SECRET_BYTES: usize = 32;
const PLACEHOLDERS: [&str; 3] = ["change-me", "changeme", "example"];

/// A secret string. `Debug` and `Display` never show the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(<unset>)"
        } else {
            "Secret(<redacted>)"
        })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// One secret key: where it lives in the config and how to reach its parts.
struct SecretKey {
    section: &'static str,
    key: &'static str,
    value: fn(&mut Config) -> (&mut Secret, &mut String),
}

/// Every secret the configuration knows. A new secret key is one more line here.
const SECRET_KEYS: &[SecretKey] = &[
    SecretKey {
        section: "auth",
        key: "jwt_secret",
        value: |c| (&mut c.auth.jwt_secret, &mut c.auth.jwt_secret_file),
    },
    SecretKey {
        section: "livekit",
        key: "api_secret",
        value: |c| (&mut c.livekit.api_secret, &mut c.livekit.api_secret_file),
    },
];

pub(super) fn resolve(
    config: &mut Config,
    getenv: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    let profile = config.profile();
    let credentials_dir = getenv("CREDENTIALS_DIRECTORY");
    for sk in SECRET_KEYS {
        let name = format!("{}.{}", sk.section, sk.key);
        let (secret, file) = (sk.value)(config);
        if !secret.is_empty() && !file.is_empty() {
            problems.push(Problem::key(
                &name,
                "both an inline value and a _file are set",
                &format!("keep only one of `{}` and `{}_file`", sk.key, sk.key),
            ));
            continue;
        }
        if secret.is_empty() && !file.is_empty() {
            match read_secret_file(Path::new(file.as_str())) {
                Ok(v) => *secret = Secret(v),
                Err(e) => {
                    problems.push(Problem::key(
                        &format!("{name}_file"),
                        &format!("cannot read {file}: {e}"),
                        "point it at a readable file that holds only the secret",
                    ));
                    continue;
                }
            }
        }
        if secret.is_empty() {
            if let Some(dir) = &credentials_dir {
                let cred = Path::new(dir).join(format!("{}_{}", sk.section, sk.key));
                if cred.exists() {
                    match read_secret_file(&cred) {
                        Ok(v) => *secret = Secret(v),
                        Err(e) => problems.push(Problem::key(
                            &name,
                            &format!("cannot read credential {}: {e}", cred.display()),
                            "check the LoadCredential= line of the unit",
                        )),
                    }
                }
            }
        }
        if profile == Profile::Production && !secret.is_empty() {
            if let Some(why) = weakness(secret.expose()) {
                problems.push(Problem::key(
                    &name,
                    &format!("secret is {why}"),
                    "generate one with `head -c 32 /dev/urandom | base64`, or leave it empty to use the key `roost init` generated",
                ));
            }
        }
    }
}

/// Why a configured secret is unacceptable in production, if it is.
pub fn weakness(secret: &str) -> Option<String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Some(format!("shorter than {MIN_SECRET_BYTES} bytes"));
    }
    let lower = secret.to_ascii_lowercase();
    PLACEHOLDERS
        .iter()
        .find(|p| lower.contains(*p))
        .map(|p| format!("a placeholder (contains {p:?})"))
}

/// Longest secret file read. Secrets are tens of bytes; a larger "secret" is a wrong path.
const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Reads a secret file, trimming one trailing newline (editors add one). Only a regular file of
/// at most [`MAX_SECRET_FILE_BYTES`] is read: a path to `/dev/zero` or a FIFO would otherwise
/// read until memory runs out, or block startup forever.
fn read_secret_file(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    if !std::fs::metadata(path)?.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SECRET_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {MAX_SECRET_FILE_BYTES} bytes"),
        ));
    }
    Ok(text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text)
        .to_owned())
}
