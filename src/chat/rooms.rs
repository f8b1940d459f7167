//! Rooms and their members: the HTTP handlers and the one access rule every chat path uses.
//!
//! Who may do what ([`Access`]):
//! - read a room (messages, members, events) and post: its members; admins read every room;
//! - see that a room exists: readers, plus every member-role account for public rooms
//!   (guests see only rooms they were invited to); anyone else gets 404, not 403;
//! - change the room and its members: the room's owner and moderators, and admins;
//! - join a public room: any member-role account, by adding itself; leave: anyone, by removing
//!   itself. Each membership records whether someone else added the member (`invited`): an
//!   account made a guest leaves, in the same transaction, every room it joined or created
//!   itself ([`leave_rooms_not_invited_to`]).
//! - a guest account's room role is `member`, never more: giving it a higher one is refused
//!   (`guest_room_role`), and the transaction that makes an account a guest also takes its
//!   higher roles back ([`drop_guest_room_roles`]). Guests read and post; they never moderate.
//!
//! - a direct message (kind `dm`, [`super::dms`]) is a room of exactly two accounts: only they
//!   see, read and post in it (admins included: it is private to its two people), nobody
//!   moderates, renames, joins, is added to or leaves it (`dm_fixed`).
//!
//! Every change appends a room event (`room.updated`, `member.joined`, `member.updated`,
//! `member.left`) in the same transaction. Creating a public room, changing one, or making one
//! private also gives that event a `directory` frame for the people outside the room
//! ([`super::directory`]). This module knows nothing about sockets.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::dms::{self, Person, RoomKind};
use super::events::{self, MemberChange};
use super::{commit, ChatError, EventSink, RoomEvent};
use crate::auth::{users, Principal, RequireMember, Role};
use crate::config::Config;
use crate::http::time::now_ms;
use crate::http::{ApiError, Json};
use crate::store::Store;

const MAX_NAME_CHARS: usize = 100;
const MAX_TOPIC_CHARS: usize = 1000;
/// Rooms listed at most (a Pi server for a family or club has far fewer).
const MAX_LISTED_ROOMS: i64 = 1000;

/// A member's standing in one room.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RoomRole {
    Member,
    Moderator,
    Owner,
}

impl RoomRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomRole::Member => "member",
            RoomRole::Moderator => "moderator",
            RoomRole::Owner => "owner",
        }
    }
    pub fn parse(s: &str) -> Option<RoomRole> {
        match s {
            "member" => Some(RoomRole::Member),
            "moderator" => Some(RoomRole::Moderator),
            "owner" => Some(RoomRole::Owner),
            _ => None,
        }
    }
}

/// A room as the API shows it. `my_role` is the caller's role (absent when not a member).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Room)]
pub struct RoomView {
    pub id: i64,
    /// `room`, or `dm` for a direct message between two accounts.
    pub kind: RoomKind,
    /// Empty for a direct message: clients name it after `dm_with`.
    pub name: String,
    pub topic: String,
    pub private: bool,
    pub guests_may_publish: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The sequence number of the room's newest event (the gateway cursor).
    pub last_seq: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub my_role: Option<RoomRole>,
    /// When the room last changed (its newest event: a message, an edit, a member...). Only
    /// in the room list, which clients sort by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub last_activity: Option<String>,
    /// In the room list, for rooms the caller is a member of: the room event sequence number
    /// the caller has read up to (`PUT /api/v1/rooms/{id}/read`), on any device.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub read_seq: Option<i64>,
    /// In the room list, for rooms the caller is a member of: messages by others after
    /// `read_seq` that are not deleted, counted up to 999 only (to bound the query's cost).
    /// Call entries are not messages to read and are not counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, maximum = 999)]
    pub unread: Option<i64>,
    /// In the room list, for rooms the caller is a member of: when the newest call after
    /// `read_seq` that has ended and that the caller neither started nor joined started (a
    /// missed call). Absent when there is none; reading past it (`PUT /api/v1/rooms/{id}/read`)
    /// clears it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub missed_call_at: Option<String>,
    /// For a direct message: the other person in it (absent once their account is deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub dm_with: Option<Person>,
    /// In the room list, `true` for a direct message the caller hid from it
    /// (`PUT /api/v1/dms/{id}/hidden`) and no message has come in since: clients leave it out
    /// of the list, and show it again when a message comes. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub hidden: Option<bool>,
}

/// The columns [`room_from_row`] reads, in its order; callers' own columns start at 9.
const ROOM_COLUMNS: &str = "r.id, r.name, r.topic, r.visibility, r.guests_may_publish, \
    r.created_at, r.updated_at, r.last_seq, r.kind";

fn room_from_row(row: &Row<'_>) -> rusqlite::Result<RoomView> {
    let visibility: String = row.get(3)?;
    let kind: String = row.get(8)?;
    Ok(RoomView {
        id: row.get(0)?,
        // The CHECK constraint allows only 'room' and 'dm'.
        kind: if kind == "dm" {
            RoomKind::Dm
        } else {
            RoomKind::Room
        },
        name: row.get(1)?,
        topic: row.get(2)?,
        private: visibility == "private",
        guests_may_publish: row.get(4)?,
        created_at: crate::http::time::rfc3339_ms(row.get(5)?),
        updated_at: crate::http::time::rfc3339_ms(row.get(6)?),
        last_seq: row.get(7)?,
        my_role: None,
        last_activity: None,
        read_seq: None,
        unread: None,
        missed_call_at: None,
        dm_with: None,
        hidden: None,
    })
}

/// A room and the caller's relation to it.
#[derive(Debug, Clone)]
pub struct Access {
    pub room: RoomView,
    pub role: Option<RoomRole>,
    pub user_role: Role,
}

impl Access {
    /// Loads the room and the caller's membership; `NotFound` if the room does not exist or
    /// the caller may not see it.
    pub fn load(conn: &Connection, room_id: i64, who: &Principal) -> Result<Access, ChatError> {
        Access::load_for(conn, room_id, who.user_id, who.role)
    }

    pub fn load_for(
        conn: &Connection,
        room_id: i64,
        user_id: i64,
        user_role: Role,
    ) -> Result<Access, ChatError> {
        let found = conn
            .prepare_cached(&format!(
                "SELECT {ROOM_COLUMNS}, m.role FROM rooms r
                   LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = ?2
                  WHERE r.id = ?1"
            ))?
            .query_row(params![room_id, user_id], |row| {
                let role: Option<String> = row.get(9)?;
                Ok((room_from_row(row)?, role.and_then(|r| RoomRole::parse(&r))))
            })
            .optional()?;
        let Some((mut room, role)) = found else {
            return Err(ChatError::NotFound);
        };
        room.my_role = role;
        if room.kind == RoomKind::Dm && role.is_some() {
            room.dm_with = dms::other_person(conn, room_id, user_id)?;
        }
        let access = Access {
            room,
            role,
            user_role,
        };
        if !access.can_see() {
            return Err(ChatError::NotFound);
        }
        Ok(access)
    }

    pub fn is_member(&self) -> bool {
        self.role.is_some()
    }
    pub fn is_dm(&self) -> bool {
        self.room.kind == RoomKind::Dm
    }
    /// A direct message is seen by its two people only (they are its members).
    pub fn can_see(&self) -> bool {
        self.can_read() || (!self.room.private && self.user_role >= Role::Member && !self.is_dm())
    }
    /// Admins read every room but direct messages, which are private to their two people.
    pub fn can_read(&self) -> bool {
        self.is_member() || (self.user_role == Role::Admin && !self.is_dm())
    }
    /// A room role above member counts only for a member-role account: a guest row left
    /// above member (which the writes here never make) still moderates nothing. Nobody
    /// moderates a direct message: each of its two people edits and deletes their own.
    pub fn can_moderate(&self) -> bool {
        !self.is_dm()
            && ((self.role >= Some(RoomRole::Moderator) && self.user_role >= Role::Member)
                || self.user_role == Role::Admin)
    }
    /// Refuses changes to who is in a direct message, its name and settings.
    pub fn refuse_dm_change(&self, what: &str) -> Result<(), ChatError> {
        if self.is_dm() {
            Err(ChatError::forbidden(
                "dm_fixed",
                format!("a direct message is between its two people only: {what}"),
            ))
        } else {
            Ok(())
        }
    }
    pub fn require_read(&self) -> Result<(), ChatError> {
        if self.can_read() {
            Ok(())
        } else {
            Err(ChatError::forbidden(
                "not_a_member",
                "join this room to read it",
            ))
        }
    }
    pub fn require_member(&self) -> Result<(), ChatError> {
        if self.is_member() {
            Ok(())
        } else {
            Err(ChatError::forbidden(
                "not_a_member",
                "only members of this room may do this",
            ))
        }
    }
    pub fn require_moderator(&self) -> Result<(), ChatError> {
        if self.can_moderate() {
            Ok(())
        } else {
            Err(ChatError::forbidden(
                "forbidden",
                "only the room's owner and moderators may do this",
            ))
        }
    }
}

/// The rooms `user_id` is a member of, each with its `last_seq`, read in one statement (so one
/// snapshot): the gateway's subscriptions, and where each room's log stood when they were read.
pub fn memberships(conn: &Connection, user_id: i64) -> Result<Vec<(i64, i64)>, ChatError> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.room_id, r.last_seq FROM room_members m JOIN rooms r ON r.id = m.room_id
          WHERE m.user_id = ?1 ORDER BY m.room_id",
    )?;
    let rows = stmt.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A room name as stored: what `names::clean` makes of it (NFKC, trimmed; no control or
/// invisible characters, one script per word), 1 to 100 characters. Room names need not be
/// unique: a room is found by its id, and only its members see a private one.
fn check_name(name: &str) -> Result<String, ChatError> {
    let name = crate::names::clean(name).map_err(|refused| {
        ChatError::invalid(
            "invalid_name",
            format!("a room name may not contain {refused}"),
        )
    })?;
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ChatError::invalid(
            "invalid_name",
            format!("a room name has 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name)
}

/// A topic as stored: trimmed, at most 1000 characters, lines and tabs allowed but no other
/// control character and nothing invisible (a direction override would turn the room's
/// header around for everyone).
fn check_topic(topic: &str) -> Result<String, ChatError> {
    if topic.chars().count() > MAX_TOPIC_CHARS {
        return Err(ChatError::invalid(
            "invalid_topic",
            format!("a topic has at most {MAX_TOPIC_CHARS} characters"),
        ));
    }
    let topic = topic.trim().replace("\r\n", "\n");
    if let Some(refused) = crate::names::find_refused(&topic, &['\n', '\t']) {
        return Err(ChatError::invalid(
            "invalid_topic",
            format!("a topic may not contain {refused}"),
        ));
    }
    Ok(topic)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// 1 to 100 characters (stored in NFKC), no control or invisible characters, each word in
    /// one script.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// At most 1000 characters; newlines and tabs but no other control or invisible character.
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub topic: String,
    #[serde(default)]
    pub private: bool,
    #[serde(default)]
    pub guests_may_publish: bool,
}

/// A member as events and the member list show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Member)]
pub struct MemberView {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub role: RoomRole,
    /// The account's role (guests are shown as such).
    pub account_role: Role,
    /// A bot (an integration or an incoming webhook), not a person.
    pub bot: bool,
}

fn member_view(conn: &Connection, user_id: i64, role: RoomRole) -> Result<MemberView, ChatError> {
    let user = users::by_id(conn, user_id)?.ok_or(ChatError::NotFound)?;
    Ok(MemberView {
        user_id,
        username: user.username,
        display_name: user.display_name,
        role,
        account_role: user.role,
        bot: user.bot,
    })
}

/// `POST /api/v1/rooms`: members and admins create rooms; the creator is its owner.
#[utoipa::path(
    post,
    path = "/api/v1/rooms",
    operation_id = "createRoom",
    summary = "Create a room",
    tag = "rooms",
    request_body = CreateRoom,
    responses(
        (status = 201, description = "The room; the caller is its owner", body = RoomView),
        (status = 400, description = "A bad name (`invalid_name`) or topic (`invalid_topic`)",
         body = crate::http::ErrorBody),
        (status = 403, description = "Guests may not create rooms (`forbidden`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn create(
    State(store): State<Store>,
    State(sink): State<EventSink>,
    State(config): State<Arc<Config>>,
    RequireMember(who): RequireMember,
    Json(req): Json<CreateRoom>,
) -> Result<Response, ApiError> {
    let name = check_name(&req.name)?;
    let topic = check_topic(&req.topic)?;
    let keep = config.gateway.resume_events_per_room;
    let room = commit(&store, &sink, move |conn, events| {
        let now = now_ms();
        let id: i64 = conn.query_row(
            "INSERT INTO rooms (name, topic, visibility, guests_may_publish, created_by, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING id",
            params![
                name,
                topic,
                if req.private { "private" } else { "public" },
                req.guests_may_publish,
                who.user_id,
                now
            ],
            |r| r.get(0),
        )?;
        let creator = Joining {
            user_id: who.user_id,
            role: RoomRole::Owner,
            invited: false,
        };
        add_member(conn, id, creator, now, keep, events)?;
        let room = Access::load(conn, id, &who)?.room;
        // Everyone who may join it hears of a public room now, not at their next reload.
        if let Some(joined) = events.last_mut() {
            joined.directory = super::directory::listed(&room, now);
        }
        Ok(room)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(room)).into_response())
}

/// Who joins a room, in which role, and how.
pub(crate) struct Joining {
    pub(crate) user_id: i64,
    pub(crate) role: RoomRole,
    /// Someone else added them (a moderator, the owner, an admin), as opposed to joining a
    /// public room or creating the room themselves. An account made a guest keeps only the
    /// rooms it was invited to ([`leave_rooms_not_invited_to`]).
    pub(crate) invited: bool,
}

pub(crate) fn add_member(
    conn: &Connection,
    room_id: i64,
    joining: Joining,
    now: i64,
    keep: u64,
    events: &mut Vec<RoomEvent>,
) -> Result<MemberView, ChatError> {
    let Joining {
        user_id,
        role,
        invited,
    } = joining;
    conn.prepare_cached(
        "INSERT INTO room_members (room_id, user_id, role, invited, joined_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![room_id, user_id, role.as_str(), invited, now])?;
    let view = member_view(conn, user_id, role)?;
    let event = events::append(
        conn,
        room_id,
        "member.joined",
        &view,
        now,
        keep,
        Some(MemberChange::Joined(user_id)),
    )?;
    // What was said before someone joined is not news to them.
    super::reads::advance(conn, user_id, room_id, event.seq, now)?;
    events.push(event);
    Ok(view)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RoomList {
    pub rooms: Vec<RoomView>,
}

/// `GET /api/v1/rooms`: the caller's rooms, the public rooms they may join (member-role
/// accounts), and for admins every room; the direct messages the caller hid ([`dms::hide`])
/// marked `hidden`.
#[utoipa::path(
    get,
    path = "/api/v1/rooms",
    operation_id = "listRooms",
    summary = "List the caller's rooms and the public rooms they may join",
    tag = "rooms",
    description = "Each room the caller is a member of carries `read_seq` and `unread`: the \
        caller's read position and the messages by others after it that are not deleted (call \
        entries are not counted), counted up to 999 only to bound the cost of the count; and, \
        while the newest ended call after `read_seq` is one the caller neither started nor \
        joined, `missed_call_at`: when it started. A \
        direct message the caller hid (`PUT /api/v1/dms/{id}/hidden`) carries `\"hidden\": true` \
        until a message comes after the point it was hidden at or the caller opens it again: \
        leave it out of the list.",
    responses((status = 200, description = "At most 1000 rooms, oldest first, each with its \
               `last_activity`", body = RoomList))
)]
pub async fn list(State(store): State<Store>, who: Principal) -> Result<Json<RoomList>, ApiError> {
    let rooms = store
        .read(move |conn| {
            // The newest event is one primary-key lookup; its time is the room's last activity
            // (the room's own update time once retention has pruned a quiet room's log).
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ROOM_COLUMNS}, m.role,
                        COALESCE((SELECT e.at FROM events e
                                   WHERE e.room_id = r.id AND e.seq = r.last_seq),
                                 r.updated_at),
                        {HIDDEN_BY_CALLER}
                   FROM rooms r
                   LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = ?1
                  WHERE m.user_id IS NOT NULL
                     OR (r.kind = 'room' AND ((?2 AND r.visibility = 'public') OR ?3))
                  ORDER BY r.id LIMIT ?4",
                HIDDEN_BY_CALLER = dms::HIDDEN_BY_CALLER
            ))?;
            let rows = stmt.query_map(
                params![
                    who.user_id,
                    who.role >= Role::Member,
                    who.role == Role::Admin,
                    MAX_LISTED_ROOMS
                ],
                |row| {
                    let mut room = room_from_row(row)?;
                    let role: Option<String> = row.get(9)?;
                    room.my_role = role.and_then(|r| RoomRole::parse(&r));
                    room.last_activity = Some(crate::http::time::rfc3339_ms(row.get(10)?));
                    room.hidden = row.get::<_, bool>(11)?.then_some(true);
                    Ok(room)
                },
            )?;
            let mut rooms = rows.collect::<Result<Vec<_>, _>>()?;
            for room in rooms.iter_mut().filter(|r| r.my_role.is_some()) {
                let read = super::reads::state(conn, who.user_id, room.id)?;
                room.read_seq = Some(read.read_seq);
                room.unread = Some(read.unread);
                room.missed_call_at = read.missed_call_at;
                if room.kind == RoomKind::Dm {
                    room.dm_with = dms::other_person(conn, room.id, who.user_id)?;
                }
            }
            Ok::<_, ChatError>(rooms)
        })
        .await?;
    Ok(Json(RoomList { rooms }))
}

/// `GET /api/v1/rooms/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{id}",
    operation_id = "getRoom",
    summary = "Get a room",
    tag = "rooms",
    params(("id" = i64, Path, example = 1, description = "The room's id")),
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 404, description = "No such room, or one the caller may not see (`not_found`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn get(
    State(store): State<Store>,
    who: Principal,
    Path(room_id): Path<i64>,
) -> Result<Json<RoomView>, ApiError> {
    let access = store
        .read(move |conn| Access::load(conn, room_id, &who))
        .await?;
    Ok(Json(access.room))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoom {
    /// 1 to 100 characters (stored in NFKC), no control or invisible characters, each word in
    /// one script.
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// At most 1000 characters; newlines and tabs but no other control or invisible character.
    #[schema(max_length = 1000)]
    pub topic: Option<String>,
    pub private: Option<bool>,
    pub guests_may_publish: Option<bool>,
}

/// `PATCH /api/v1/rooms/{id}`: owner, moderators and admins; emits `room.updated`.
#[utoipa::path(
    patch,
    path = "/api/v1/rooms/{id}",
    operation_id = "updateRoom",
    summary = "Change a room's name, topic or settings",
    tag = "rooms",
    params(("id" = i64, Path, example = 1, description = "The room's id")),
    request_body = UpdateRoom,
    responses(
        (status = 200, description = "The room after the change", body = RoomView),
        (status = 400, description = "A bad name (`invalid_name`) or topic (`invalid_topic`)",
         body = crate::http::ErrorBody),
        (status = 403, description = "Not the room's owner, a moderator or an admin \
         (`forbidden`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such room, or one the caller may not see (`not_found`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn update(
    State(store): State<Store>,
    State(sink): State<EventSink>,
    State(config): State<Arc<Config>>,
    who: Principal,
    Path(room_id): Path<i64>,
    Json(req): Json<UpdateRoom>,
) -> Result<Json<RoomView>, ApiError> {
    let name = req.name.as_deref().map(check_name).transpose()?;
    let topic = req.topic.as_deref().map(check_topic).transpose()?;
    let keep = config.gateway.resume_events_per_room;
    let room = commit(&store, &sink, move |conn, events| {
        let access = Access::load(conn, room_id, &who)?;
        access.refuse_dm_change("it has no name or settings to change")?;
        access.require_moderator()?;
        let now = now_ms();
        conn.execute(
            "UPDATE rooms SET name = coalesce(?2, name), topic = coalesce(?3, topic),
                    visibility = coalesce(?4, visibility),
                    guests_may_publish = coalesce(?5, guests_may_publish), updated_at = ?6
              WHERE id = ?1",
            params![
                room_id,
                name,
                topic,
                req.private.map(|p| if p { "private" } else { "public" }),
                req.guests_may_publish,
                now
            ],
        )?;
        let mut room = Access::load(conn, room_id, &who)?.room;
        room.my_role = None;
        let mut event = events::append(conn, room_id, "room.updated", &room, now, keep, None)?;
        room.last_seq = event.seq;
        // People outside the room see a public room's new name at once, and a room made
        // private leave their list.
        event.directory = super::directory::changed(&room, !access.room.private, now);
        room.my_role = access.role;
        events.push(event);
        Ok(room)
    })
    .await?;
    Ok(Json(room))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberView>,
}

/// `GET /api/v1/rooms/{id}/members`: for those who may read the room.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{id}/members",
    operation_id = "listRoomMembers",
    summary = "List a room's members",
    tag = "rooms",
    params(("id" = i64, Path, example = 1, description = "The room's id")),
    responses(
        (status = 200, description = "The members, in the order they joined", body = MemberList),
        (status = 403, description = "A public room the caller has not joined (`not_a_member`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such room, or one the caller may not see (`not_found`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn members(
    State(store): State<Store>,
    who: Principal,
    Path(room_id): Path<i64>,
) -> Result<Json<MemberList>, ApiError> {
    let members = store
        .read(move |conn| {
            Access::load(conn, room_id, &who)?.require_read()?;
            let mut stmt = conn.prepare_cached(
                "SELECT u.id, u.username, u.display_name, m.role, u.role, u.kind = 'bot'
                   FROM room_members m JOIN users u ON u.id = m.user_id
                  WHERE m.room_id = ?1 ORDER BY m.joined_at, u.id",
            )?;
            let rows = stmt.query_map([room_id], |r| {
                let role: String = r.get(3)?;
                let account: String = r.get(4)?;
                Ok(MemberView {
                    user_id: r.get(0)?,
                    username: r.get(1)?,
                    display_name: r.get(2)?,
                    role: RoomRole::parse(&role).unwrap_or(RoomRole::Member),
                    account_role: Role::parse(&account).unwrap_or(Role::Guest),
                    bot: r.get(5)?,
                })
            })?;
            Ok::<_, ChatError>(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(MemberList { members }))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutMember {
    /// `member` (default) or `moderator`.
    pub role: Option<RoomRole>,
}

/// `PUT /api/v1/rooms/{id}/members/{user_id}`: add a member (moderators; or oneself to a
/// public room), or change a member's role (owner and admins may make moderators). 201 when
/// added, 200 when changed or already so.
#[utoipa::path(
    put,
    path = "/api/v1/rooms/{id}/members/{user_id}",
    operation_id = "putRoomMember",
    summary = "Add a member to a room, or change their room role",
    tag = "rooms",
    params(
        ("id" = i64, Path, example = 1, description = "The room's id"),
        ("user_id" = i64, Path, example = 1, description = "The account's id"),
    ),
    request_body(content = Option<PutMember>, description = "Optional: an empty body adds a \
        member with the `member` role. Read as JSON whatever its content type."),
    responses(
        (status = 201, description = "Added", body = MemberView),
        (status = 200, description = "Changed, or already so", body = MemberView),
        (status = 400, description = "A body that is not valid (`invalid_body`), a disabled \
         account (`user_disabled`), or `moderator` for a guest account (`guest_room_role`)",
         body = crate::http::ErrorBody),
        (status = 403, description = "Not allowed: only moderators add others, only the owner \
         and admins make or unmake moderators, the owner's role is fixed (`forbidden`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such room or account, or a room the caller may not \
         see (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn put_member(
    State(store): State<Store>,
    State(sink): State<EventSink>,
    State(config): State<Arc<Config>>,
    who: Principal,
    Path((room_id, user_id)): Path<(i64, i64)>,
    body: bytes::Bytes,
) -> Result<Response, ApiError> {
    let wanted = super::optional_json::<PutMember>(&body)?.role;
    let keep = config.gateway.resume_events_per_room;
    let (created, view) = commit(&store, &sink, move |conn, events| {
        let access = Access::load(conn, room_id, &who)?;
        access.refuse_dm_change("nobody joins or is added to it")?;
        let now = now_ms();
        let current: Option<String> = conn
            .query_row(
                "SELECT role FROM room_members WHERE room_id = ?1 AND user_id = ?2",
                params![room_id, user_id],
                |r| r.get(0),
            )
            .optional()?;
        let current = current.and_then(|r| RoomRole::parse(&r));
        // An owner's row on a guest account (none is written since guests never moderate)
        // grants nothing, as in `Access::can_moderate`.
        let may_grant_moderator = (access.role == Some(RoomRole::Owner)
            && who.role >= Role::Member)
            || who.role == Role::Admin;
        if wanted == Some(RoomRole::Owner) {
            return Err(ChatError::forbidden(
                "forbidden",
                "a room has one owner, its creator",
            ));
        }
        if wanted == Some(RoomRole::Moderator) && !may_grant_moderator {
            return Err(ChatError::forbidden(
                "forbidden",
                "only the room's owner and admins may make moderators",
            ));
        }
        if wanted > Some(RoomRole::Member) {
            let target = users::by_id(conn, user_id)?.ok_or(ChatError::NotFound)?;
            if target.role == Role::Guest {
                return Err(guest_room_role());
            }
        }
        match current {
            None => {
                let self_join = user_id == who.user_id
                    && !access.room.private
                    && who.role >= Role::Member
                    && wanted.unwrap_or(RoomRole::Member) == RoomRole::Member;
                if !self_join {
                    access.require_moderator()?;
                }
                let target = users::by_id(conn, user_id)?.ok_or(ChatError::NotFound)?;
                if target.disabled {
                    return Err(ChatError::invalid(
                        "user_disabled",
                        "this account is disabled",
                    ));
                }
                let joining = Joining {
                    user_id,
                    role: wanted.unwrap_or(RoomRole::Member),
                    invited: user_id != who.user_id,
                };
                let view = add_member(conn, room_id, joining, now, keep, events)?;
                Ok((true, view))
            }
            Some(role) => {
                let Some(new_role) = wanted.filter(|w| *w != role) else {
                    return Ok((false, member_view(conn, user_id, role)?));
                };
                if role == RoomRole::Owner {
                    return Err(ChatError::forbidden(
                        "forbidden",
                        "the owner's role cannot be changed",
                    ));
                }
                // Demoting a moderator needs the same standing as making one.
                if !may_grant_moderator {
                    return Err(ChatError::forbidden(
                        "forbidden",
                        "only the room's owner and admins may change moderators",
                    ));
                }
                let view = set_room_role(conn, room_id, user_id, new_role, now, keep, events)?;
                Ok((false, view))
            }
        }
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

/// Guests read and post; a room role above member would let them moderate.
/// Sets an existing member's room role and appends its `member.updated` event.
fn set_room_role(
    conn: &Connection,
    room_id: i64,
    user_id: i64,
    role: RoomRole,
    now: i64,
    keep: u64,
    events: &mut Vec<RoomEvent>,
) -> Result<MemberView, ChatError> {
    conn.execute(
        "UPDATE room_members SET role = ?3 WHERE room_id = ?1 AND user_id = ?2",
        params![room_id, user_id, role.as_str()],
    )?;
    let view = member_view(conn, user_id, role)?;
    events.push(events::append(
        conn,
        room_id,
        "member.updated",
        &view,
        now,
        keep,
        None,
    )?);
    Ok(view)
}

fn guest_room_role() -> ChatError {
    ChatError::invalid(
        "guest_room_role",
        "a guest account can only be a plain member of a room: guests read and post, they do \
         not moderate (make the account a member first)",
    )
}

/// `DELETE /api/v1/rooms/{id}/members/{user_id}`: leave (oneself) or remove (moderators;
/// the owner only by an admin). Emits `member.left`; 204.
#[utoipa::path(
    delete,
    path = "/api/v1/rooms/{id}/members/{user_id}",
    operation_id = "deleteRoomMember",
    summary = "Leave a room, or remove a member",
    tag = "rooms",
    params(
        ("id" = i64, Path, example = 1, description = "The room's id"),
        ("user_id" = i64, Path, example = 1, description = "The account's id"),
    ),
    responses(
        (status = 204, description = "Left, or removed"),
        (status = 403, description = "Only moderators remove others; only the owner and admins \
         remove moderators; only admins remove the owner (`forbidden`)",
         body = crate::http::ErrorBody),
        (status = 404, description = "No such room or member, or a room the caller may not see \
         (`not_found`)", body = crate::http::ErrorBody),
    )
)]
pub async fn delete_member(
    State(store): State<Store>,
    State(sink): State<EventSink>,
    State(config): State<Arc<Config>>,
    who: Principal,
    Path((room_id, user_id)): Path<(i64, i64)>,
) -> Result<StatusCode, ApiError> {
    let keep = config.gateway.resume_events_per_room;
    commit(&store, &sink, move |conn, events| {
        let access = Access::load(conn, room_id, &who)?;
        access.refuse_dm_change("nobody leaves or is removed from it")?;
        let current: Option<String> = conn
            .query_row(
                "SELECT role FROM room_members WHERE room_id = ?1 AND user_id = ?2",
                params![room_id, user_id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(role) = current.and_then(|r| RoomRole::parse(&r)) else {
            return Err(ChatError::NotFound);
        };
        if user_id != who.user_id {
            access.require_moderator()?;
            if role == RoomRole::Owner && who.role != Role::Admin {
                return Err(ChatError::forbidden(
                    "forbidden",
                    "only an admin may remove a room's owner",
                ));
            }
            if role == RoomRole::Moderator
                && access.role != Some(RoomRole::Owner)
                && who.role != Role::Admin
            {
                return Err(ChatError::forbidden(
                    "forbidden",
                    "only the room's owner and admins may remove moderators",
                ));
            }
        }
        remove_member(conn, room_id, user_id, role, now_ms(), keep, events)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes `user_id` (whose room role is `role`) out of the room, with its `member.left` event.
fn remove_member(
    conn: &Connection,
    room_id: i64,
    user_id: i64,
    role: RoomRole,
    now: i64,
    keep: u64,
    events: &mut Vec<RoomEvent>,
) -> Result<(), ChatError> {
    let view = member_view(conn, user_id, role)?;
    conn.execute(
        "DELETE FROM room_members WHERE room_id = ?1 AND user_id = ?2",
        params![room_id, user_id],
    )?;
    events.push(events::append(
        conn,
        room_id,
        "member.left",
        &view,
        now,
        keep,
        Some(MemberChange::Left(user_id)),
    )?);
    Ok(())
}

/// Takes `user_id` out of every room nobody else added them to (a public room they joined,
/// a room they created), each with its `member.left` event, in room order. Called in the
/// transaction that makes the account a guest: guests read and post only where someone
/// added them. Returns the rooms left.
pub fn leave_rooms_not_invited_to(
    conn: &Connection,
    user_id: i64,
    now: i64,
    keep: u64,
    events: &mut Vec<RoomEvent>,
) -> Result<Vec<i64>, ChatError> {
    let rooms: Vec<(i64, String)> = conn
        .prepare(
            "SELECT room_id, role FROM room_members
              WHERE user_id = ?1 AND invited = 0 ORDER BY room_id",
        )?
        .query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut left = Vec::with_capacity(rooms.len());
    for (room_id, role) in rooms {
        // The CHECK constraint allows only known roles; a stranger would be a bug, and the
        // member goes all the same.
        let role = RoomRole::parse(&role).unwrap_or(RoomRole::Member);
        remove_member(conn, room_id, user_id, role, now, keep, events)?;
        left.push(room_id);
    }
    Ok(left)
}

/// Makes `user_id` a plain member of every room where its role is above member, each with its
/// `member.updated` event, in room order. Called in the transaction that makes the account a
/// guest (guests never moderate). A room whose owner this was is left without an owner; its
/// moderators and the admins still manage it. Returns each room and the role taken back.
pub fn drop_guest_room_roles(
    conn: &Connection,
    user_id: i64,
    now: i64,
    keep: u64,
    events: &mut Vec<RoomEvent>,
) -> Result<Vec<(i64, RoomRole)>, ChatError> {
    let rooms: Vec<(i64, String)> = conn
        .prepare(
            "SELECT room_id, role FROM room_members
              WHERE user_id = ?1 AND role != 'member' ORDER BY room_id",
        )?
        .query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut dropped = Vec::with_capacity(rooms.len());
    for (room_id, role) in rooms {
        // The CHECK constraint allows only known roles, and this query only those above member.
        let role = RoomRole::parse(&role).unwrap_or(RoomRole::Moderator);
        set_room_role(conn, room_id, user_id, RoomRole::Member, now, keep, events)?;
        dropped.push((room_id, role));
    }
    Ok(dropped)
}
