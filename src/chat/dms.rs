//! Direct messages: a room of kind `dm` between exactly two accounts, and the people a caller
//! may start one with.
//!
//! Who may message whom ([`may_message`]): two member-role accounts (members and admins) always;
//! when either is a guest, only if they share a room (a plain room, not a DM). Nobody messages
//! themselves or a disabled account. One pair has at most one DM (`rooms.dm_pair`, migration
//! 13): opening it again returns the same room.
//!
//! A DM is otherwise a room like any other (messages, reads, search, attachments and calls go
//! through `rooms::Access`), except that only its two people see it, admins included, and that
//! nobody renames it, joins it, is added to or leaves it (`rooms::Access::refuse_dm_change`).
//! Its members are both `member` and recorded as invited, so an account made a guest keeps its
//! DMs.
//!
//! Either person may hide a DM from their own room list ([`hide`], like closing a conversation;
//! the `hidden_dms` table, migration 16): it stays a DM with all its messages, the other person
//! still lists it, and it is back in the list as soon as a message comes after the point it was
//! hidden at, or its person opens it again (`POST /api/v1/dms`). Hiding it, and opening it
//! again, reach that person's other devices at once (`dm.hidden`, `dm.shown`:
//! [`super::notices`]). This module knows nothing about sockets: opening a DM appends the two
//! `member.joined` events, which [`super::commit`] publishes to both people's connections.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::rooms::{add_member, Access, Joining, RoomRole, RoomView};
use super::{commit_noting, notices, ChatError, EventSink};
use crate::auth::{users, Principal, Role};
use crate::config::Config;
use crate::http::time::now_ms;
use crate::http::{ApiError, Json, Query};
use crate::store::Store;

/// What a room is: a room people join and leave, or a direct message between two accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    Room,
    Dm,
}

/// An account as a person picker and a direct message show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Person {
    pub id: i64,
    pub username: String,
    pub display_name: String,
}

/// The member of DM `room_id` who is not `me` (`None` once their account is deleted).
pub fn other_person(conn: &Connection, room_id: i64, me: i64) -> Result<Option<Person>, ChatError> {
    Ok(conn
        .prepare_cached(
            "SELECT u.id, u.username, u.display_name
               FROM room_members m JOIN users u ON u.id = m.user_id
              WHERE m.room_id = ?1 AND m.user_id != ?2 LIMIT 1",
        )?
        .query_row(params![room_id, me], |r| {
            Ok(Person {
                id: r.get(0)?,
                username: r.get(1)?,
                display_name: r.get(2)?,
            })
        })
        .optional()?)
}

/// Whether accounts `a` and `b` are both members of one plain room.
fn share_a_room(conn: &Connection, a: i64, b: i64) -> Result<bool, ChatError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (
                SELECT 1 FROM room_members x
                  JOIN room_members y ON y.room_id = x.room_id AND y.user_id = ?2
                  JOIN rooms r ON r.id = x.room_id AND r.kind = 'room'
                 WHERE x.user_id = ?1)",
        )?
        .query_row(params![a, b], |r| r.get(0))?)
}

/// Refuses a DM between `who` and `target` unless the rules above allow it.
fn may_message(conn: &Connection, who: &Principal, target: &users::User) -> Result<(), ChatError> {
    if target.id == who.user_id {
        return Err(ChatError::invalid(
            "dm_self",
            "a direct message is with someone else",
        ));
    }
    if target.disabled {
        return Err(ChatError::invalid(
            "user_disabled",
            "this account is disabled",
        ));
    }
    let guest_involved = who.role == Role::Guest || target.role == Role::Guest;
    if guest_involved && !share_a_room(conn, who.user_id, target.id)? {
        return Err(ChatError::forbidden(
            "dm_not_allowed",
            "a guest has direct messages only with people who share a room with them",
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenDm {
    /// The account to message.
    pub user_id: i64,
}

/// `POST /api/v1/dms`: opens the caller's DM with an account, or returns the one they have.
#[utoipa::path(
    post,
    path = "/api/v1/dms",
    operation_id = "openDm",
    summary = "Open a direct message with someone",
    description = "A direct message is a room of kind `dm` with exactly the caller and \
        `user_id` as members; its `dm_with` names the other person. One pair has at most one: \
        asking again returns it (200). Both people receive its `member.joined` events on the \
        gateway. Members and admins may message any active account that is not a guest; a \
        guest, and anyone messaging a guest, only people who share a room with them. Nobody \
        joins, is added to, leaves, renames or changes a direct message (403 `dm_fixed`), and \
        only its two people see it, admins included.",
    tag = "rooms",
    request_body = OpenDm,
    responses(
        (status = 201, description = "Opened: the new direct message", body = RoomView),
        (status = 200, description = "The direct message the two already have (back in the \
         caller's room list if they had hidden it)", body = RoomView),
        (status = 400, description = "The caller's own id (`dm_self`), or a disabled account \
         (`user_disabled`)", body = crate::http::ErrorBody),
        (status = 403, description = "A guest and someone who shares no room with them \
         (`dm_not_allowed`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such account (`not_found`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn open(
    State(store): State<Store>,
    State(sink): State<EventSink>,
    State(config): State<Arc<Config>>,
    who: Principal,
    Json(req): Json<OpenDm>,
) -> Result<Response, ApiError> {
    let keep = config.gateway.resume_events_per_room;
    let (created, room) = commit_noting(&store, &sink, move |conn, events, noted| {
        if req.user_id == who.user_id {
            // Said before looking the account up, so the answer does not depend on it.
            return Err(ChatError::invalid(
                "dm_self",
                "a direct message is with someone else",
            ));
        }
        let target = users::by_id(conn, req.user_id)?.ok_or(ChatError::NotFound)?;
        may_message(conn, &who, &target)?;
        let pair = format!(
            "{}:{}",
            who.user_id.min(target.id),
            who.user_id.max(target.id)
        );
        let existing: Option<i64> = conn
            .prepare_cached("SELECT id FROM rooms WHERE dm_pair = ?1")?
            .query_row([&pair], |r| r.get(0))
            .optional()?;
        if let Some(room_id) = existing {
            // Starting the conversation again brings it back to a list it was hidden from, on
            // every device of the caller.
            let shown = conn
                .prepare_cached("DELETE FROM hidden_dms WHERE user_id = ?1 AND room_id = ?2")?
                .execute(params![who.user_id, room_id])?;
            if shown > 0 {
                noted.push(notices::dm_shown(who.user_id, room_id));
            }
            return Ok((false, Access::load(conn, room_id, &who)?.room));
        }
        let now = now_ms();
        // No name (clients show the other person's), private, and both may publish in its
        // calls: a DM has no moderator to let a guest speak.
        let room_id: i64 = conn.query_row(
            "INSERT INTO rooms (name, topic, visibility, guests_may_publish, created_by,
                                created_at, updated_at, kind, dm_pair)
             VALUES ('', '', 'private', 1, ?1, ?2, ?2, 'dm', ?3) RETURNING id",
            params![who.user_id, now, pair],
            |r| r.get(0),
        )?;
        // The other person first: their connections subscribe on their own `member.joined`,
        // so they also receive the caller's, and see the whole log of the DM.
        for user_id in [target.id, who.user_id] {
            // Invited, so that an account made a guest keeps its DMs
            // (`rooms::leave_rooms_not_invited_to`).
            let joining = Joining {
                user_id,
                role: RoomRole::Member,
                invited: true,
            };
            add_member(conn, room_id, joining, now, keep, events)?;
        }
        Ok((true, Access::load(conn, room_id, &who)?.room))
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(room)).into_response())
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HideDm {
    /// The newest room event sequence number the client has shown for this DM: a message
    /// after it brings the DM back to the list at once, so one that arrived while the person
    /// was closing it is not hidden unseen. Default (and at most): the DM's `last_seq`.
    #[schema(minimum = 0)]
    pub seq: Option<i64>,
}

/// `PUT /api/v1/dms/{id}/hidden`: hides a direct message from the caller's room list.
#[utoipa::path(
    put,
    path = "/api/v1/dms/{id}/hidden",
    operation_id = "hideDm",
    summary = "Hide a direct message from the caller's room list",
    description = "Like closing a conversation: in the caller's `GET /api/v1/rooms` the \
        direct message carries `\"hidden\": true`, and clients leave it out of the list. The \
        caller's gateway connections hear `dm.hidden` at once (and `dm.shown` when it is \
        opened again), so their other devices follow. Nothing else changes: it keeps its messages, the \
        caller stays in it and still receives its events on the gateway, and the other person \
        still lists it. It is shown again (no `hidden`) once a message comes after `seq`, or \
        when the caller opens it again with `POST /api/v1/dms`. Hiding it again moves `seq`.",
    tag = "rooms",
    params(("id" = i64, Path, example = 1, description = "The direct message's room id")),
    request_body(content = Option<HideDm>, description = "Optional: an empty body hides it \
        up to its newest event."),
    responses(
        (status = 204, description = "Hidden from the caller's list"),
        (status = 400, description = "A body that is not valid (`invalid_body`), a negative \
         `seq` (`invalid_seq`), or a room that is not a direct message (`not_a_dm`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such room, or one the caller may not see \
         (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn hide(
    State(store): State<Store>,
    State(sink): State<EventSink>,
    who: Principal,
    Path(room_id): Path<i64>,
    body: bytes::Bytes,
) -> Result<StatusCode, ApiError> {
    let wanted = super::optional_json::<HideDm>(&body)?.seq;
    if wanted.is_some_and(|seq| seq < 0) {
        return Err(ChatError::invalid("invalid_seq", "`seq` is 0 or more").into());
    }
    commit_noting(&store, &sink, move |conn, _events, noted| {
        let access = Access::load(conn, room_id, &who)?;
        if !access.is_dm() {
            return Err(ChatError::invalid(
                "not_a_dm",
                "only a direct message can be hidden; leave a room instead",
            ));
        }
        // Only its two people see a DM, so a member is all that is left here.
        access.require_member()?;
        let last_seq = access.room.last_seq;
        let seq = wanted.map_or(last_seq, |seq| seq.min(last_seq));
        conn.prepare_cached(
            "INSERT INTO hidden_dms (user_id, room_id, seq, hidden_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id, room_id) DO UPDATE
                    SET seq = excluded.seq, hidden_at = excluded.hidden_at",
        )?
        .execute(params![who.user_id, room_id, seq, now_ms()])?;
        noted.push(notices::dm_hidden(who.user_id, room_id, seq));
        Ok::<_, ChatError>(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The SQL condition that room `r` is a DM account `?1` hid (the room list's `hidden`): a
/// `hidden_dms` row and no message after the point it was hidden at.
pub const HIDDEN_BY_CALLER: &str = "EXISTS (
    SELECT 1 FROM hidden_dms h
     WHERE h.user_id = ?1 AND h.room_id = r.id
       AND NOT EXISTS (SELECT 1 FROM messages hm WHERE hm.room_id = r.id AND hm.seq > h.seq))";

/// Largest page of `GET /api/v1/people`.
const MAX_PEOPLE_PAGE: usize = 50;
const DEFAULT_PEOPLE_PAGE: usize = 20;
/// Longest search text: a username has at most 32 characters, a display name 64.
const MAX_PEOPLE_QUERY_CHARS: usize = 64;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeopleQuery {
    /// Only people whose username starts with this text or whose display name contains it
    /// (case-insensitive for ASCII letters). At most 64 characters.
    #[param(max_length = 64)]
    pub q: Option<String>,
    /// The next page: people whose username sorts after this one (the last of a page).
    pub after: Option<String>,
    /// 1 to 50 (default 20; other values are clamped).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PeoplePage {
    /// By username.
    pub people: Vec<Person>,
    /// More people match: ask again with `after` set to the last username of this page.
    pub has_more: bool,
}

/// `q` as a LIKE pattern: `%` and `_` match themselves (escaped with `\`).
fn like_escaped(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `GET /api/v1/people`: the active accounts the caller may open a direct message with.
#[utoipa::path(
    get,
    path = "/api/v1/people",
    operation_id = "listPeople",
    summary = "Find people to message",
    description = "Active accounts other than the caller that `POST /api/v1/dms` would accept: \
        for members and admins every active member and admin, and guests who share a room with \
        them; for a guest, the people who share a room with them. Id, username and display \
        name only, by username, a page at a time.",
    tag = "rooms",
    params(PeopleQuery),
    responses(
        (status = 200, description = "A page of people", body = PeoplePage),
        (status = 400, description = "A `q` longer than 64 characters or another bad value \
         (`invalid_query`)", body = crate::http::ErrorBody),
    )
)]
pub async fn people(
    State(store): State<Store>,
    who: Principal,
    Query(query): Query<PeopleQuery>,
) -> Result<Json<PeoplePage>, ApiError> {
    let q = query.q.as_deref().map(str::trim).unwrap_or_default();
    if q.chars().count() > MAX_PEOPLE_QUERY_CHARS {
        return Err(ChatError::invalid(
            "invalid_query",
            format!("`q` has at most {MAX_PEOPLE_QUERY_CHARS} characters"),
        )
        .into());
    }
    let (prefix, contains) = if q.is_empty() {
        (None, None)
    } else {
        let q = like_escaped(q);
        (Some(format!("{q}%")), Some(format!("%{q}%")))
    };
    let limit = query
        .limit
        .unwrap_or(DEFAULT_PEOPLE_PAGE)
        .clamp(1, MAX_PEOPLE_PAGE);
    let after = query.after;
    let mut people = store
        .read(move |conn| {
            // One more than the page, to tell whether there is a next one.
            let mut stmt = conn.prepare_cached(
                "SELECT u.id, u.username, u.display_name FROM users u
                  WHERE u.disabled = 0 AND u.id != ?1
                    AND ((?2 AND u.role != 'guest') OR EXISTS (
                        SELECT 1 FROM room_members x
                          JOIN room_members y ON y.room_id = x.room_id AND y.user_id = u.id
                          JOIN rooms r ON r.id = x.room_id AND r.kind = 'room'
                         WHERE x.user_id = ?1))
                    AND (?3 IS NULL OR u.username LIKE ?3 ESCAPE '\\'
                         OR u.display_name LIKE ?4 ESCAPE '\\')
                    AND (?5 IS NULL OR u.username > ?5)
                  ORDER BY u.username LIMIT ?6",
            )?;
            let rows = stmt.query_map(
                params![
                    who.user_id,
                    who.role != Role::Guest,
                    prefix,
                    contains,
                    after,
                    i64::try_from(limit + 1).unwrap_or(i64::MAX)
                ],
                |r| {
                    Ok(Person {
                        id: r.get(0)?,
                        username: r.get(1)?,
                        display_name: r.get(2)?,
                    })
                },
            )?;
            Ok::<_, ChatError>(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let has_more = people.len() > limit;
    people.truncate(limit);
    Ok(Json(PeoplePage { people, has_more }))
}

#[cfg(test)]
mod tests {
    use super::like_escaped;

    #[test]
    fn search_text_is_matched_literally() {
        assert_eq!(like_escaped("a_b%c\\"), "a\\_b\\%c\\\\");
        assert_eq!(like_escaped("bea"), "bea");
    }
}
