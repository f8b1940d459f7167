//! `POST /livekit/webhook`: LiveKit's event notifications, on the internal listener, and also
//! on the public HTTPS one when `livekit.external_url` names a LiveKit on other machines.
//!
//! LiveKit signs each delivery: the `Authorization` header holds a bare JWT (no `Bearer`)
//! issued by one of our API keys, signed HS256 with its secret, whose `sha256` claim is the
//! standard base64 of the SHA-256 of the exact body. Anything that does not verify gets 401
//! and is counted in `roost_livekit_webhook_rejected_total{reason}`; the body is only parsed
//! after that. Parsing is lenient (unknown fields, int64 values as strings or numbers, either
//! field-name spelling): a field Roost cannot read is treated as absent, never as an error.
//!
//! Only `participant_joined` (with the room's `sid`, LiveKit's id of this session of the room),
//! `participant_left`/`participant_connection_aborted` and `room_finished` change anything (the [`Registry`](super::calls::Registry)); other events
//! are acknowledged and ignored. While calls are disabled (by configuration or a missing
//! binary) the endpoint answers 503 `livekit_disabled`. This module never logs tokens or bodies,
//! and logs refusals at most once per [`REJECT_LOG_INTERVAL`] (anyone can post on the public
//! listener; the metric counts every one).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{header, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::http::ApiError;

use super::calls::Participant;
use super::keys::KeyRing;
use super::{LiveKit, RejectLabels, Status};

/// Largest webhook body accepted. LiveKit's events carry one room and one participant with
/// their tracks, a few KiB; larger bodies get 413 without being read further.
pub const MAX_WEBHOOK_BODY: usize = 256 * 1024;
/// Clock skew tolerated on `exp`/`nbf`, as LiveKit allows for its own tokens.
pub const LEEWAY_SECS: u64 = 60;
/// At most one warning per this interval for refused deliveries.
pub const REJECT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Why a delivery was refused (the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    MissingAuth,
    Malformed,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    BodyHash,
    TooLarge,
}

impl Reject {
    pub fn reason(self) -> &'static str {
        match self {
            Reject::MissingAuth => "missing_auth",
            Reject::Malformed => "malformed",
            Reject::UnknownKey => "unknown_key",
            Reject::BadSignature => "bad_signature",
            Reject::Expired => "expired",
            Reject::NotYetValid => "not_yet_valid",
            Reject::BodyHash => "body_hash",
            Reject::TooLarge => "too_large",
        }
    }
}

#[derive(Deserialize)]
struct WebhookClaims {
    exp: Option<u64>,
    nbf: Option<u64>,
    #[serde(default)]
    sha256: String,
}

/// Checks a delivery's `Authorization` value against the key ring and the body, as of `now`.
pub fn verify(
    ring: &KeyRing,
    auth: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Result<(), Reject> {
    let token = auth
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Reject::MissingAuth)?;
    // LiveKit sends the bare token; tolerate a Bearer prefix from other senders.
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let unverified = unverified_issuer(token).ok_or(Reject::Malformed)?;
    let secret = ring.secret_for(&unverified).ok_or(Reject::UnknownKey)?;

    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    // Time is checked below against the injected clock; the issuer is the key we looked up.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[unverified.as_str()]);
    let claims = jsonwebtoken::decode::<WebhookClaims>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(secret.expose().as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidSignature => Reject::BadSignature,
        _ => Reject::Malformed,
    })?
    .claims;

    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match claims.exp {
        None => return Err(Reject::Malformed),
        Some(exp) if exp.saturating_add(LEEWAY_SECS) < now => return Err(Reject::Expired),
        Some(_) => {}
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS))
    {
        return Err(Reject::NotYetValid);
    }
    let digest = base64::engine::general_purpose::STANDARD.encode(sha256(body));
    if claims.sha256.is_empty() || !bool::from(digest.as_bytes().ct_eq(claims.sha256.as_bytes())) {
        return Err(Reject::BodyHash);
    }
    Ok(())
}

/// The `iss` claim read without checking the signature, only to pick the secret to check with.
fn unverified_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(str::to_owned)
}

pub async fn receive(State(lk): State<Arc<LiveKit>>, req: Request) -> Response {
    let ring = match (lk.status(), lk.keys()) {
        (Status::Disabled(_), _) | (_, None) => {
            return ApiError::unavailable(
                "livekit_disabled",
                "LiveKit is not enabled on this server",
            )
            .into_response()
        }
        (_, Some(ring)) => ring,
    };
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match axum::body::to_bytes(req.into_body(), MAX_WEBHOOK_BODY).await {
        Ok(b) => b,
        Err(_) => {
            count(&lk, Reject::TooLarge);
            return ApiError::payload_too_large(MAX_WEBHOOK_BODY).into_response();
        }
    };
    if let Err(reject) = verify(&ring, auth.as_deref(), &body, SystemTime::now()) {
        count(&lk, reject);
        if reject_log_due(SystemTime::now()) {
            tracing::warn!(
                reason = reject.reason(),
                "rejected a LiveKit webhook (further ones within {} s are only counted in \
                 roost_livekit_webhook_rejected_total)",
                REJECT_LOG_INTERVAL.as_secs()
            );
        }
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_webhook",
            "the webhook signature could not be verified",
        )
        .into_response();
    }
    apply(&lk, &body);
    (StatusCode::OK, Body::empty()).into_response()
}

/// Whether a refusal at `now` may be logged: the first one, then one per [`REJECT_LOG_INTERVAL`].
fn reject_log_due(now: SystemTime) -> bool {
    static LAST_LOGGED_MS: AtomicU64 = AtomicU64::new(0);
    let now_ms = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let last = LAST_LOGGED_MS.load(Ordering::Relaxed);
    let interval_ms = u64::try_from(REJECT_LOG_INTERVAL.as_millis()).unwrap_or(u64::MAX);
    (last == 0 || now_ms.saturating_sub(last) >= interval_ms)
        && LAST_LOGGED_MS
            .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

fn count(lk: &LiveKit, reject: Reject) {
    lk.metrics
        .webhook_rejected
        .get_or_create(&RejectLabels {
            reason: reject.reason(),
        })
        .inc();
}

/// Applies a verified event to the call registry.
pub fn apply(lk: &LiveKit, body: &[u8]) {
    let Ok(event) = serde_json::from_slice::<Value>(body) else {
        tracing::warn!("a verified LiveKit webhook is not JSON; ignored");
        return;
    };
    let kind = text(&event, &["event"]);
    let room = text(&event, &["room", "name"]);
    let identity = text(&event, &["participant", "identity"]);
    let sid = text(&event, &["participant", "sid"]);
    tracing::debug!(event = %kind, room = %room, identity = %identity, "LiveKit webhook");
    match kind.as_str() {
        "participant_joined" if !room.is_empty() && !identity.is_empty() => {
            lk.calls.joined(
                &room,
                &text(&event, &["room", "sid"]),
                Participant {
                    name: text(&event, &["participant", "name"]),
                    joined_at: int(&event, &["participant", "joinedAt"])
                        .or_else(|| int(&event, &["participant", "joined_at"]))
                        .unwrap_or(0),
                    identity,
                    sid,
                },
            );
        }
        "participant_left" | "participant_connection_aborted"
            if !room.is_empty() && !identity.is_empty() =>
        {
            lk.calls.left(&room, &identity, &sid)
        }
        "room_finished" if !room.is_empty() => lk.calls.finished(&room),
        _ => {}
    }
}

/// A string at `path`, or empty.
fn text(v: &Value, path: &[&str]) -> String {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// An int64 at `path`: protobuf JSON writes them as strings, other senders as numbers.
fn int(v: &Value, path: &[&str]) -> Option<i64> {
    match path.iter().try_fold(v, |v, k| v.get(k))? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::livekit::keys::ApiKey;

    fn ring() -> KeyRing {
        KeyRing {
            current: ApiKey {
                key: "APIcur".into(),
                secret: Secret::new("c".repeat(43)),
            },
            previous: Some((
                ApiKey {
                    key: "APIold".into(),
                    secret: Secret::new("o".repeat(43)),
                },
                SystemTime::now() + Duration::from_secs(300),
            )),
        }
    }

    /// Signs like LiveKit does: HS256, iss = key, exp, sha256 of the body.
    fn sign(key: &str, secret: &str, body: &[u8], exp: u64, sha: Option<String>) -> String {
        let claims = serde_json::json!({
            "iss": key, "nbf": exp - 300, "exp": exp,
            "sha256": sha.unwrap_or_else(|| base64::engine::general_purpose::STANDARD.encode(sha256(body))),
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    const NOW: u64 = 1_800_000_000;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn genuine_deliveries_from_either_key_verify() {
        let body = br#"{"event":"room_started"}"#;
        let r = ring();
        let t = sign("APIcur", &"c".repeat(43), body, NOW + 300, None);
        assert_eq!(verify(&r, Some(&t), body, at(NOW)), Ok(()));
        let t = sign("APIold", &"o".repeat(43), body, NOW + 300, None);
        assert_eq!(verify(&r, Some(&t), body, at(NOW)), Ok(()));
        // within the minute of leeway after expiry
        assert_eq!(verify(&r, Some(&t), body, at(NOW + 330)), Ok(()));
    }

    #[test]
    fn every_forgery_is_refused_with_its_reason() {
        let body = br#"{"event":"participant_joined"}"#;
        let r = ring();
        let good = sign("APIcur", &"c".repeat(43), body, NOW + 300, None);
        assert_eq!(verify(&r, None, body, at(NOW)), Err(Reject::MissingAuth));
        assert_eq!(
            verify(&r, Some("   "), body, at(NOW)),
            Err(Reject::MissingAuth)
        );
        assert_eq!(
            verify(&r, Some("not.a.jwt"), body, at(NOW)),
            Err(Reject::Malformed)
        );
        let wrong_key = sign("APIother", &"c".repeat(43), body, NOW + 300, None);
        assert_eq!(
            verify(&r, Some(&wrong_key), body, at(NOW)),
            Err(Reject::UnknownKey)
        );
        let wrong_secret = sign("APIcur", &"x".repeat(43), body, NOW + 300, None);
        assert_eq!(
            verify(&r, Some(&wrong_secret), body, at(NOW)),
            Err(Reject::BadSignature)
        );
        assert_eq!(
            verify(&r, Some(&good), br#"{"event":"room_finished"}"#, at(NOW)),
            Err(Reject::BodyHash)
        );
        let no_hash = sign(
            "APIcur",
            &"c".repeat(43),
            body,
            NOW + 300,
            Some(String::new()),
        );
        assert_eq!(
            verify(&r, Some(&no_hash), body, at(NOW)),
            Err(Reject::BodyHash)
        );
        assert_eq!(
            verify(&r, Some(&good), body, at(NOW + 400)),
            Err(Reject::Expired)
        );
        assert_eq!(
            verify(&r, Some(&good), body, at(NOW - 1000)),
            Err(Reject::NotYetValid)
        );
        // A token whose payload was edited to name our key fails the signature.
        let mut parts: Vec<&str> = wrong_key.split('.').collect();
        let forged_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::json!({"iss":"APIcur","exp":NOW+300,"sha256":"x"}).to_string());
        parts[1] = &forged_payload;
        assert_eq!(
            verify(&r, Some(&parts.join(".")), body, at(NOW)),
            Err(Reject::BadSignature)
        );
    }

    #[test]
    fn refusals_are_logged_at_most_once_per_interval() {
        // Far beyond any real clock, so other tests' refusals (at the real time) do not count.
        let t = UNIX_EPOCH + Duration::from_secs(4_000_000_000);
        assert!(reject_log_due(t));
        assert!(!reject_log_due(t + Duration::from_secs(1)));
        assert!(!reject_log_due(
            t + REJECT_LOG_INTERVAL - Duration::from_millis(1)
        ));
        assert!(reject_log_due(t + REJECT_LOG_INTERVAL));
        assert!(!reject_log_due(t + REJECT_LOG_INTERVAL));
    }

    #[test]
    fn events_are_read_leniently() {
        let v: Value = serde_json::from_str(
            r#"{"participant":{"joinedAt":"1700000000","joined_at":5},"createdAt":12}"#,
        )
        .unwrap();
        assert_eq!(int(&v, &["participant", "joinedAt"]), Some(1_700_000_000));
        assert_eq!(int(&v, &["participant", "joined_at"]), Some(5));
        assert_eq!(int(&v, &["participant", "missing"]), None);
        assert_eq!(text(&v, &["participant", "joinedAt"]), "1700000000");
        assert_eq!(text(&v, &["room", "name"]), "");
    }
}
