//! LiveKit webhook deliveries: `webhook::verify` on an arbitrary `Authorization` value and body,
//! then (so the fuzzer gets past the signature) a token the harness signs with the configured
//! secret over fuzzed claims, and `webhook::apply` on the body it vouches for. Neither may
//! panic; a forged or altered delivery must never verify.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use roost::livekit::keys::KeyRing;
use roost::livekit::{webhook, LiveKit};

const KEY: &str = "APIfuzzkey";
const SECRET: &str = "fuzzing-secret-that-is-long-enough-0123456789";

struct Fixture {
    ring: KeyRing,
    livekit: Arc<LiveKit>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut config = roost::config::dev_defaults();
        config.livekit.enabled = true;
        config.livekit.api_key = KEY.into();
        config.livekit.api_secret = roost::config::Secret::new(SECRET);
        let ring = roost::livekit::keys::load(&config, SystemTime::now()).expect("inline keys");
        let metrics = roost::metrics::Metrics::new();
        let livekit = LiveKit::new(
            Arc::new(config),
            &metrics,
            std::env::temp_dir(),
            tokio_util::sync::CancellationToken::new(),
        );
        Fixture { ring, livekit }
    })
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    // Raw: first line is the Authorization value, the rest the body.
    let (auth, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(auth) = std::str::from_utf8(auth) {
        // Nobody but the holder of SECRET can make a valid token, and the harness's signed
        // tokens never appear in raw input by chance.
        assert!(webhook::verify(&f.ring, Some(auth), body, now()).is_err());
    }

    // Signed: the body is hashed into claims the harness signs; the first line, if it is a JSON
    // object, adds or overrides claims (exp, nbf, sha256...).
    let digest = {
        use base64::Engine;
        let d = ring::digest::digest(&ring::digest::SHA256, body);
        base64::engine::general_purpose::STANDARD.encode(d.as_ref())
    };
    let mut claims = serde_json::json!({
        "iss": KEY,
        "exp": 1_800_000_060u64,
        "sha256": digest,
    });
    if let Ok(serde_json::Value::Object(extra)) = serde_json::from_slice::<serde_json::Value>(auth)
    {
        for (k, v) in extra {
            claims[k] = v;
        }
    }
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("signing JSON claims");
    if webhook::verify(&f.ring, Some(&token), body, now()).is_ok() {
        webhook::apply(&f.livekit, body);
    }
    // One byte changed in the body must break the hash check.
    if !body.is_empty() {
        let mut altered = body.to_vec();
        altered[0] ^= 1;
        assert!(webhook::verify(&f.ring, Some(&token), &altered, now()).is_err());
    }
});
