//! Call tokens: the short-lived LiveKit access tokens Roost hands to room members.
//!
//! A token is an HS256 JWT signed with the current API secret: `iss` is the API key, `sub` the
//! participant identity, `nbf`/`iat` now and `exp` at most [`MAX_TOKEN_TTL`] later (LiveKit
//! refuses tokens without `exp` and allows one minute of clock skew), plus `name`, optional
//! `metadata` and the `video` grant. The grant is scoped to one room and every permission is
//! written explicitly, because LiveKit reads a *missing* `canPublish`/`canSubscribe` as "yes"
//! and an empty `canPublishSources` as "any source".
//!
//! Who may get which permissions is decided by the caller ([`Permissions::for_role`] is the
//! policy); this module only turns a decision into a signed token. It never logs tokens.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::livekit::MAX_TOKEN_TTL_SECS;

use super::keys::ApiKey;

/// No call token lives longer than this, whatever the configuration or request says.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(MAX_TOKEN_TTL_SECS);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the participant identity is empty")]
    NoIdentity,
    #[error("the room name is empty")]
    NoRoom,
    #[error("signing the token failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// What a participant may send (LiveKit's track sources, in its lowercase spelling).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    Camera,
    Microphone,
    ScreenShare,
    ScreenShareAudio,
}

impl TrackSource {
    pub const ALL: [TrackSource; 4] = [
        TrackSource::Camera,
        TrackSource::Microphone,
        TrackSource::ScreenShare,
        TrackSource::ScreenShareAudio,
    ];
}

/// A caller's standing in the room whose call they join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRole {
    /// Room owner or moderator.
    Moderator,
    Member,
    Guest,
}

/// Room settings that shape call permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomCallPolicy {
    /// Guests may speak and show video, not only watch and listen.
    pub guests_may_publish: bool,
    /// Members (not only moderators) may share their screen.
    pub members_may_share_screen: bool,
}

impl Default for RoomCallPolicy {
    fn default() -> Self {
        RoomCallPolicy {
            guests_may_publish: false,
            members_may_share_screen: true,
        }
    }
}

/// The permissions written into a token's grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = CallPermissions)]
pub struct Permissions {
    pub can_publish: bool,
    pub can_subscribe: bool,
    pub can_publish_data: bool,
    /// Sources that may be published; empty means none (never "any").
    pub sources: BTreeSet<TrackSource>,
    /// Invisible to other participants (for recorders and monitors, not people).
    pub hidden: bool,
}

impl Permissions {
    /// The policy: moderators publish everything; members too, screen sharing if the room
    /// allows it; guests only watch and listen unless the room lets them publish (and never
    /// share their screen). Everyone subscribes.
    pub fn for_role(role: CallRole, room: RoomCallPolicy) -> Permissions {
        let camera_and_mic = [TrackSource::Camera, TrackSource::Microphone];
        let screen = [TrackSource::ScreenShare, TrackSource::ScreenShareAudio];
        let sources: BTreeSet<TrackSource> = match role {
            CallRole::Moderator => TrackSource::ALL.into_iter().collect(),
            CallRole::Member if room.members_may_share_screen => {
                camera_and_mic.into_iter().chain(screen).collect()
            }
            CallRole::Member => camera_and_mic.into_iter().collect(),
            CallRole::Guest if room.guests_may_publish => camera_and_mic.into_iter().collect(),
            CallRole::Guest => BTreeSet::new(),
        };
        let publishes = !sources.is_empty();
        Permissions {
            can_publish: publishes,
            can_subscribe: true,
            can_publish_data: publishes,
            sources,
            hidden: false,
        }
    }
}

/// What to put in a token.
#[derive(Debug, Clone)]
pub struct CallGrant<'a> {
    pub identity: &'a str,
    /// Display name other participants see.
    pub name: &'a str,
    pub metadata: Option<&'a str>,
    /// The LiveKit room name, which scopes the token.
    pub room: &'a str,
    pub permissions: &'a Permissions,
}

/// A signed token and when it stops working.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub token: String,
    pub expires_at: SystemTime,
    pub ttl: Duration,
}

impl MintedToken {
    pub fn expires_at_unix(&self) -> u64 {
        unix_secs(self.expires_at)
    }
}

/// LiveKit's `video` grant, with its JSON field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoGrant {
    pub room_join: bool,
    pub room: String,
    pub can_publish: bool,
    pub can_subscribe: bool,
    pub can_publish_data: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub can_publish_sources: Vec<TrackSource>,
    /// Participants must not rename themselves or change the metadata Roost set.
    pub can_update_own_metadata: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
}

/// The token's claims, with LiveKit's names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub nbf: u64,
    pub iat: u64,
    pub exp: u64,
    /// A unique id, so audit entries can name a token without containing it.
    pub jti: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    pub video: VideoGrant,
}

/// The lifetime a token gets: what was asked (or the configured default), capped at
/// [`MAX_TOKEN_TTL`], and at least one second.
pub fn effective_ttl(requested: Option<Duration>, configured: Duration) -> Duration {
    requested
        .unwrap_or(configured)
        .min(configured)
        .min(MAX_TOKEN_TTL)
        .max(Duration::from_secs(1))
}

/// Signs a call token for `grant` with `key`, valid from `now` for `ttl` (see
/// [`effective_ttl`]; anything longer than [`MAX_TOKEN_TTL`] is cut to it here too).
pub fn mint(
    key: &ApiKey,
    grant: &CallGrant<'_>,
    ttl: Duration,
    now: SystemTime,
) -> Result<MintedToken, TokenError> {
    if grant.identity.is_empty() {
        return Err(TokenError::NoIdentity);
    }
    if grant.room.is_empty() {
        return Err(TokenError::NoRoom);
    }
    let ttl = ttl.min(MAX_TOKEN_TTL).max(Duration::from_secs(1));
    let issued = unix_secs(now);
    let p = grant.permissions;
    let sources: Vec<TrackSource> = p.sources.iter().copied().collect();
    // Publishing with no listed source would mean "any source" to LiveKit: never write that.
    let can_publish = p.can_publish && !sources.is_empty();
    let claims = Claims {
        iss: key.key.clone(),
        sub: grant.identity.to_owned(),
        nbf: issued,
        iat: issued,
        exp: issued + ttl.as_secs(),
        jti: token_id(),
        name: grant.name.to_owned(),
        metadata: grant.metadata.map(str::to_owned),
        video: VideoGrant {
            room_join: true,
            room: grant.room.to_owned(),
            can_publish,
            can_subscribe: p.can_subscribe,
            can_publish_data: p.can_publish_data,
            can_publish_sources: if can_publish { sources } else { Vec::new() },
            can_update_own_metadata: false,
            hidden: p.hidden,
        },
    };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.secret.expose().as_bytes()),
    )?;
    Ok(MintedToken {
        token,
        expires_at: UNIX_EPOCH + Duration::from_secs(claims.exp),
        ttl,
    })
}

fn token_id() -> String {
    let mut bytes = [0u8; 12];
    // The id only needs to be unique, not secret; an all-zero id on an RNG failure still
    // yields a valid token.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    hex::encode(bytes)
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn key() -> ApiKey {
        ApiKey {
            key: "APItest".into(),
            secret: Secret::new("s".repeat(43)),
        }
    }

    fn decode(token: &str, now: u64) -> Claims {
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_issuer(&["APItest"]);
        v.validate_exp = false; // checked by hand below against the injected clock
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &jsonwebtoken::DecodingKey::from_secret("s".repeat(43).as_bytes()),
            &v,
        )
        .unwrap();
        assert!(data.claims.nbf <= now);
        data.claims
    }

    #[test]
    fn claims_follow_livekits_names_and_scope_one_room() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let perms = Permissions::for_role(CallRole::Member, RoomCallPolicy::default());
        let t = mint(
            &key(),
            &CallGrant {
                identity: "user_42",
                name: "Alice",
                metadata: Some("{\"avatar\":1}"),
                room: "room_7",
                permissions: &perms,
            },
            Duration::from_secs(300),
            now,
        )
        .unwrap();
        assert_eq!(t.expires_at_unix(), 1_800_000_300);
        let c = decode(&t.token, 1_800_000_000);
        assert_eq!((c.iss.as_str(), c.sub.as_str()), ("APItest", "user_42"));
        assert_eq!((c.nbf, c.exp), (1_800_000_000, 1_800_000_300));
        assert_eq!(c.name, "Alice");
        // The raw JSON uses LiveKit's camelCase names and lowercase sources.
        let payload = t.token.split('.').nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            json["video"],
            serde_json::json!({
                "roomJoin": true, "room": "room_7", "canPublish": true, "canSubscribe": true,
                "canPublishData": true,
                "canPublishSources": ["camera", "microphone", "screen_share", "screen_share_audio"],
                "canUpdateOwnMetadata": false
            })
        );
        assert_eq!(json["metadata"], "{\"avatar\":1}");
    }

    #[test]
    fn ttl_is_capped_at_five_minutes_whatever_is_asked() {
        let configured = Duration::from_secs(300);
        assert_eq!(
            effective_ttl(Some(Duration::from_secs(86_400)), configured),
            MAX_TOKEN_TTL
        );
        assert_eq!(
            effective_ttl(None, Duration::from_secs(3_600)),
            MAX_TOKEN_TTL
        );
        assert_eq!(
            effective_ttl(Some(Duration::from_secs(60)), configured),
            Duration::from_secs(60)
        );
        assert_eq!(
            effective_ttl(Some(Duration::ZERO), configured),
            Duration::from_secs(1)
        );
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let perms = Permissions::for_role(CallRole::Guest, RoomCallPolicy::default());
        let grant = CallGrant {
            identity: "g",
            name: "",
            metadata: None,
            room: "r",
            permissions: &perms,
        };
        let t = mint(&key(), &grant, Duration::from_secs(7_200), now).unwrap();
        assert_eq!(t.ttl, MAX_TOKEN_TTL);
        assert_eq!(decode(&t.token, 1_000).exp, 1_300);
    }

    #[test]
    fn guests_only_listen_unless_the_room_allows_more() {
        let guest = Permissions::for_role(CallRole::Guest, RoomCallPolicy::default());
        assert!(!guest.can_publish && !guest.can_publish_data && guest.can_subscribe);
        let t = mint(
            &key(),
            &CallGrant {
                identity: "g",
                name: "",
                metadata: None,
                room: "r",
                permissions: &guest,
            },
            MAX_TOKEN_TTL,
            SystemTime::now(),
        )
        .unwrap();
        let c = decode(&t.token, unix_secs(SystemTime::now()));
        assert!(!c.video.can_publish && c.video.can_publish_sources.is_empty());

        let open = RoomCallPolicy {
            guests_may_publish: true,
            members_may_share_screen: false,
        };
        let guest = Permissions::for_role(CallRole::Guest, open);
        assert_eq!(
            guest.sources,
            [TrackSource::Camera, TrackSource::Microphone].into()
        );
        let member = Permissions::for_role(CallRole::Member, open);
        assert!(!member.sources.contains(&TrackSource::ScreenShare));
        let moderator = Permissions::for_role(CallRole::Moderator, open);
        assert_eq!(moderator.sources.len(), 4);
    }

    #[test]
    fn publishing_without_sources_is_never_written_as_any_source() {
        let odd = Permissions {
            can_publish: true,
            can_subscribe: true,
            can_publish_data: false,
            sources: BTreeSet::new(),
            hidden: false,
        };
        let t = mint(
            &key(),
            &CallGrant {
                identity: "x",
                name: "",
                metadata: None,
                room: "r",
                permissions: &odd,
            },
            MAX_TOKEN_TTL,
            SystemTime::now(),
        )
        .unwrap();
        assert!(
            !decode(&t.token, unix_secs(SystemTime::now()))
                .video
                .can_publish
        );
    }

    #[test]
    fn empty_identity_or_room_is_refused() {
        let perms = Permissions::for_role(CallRole::Member, RoomCallPolicy::default());
        let mut g = CallGrant {
            identity: "",
            name: "",
            metadata: None,
            room: "r",
            permissions: &perms,
        };
        assert!(matches!(
            mint(&key(), &g, MAX_TOKEN_TTL, SystemTime::now()),
            Err(TokenError::NoIdentity)
        ));
        g.identity = "x";
        g.room = "";
        assert!(matches!(
            mint(&key(), &g, MAX_TOKEN_TTL, SystemTime::now()),
            Err(TokenError::NoRoom)
        ));
    }
}
