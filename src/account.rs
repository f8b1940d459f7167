//! A person's own account, as they manage it themselves: `/api/v1/me`. Reading it
//! (`GET`, `auth::sign_in::me`) is `auth`'s; changing one's display name (`PATCH`) is here,
//! because the new name must also reach, live, everyone who shares a room with the person
//! (`user.updated`, `chat::notices`), and `auth` knows nothing of rooms. The two methods share
//! one path, and a path is mounted by one module only, so this module mounts both.
//!
//! The rename is the admin's (`admin::users`) with the caller as the account: the same
//! `auth::users::update` (validation, normalisation, the look-alike check, the audit event)
//! and the same notice, all in one `chat::commit_noting`, so nobody hears of a name that was
//! refused or not committed. Changing one's password stays `auth`'s
//! (`POST /api/v1/auth/password`). This module keeps no state and must not grow roles, rooms
//! or passwords of its own: it only joins what `auth` and `chat` already do.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use serde::Deserialize;

use crate::auth::users::{self, Actor, User, UserPatch};
use crate::auth::{sign_in, AuthError, AuthState, CallerIp, Principal};
use crate::chat::{self, EventSink};
use crate::documented;
use crate::http::{ApiError, Json, Routes};
use crate::store::Store;

/// `/api/v1/me`: `GET` (auth's) and `PATCH` (this module's) on the one path.
pub fn routes<S>() -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
    Store: FromRef<S>,
    Arc<AuthState>: FromRef<S>,
    EventSink: FromRef<S>,
{
    Routes::new().api(documented!(sign_in::me, update_me))
}

/// What a person may change about their own account.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MePatch {
    /// 1 to 64 characters (stored in NFKC) without control or invisible characters, each word
    /// in one script, and not like another account's name; blank resets it to the username.
    #[schema(max_length = 64, example = "Grandma")]
    pub display_name: String,
}

/// `PATCH /api/v1/me` `{display_name}`: the caller's new display name.
#[utoipa::path(
    patch,
    path = "/api/v1/me",
    operation_id = "updateMe",
    summary = "Change one's own display name",
    tag = "auth",
    request_body = MePatch,
    responses(
        (status = 200, description = "The account with its new name. It reaches the caller's \
         connections and everyone sharing a room with them on the gateway (`user.updated`); \
         asking for the name one already has changes nothing and says nothing", body = User),
        (status = 400, description = "A bad display name (`invalid_display_name`: its message \
         names the character or word refused)", body = crate::http::ErrorBody),
        (status = 403, description = "An API key without the `write` scope \
         (`insufficient_scope`)", body = crate::http::ErrorBody),
        (status = 409, description = "Another account has this display name or one that looks \
         like it (`display_name_taken`)", body = crate::http::ErrorBody),
    )
)]
pub async fn update_me(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    State(events): State<EventSink>,
    who: Principal,
    ip: CallerIp,
    Json(patch): Json<MePatch>,
) -> Result<Json<User>, ApiError> {
    let actor = Actor::caller(&who, ip);
    let (id, now_ms) = (who.user_id, auth.now_ms());
    let change = UserPatch {
        display_name: Some(patch.display_name),
        ..UserPatch::default()
    };
    let user = chat::commit_noting(&store, &events, move |conn, _events, notices| {
        // The caller was authenticated a moment ago; an account gone since is a signed-out one.
        let before = users::by_id(conn, id)?.ok_or(AuthError::Unauthenticated)?;
        let user = users::update(conn, id, &change, &actor, now_ms)?;
        // Everyone who shares a room with the person sees the new name at once.
        if user.display_name != before.display_name {
            notices.push(chat::notices::renamed(conn, &user)?);
        }
        Ok::<_, ApiError>(user)
    })
    .await?;
    Ok(Json(user))
}
