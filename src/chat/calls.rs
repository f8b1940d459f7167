//! Calls in a room: `POST /api/v1/rooms/{id}/call/token` hands a room member a short-lived
//! LiveKit token scoped to that room's call, and `GET /api/v1/rooms/{id}/call` lists who is in
//! it (from `livekit::calls::Registry`).
//!
//! One mapping ties the two worlds together: Roost room `N` is LiveKit room `roost-room-N`
//! ([`livekit_room`] / [`room_id_of`]), and a user is the participant identity `user-<id>`
//! ([`identity`] / [`user_id_of`]); the gateway uses the same functions to route call events.
//! Permissions come from `livekit::tokens::Permissions::for_role` (the policy lives there);
//! this module only decides the caller's call role from their room role and account role.
//! Every token issued is audited (`media.token.issue`, never the token itself) and counted.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::Extension;
use bytes::Bytes;
use http::{header, HeaderMap};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::rooms::{Access, RoomRole};
use super::ChatError;
use crate::api::AppState;
use crate::audit::{self, Event};
use crate::auth::{Principal, Role};
use crate::edge::policy::ClientIp;
use crate::http::{ApiError, Json};
use crate::livekit::tokens::{CallGrant, CallRole, Permissions, RoomCallPolicy};
use crate::livekit::CallError;

const ROOM_PREFIX: &str = "roost-room-";
const IDENTITY_PREFIX: &str = "user-";

/// The LiveKit room name of Roost room `room_id`.
pub fn livekit_room(room_id: i64) -> String {
    format!("{ROOM_PREFIX}{room_id}")
}

/// The Roost room a LiveKit room name stands for (`None` for rooms Roost did not name).
pub fn room_id_of(livekit_room: &str) -> Option<i64> {
    livekit_room.strip_prefix(ROOM_PREFIX)?.parse().ok()
}

/// The participant identity of a user.
pub fn identity(user_id: i64) -> String {
    format!("{IDENTITY_PREFIX}{user_id}")
}

pub fn user_id_of(identity: &str) -> Option<i64> {
    identity.strip_prefix(IDENTITY_PREFIX)?.parse().ok()
}

/// The call role for a room member: owners and moderators moderate; guests are guests
/// whatever their room role.
pub fn call_role(account: Role, room: RoomRole) -> CallRole {
    match (account, room) {
        (Role::Guest, _) => CallRole::Guest,
        (_, RoomRole::Owner | RoomRole::Moderator) => CallRole::Moderator,
        _ => CallRole::Member,
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CallTokenRequest)]
pub struct TokenRequest {
    /// A shorter lifetime than the configured one (seconds); never longer.
    pub ttl_secs: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CallToken)]
pub struct TokenResponse {
    /// The `wss://` URL to connect the LiveKit client to.
    pub url: String,
    pub token: String,
    pub identity: String,
    /// The LiveKit room name the token is scoped to.
    pub room: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub permissions: Permissions,
}

/// The host the client used, for `LiveKit::client_url`.
fn request_host(headers: &HeaderMap, uri: &http::Uri) -> String {
    uri.authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "localhost".to_owned())
}

fn calls_disabled(message: impl Into<String>) -> ChatError {
    ChatError::Unavailable {
        code: "calls_disabled",
        message: message.into(),
    }
}

/// `POST /api/v1/rooms/{id}/call/token`.
#[utoipa::path(
    post,
    path = "/api/v1/rooms/{id}/call/token",
    operation_id = "createCallToken",
    summary = "Get a LiveKit token to join the room's call",
    tag = "calls",
    params(("id" = i64, Path, example = 1, description = "The room's id")),
    request_body(content = Option<TokenRequest>, description = "Optional: an empty body gets \
        the configured lifetime. Read as JSON whatever its content type."),
    responses(
        (status = 200, description = "A LiveKit token for the room's call", body = TokenResponse),
        (status = 400, description = "A body that is not valid (`invalid_body`)",
         body = crate::http::ErrorBody),
        (status = 403, description = "Not a member of the room (`not_a_member`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such room, or one the caller may not see (`not_found`)",
         body = crate::http::ErrorBody),
        (status = 503, description = "Calls are turned off or LiveKit is not installed \
         (`calls_disabled`); LiveKit is down or restarting, with the reason \
         (`livekit_unavailable`); or the server is shutting down", body = crate::http::ErrorBody),
    )
)]
pub async fn token(
    State(app): State<AppState>,
    who: Principal,
    Path(room_id): Path<i64>,
    Extension(ClientIp(client_ip)): Extension<ClientIp>,
    headers: HeaderMap,
    uri: http::Uri,
    body: Bytes,
) -> Result<Json<TokenResponse>, ApiError> {
    let req: TokenRequest = super::optional_json(&body)?;
    if !app.config.livekit.call_tokens_enabled {
        return Err(
            calls_disabled("call tokens are turned off (livekit.call_tokens_enabled)").into(),
        );
    }
    let (access, display_name) = {
        let who = who.clone();
        app.store
            .read(move |conn| {
                let access = Access::load(conn, room_id, &who)?;
                let user =
                    crate::auth::users::by_id(conn, who.user_id)?.ok_or(ChatError::NotFound)?;
                Ok::<_, ChatError>((access, user.display_name))
            })
            .await?
    };
    let Some(room_role) = access.role else {
        return Err(ChatError::forbidden(
            "not_a_member",
            "only members of this room may join its call",
        )
        .into());
    };
    let permissions = Permissions::for_role(
        call_role(who.role, room_role),
        RoomCallPolicy {
            guests_may_publish: access.room.guests_may_publish,
            ..RoomCallPolicy::default()
        },
    );
    let identity = identity(who.user_id);
    let room = livekit_room(room_id);
    let metadata = json!({ "user_id": who.user_id, "username": who.username }).to_string();
    let grant = CallGrant {
        identity: &identity,
        name: &display_name,
        metadata: Some(&metadata),
        room: &room,
        permissions: &permissions,
    };
    let minted = app
        .livekit
        .mint(&grant, req.ttl_secs.map(Duration::from_secs))
        .map_err(|e| match e {
            CallError::Unavailable(why) => {
                calls_disabled(format!("calls are not available: {why}"))
            }
            CallError::Down(why) => ChatError::Unavailable {
                code: "livekit_unavailable",
                message: format!("the call server is down, try again shortly: {why}"),
            },
            CallError::Token(t) => ChatError::Task(format!("minting a call token: {t}")),
        })?;
    let detail = json!({
        "room": room,
        "room_id": room_id,
        "identity": identity,
        "permissions": permissions,
        "ttl_secs": minted.ttl.as_secs(),
    });
    let event = Event::new("media.token.issue")
        .actor(Some(who.user_id), who.username.clone())
        .target(format!("room:{room_id}"))
        .ip(Some(client_ip))
        .detail(detail);
    app.store
        .write(move |conn| audit::record(conn, &event))
        .await?;
    app.livekit.metrics.tokens_issued.inc();
    let expires_at =
        crate::http::time::rfc3339(i64::try_from(minted.expires_at_unix()).unwrap_or(i64::MAX));
    Ok(Json(TokenResponse {
        url: app.livekit.client_url(&request_host(&headers, &uri)),
        token: minted.token,
        identity,
        room,
        expires_at,
        permissions,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallParticipant {
    /// `user-<id>` for Roost accounts.
    pub identity: String,
    /// Null for participants that are not Roost accounts.
    #[schema(required = true)]
    pub user_id: Option<i64>,
    pub name: String,
    /// RFC 3339 (as LiveKit reported it).
    #[schema(format = DateTime)]
    pub joined_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallState {
    pub room_id: i64,
    pub room: String,
    pub participants: Vec<CallParticipant>,
}

pub fn participant_view(p: &crate::livekit::calls::Participant) -> CallParticipant {
    CallParticipant {
        identity: p.identity.clone(),
        user_id: user_id_of(&p.identity),
        name: p.name.clone(),
        joined_at: crate::http::time::rfc3339(p.joined_at),
    }
}

/// `GET /api/v1/rooms/{id}/call`: who is in the room's call now (for those who may read the
/// room).
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{id}/call",
    operation_id = "getCall",
    summary = "Who is in the room's call",
    tag = "calls",
    params(("id" = i64, Path, example = 1, description = "The room's id")),
    responses(
        (status = 200, description = "Who is in the room's call now", body = CallState),
        (status = 403, description = "A public room the caller has not joined (`not_a_member`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such room, or one the caller may not see (`not_found`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn participants(
    State(app): State<AppState>,
    who: Principal,
    Path(room_id): Path<i64>,
) -> Result<Json<CallState>, ApiError> {
    app.store
        .read(move |conn| Access::load(conn, room_id, &who)?.require_read())
        .await?;
    let room = livekit_room(room_id);
    let participants = app
        .livekit
        .calls
        .participants(&room)
        .iter()
        .map(participant_view)
        .collect();
    Ok(Json(CallState {
        room_id,
        room,
        participants,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        assert_eq!(room_id_of(&livekit_room(42)), Some(42));
        assert_eq!(room_id_of("someone-elses-room"), None);
        assert_eq!(user_id_of(&identity(7)), Some(7));
        assert_eq!(user_id_of("bot"), None);
    }

    #[test]
    fn guests_stay_guests_and_room_staff_moderate() {
        assert_eq!(call_role(Role::Guest, RoomRole::Owner), CallRole::Guest);
        assert_eq!(
            call_role(Role::Member, RoomRole::Moderator),
            CallRole::Moderator
        );
        assert_eq!(call_role(Role::Admin, RoomRole::Member), CallRole::Member);
    }
}
