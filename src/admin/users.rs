//! `PATCH /api/v1/users/{id}`: an admin changes an account's role, display name or disabled
//! state. The change is `auth::users::update`'s (with its audit events and, for disabling, the
//! sessions it revokes); an account made a guest also leaves every room it joined or created
//! itself (`chat::rooms::leave_rooms_not_invited_to`) and is a plain member of the rooms it
//! keeps (`chat::rooms::drop_guest_room_roles`), each with an audit event naming the rooms.
//! All of it is one transaction (`chat::commit_noting`): the rooms' events reach connected
//! clients only once it has committed, and never for a change that was refused. A new display
//! name reaches everyone who shares a room with the account the same way (`user.updated`,
//! `chat::notices`).

use std::sync::Arc;

use axum::extract::{Path, State};
use serde_json::json;

use crate::audit;
use crate::auth::users::{self, Actor, Role, User, UserPatch};
use crate::auth::{AuthState, CallerIp, RequireAdmin};
use crate::chat::{self, EventSink};
use crate::config::Config;
use crate::http::{ApiError, Json};
use crate::store::Store;

/// `PATCH /api/v1/users/{id}` `{role?, disabled?, display_name?}` (admin). An account made a
/// guest leaves every room it joined or created itself in the same transaction
/// (`chat::rooms::leave_rooms_not_invited_to`), with an audit event naming the rooms, and is a
/// plain member of the rooms it keeps (`chat::rooms::drop_guest_room_roles`).
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    operation_id = "updateUser",
    summary = "Change an account's role, display name or disabled state (admins)",
    tag = "users",
    params(("id" = i64, Path, example = 1, description = "The account's id")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The account after the change. An account made a guest \
         has left every room it joined or created itself (`member.left` in each) and is a plain \
         member of the others (`member.updated` where it was a moderator). A new display name \
         reaches the account's connections and everyone sharing a room with it on the gateway \
         (`user.updated`)", body = User),
        (status = 400, description = "A bad display name (`invalid_display_name`: its message \
         names the character or word refused), or a bot made an admin (`bot_cannot_be_admin`)",
         body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`, `insufficient_scope`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such account (`not_found`)", body = crate::http::ErrorBody),
        (status = 409, description = "This is the last enabled admin (`last_admin`), or \
         another account has this display name or one that looks like it \
         (`display_name_taken`)", body = crate::http::ErrorBody),
    )
)]
// Each argument is an axum extractor: a part of the state the change uses, or a part of the
// request. Bundling them would only hide what the handler depends on.
#[allow(clippy::too_many_arguments)]
pub async fn update(
    State(store): State<Store>,
    State(auth): State<Arc<AuthState>>,
    State(config): State<Arc<Config>>,
    State(events): State<EventSink>,
    RequireAdmin(admin): RequireAdmin,
    ip: CallerIp,
    Path(id): Path<i64>,
    Json(patch): Json<UserPatch>,
) -> Result<Json<User>, ApiError> {
    let actor = Actor::caller(&admin, ip);
    let now_ms = auth.now_ms();
    let keep = config.gateway.resume_events_per_room;
    // One transaction: the change, and for an account made a guest, leaving the rooms nobody
    // added it to (guests read and post only where invited). The rooms' `member.left` events
    // reach connected clients once it has committed, and the account's own sockets stop
    // receiving those rooms.
    // An account that is a guest already has no room it was not invited to, so asking again
    // leaves nothing.
    let made_guest = patch.role == Some(Role::Guest);
    let user = chat::commit_noting(&store, &events, move |conn, events, notices| {
        let name_before = users::by_id(conn, id)?.map(|u| u.display_name);
        let user = users::update(conn, id, &patch, &actor, now_ms)?;
        // Everyone who shares a room with the account sees the new name at once.
        if name_before.is_some_and(|name| name != user.display_name) {
            notices.push(chat::notices::renamed(conn, &user)?);
        }
        if made_guest {
            let left = chat::rooms::leave_rooms_not_invited_to(conn, id, now_ms, keep, events)?;
            if !left.is_empty() {
                audit::record(
                    conn,
                    &actor
                        .event("user.rooms_left", now_ms)
                        .target(format!("user:{id}"))
                        .detail(json!({
                            "username": user.username,
                            "rooms": left,
                            "reason": "made a guest: kept only the rooms it was invited to",
                        })),
                )?;
            }
            // Guests never moderate: where it stays, it stays as a plain member.
            let dropped = chat::rooms::drop_guest_room_roles(conn, id, now_ms, keep, events)?;
            if !dropped.is_empty() {
                let rooms: Vec<_> = dropped
                    .iter()
                    .map(|(room, role)| json!({ "room_id": room, "from": role }))
                    .collect();
                audit::record(
                    conn,
                    &actor
                        .event("user.room_roles_dropped", now_ms)
                        .target(format!("user:{id}"))
                        .detail(json!({
                            "username": user.username,
                            "rooms": rooms,
                            "reason": "made a guest: guests are plain members of their rooms",
                        })),
                )?;
            }
        }
        Ok::<_, ApiError>(user)
    })
    .await?;
    Ok(Json(user))
}
