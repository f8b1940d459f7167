//! The people a room's moderators may add: `GET /api/v1/rooms/{id}/candidates?q=`.
//!
//! Only admins may list every account (`GET /api/v1/users`), yet a room's owner and moderators
//! add people to it; this is the one view of other accounts they get: enabled accounts not in
//! the room, whose username or display name contains what they typed, a bounded few at a time.
//! It reads only; adding is `PUT /api/v1/rooms/{id}/members/{user_id}` (`rooms::put_member`).

use axum::extract::{Path, State};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::rooms::Access;
use super::ChatError;
use crate::api::AppState;
use crate::auth::{Principal, Role};
use crate::http::{ApiError, Json, Query};

/// Candidates in one answer: enough for a picker that narrows as one types, and a bound on
/// how much of the account list one request shows.
const MAX_CANDIDATES: i64 = 20;
/// A longer search text matches no name anyway (names have at most 100 characters).
const MAX_QUERY_CHARS: usize = 100;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CandidateQuery {
    /// Part of a username or display name, matched without regard to case (ASCII letters);
    /// empty or absent lists the first accounts by username.
    #[param(max_length = 100)]
    pub q: Option<String>,
}

/// An account that may be added to the room.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Candidate {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    /// The account's role: a guest may only be added as a plain member.
    pub account_role: Role,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CandidateList {
    /// At most 20, by username.
    pub candidates: Vec<Candidate>,
}

/// `LIKE` treats `%` and `_` as wildcards: what a person typed is matched as text.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// `GET /api/v1/rooms/{id}/candidates`: for the room's owner, moderators and admins.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{id}/candidates",
    operation_id = "listRoomCandidates",
    summary = "Find people who may be added to a room",
    tag = "rooms",
    description = "Enabled accounts that are not members of the room and whose username or \
        display name contains `q`, at most 20, by username. For the room's owner and \
        moderators, and admins: they add people with `PUT /api/v1/rooms/{id}/members/{user_id}`.",
    params(
        ("id" = i64, Path, example = 1, description = "The room's id"),
        CandidateQuery,
    ),
    responses(
        (status = 200, description = "The accounts found", body = CandidateList),
        (status = 400, description = "`q` longer than 100 characters (`invalid_query`)",
         body = crate::http::ErrorBody),
        (status = 403, description = "Not the room's owner, a moderator or an admin \
         (`forbidden`)", body = crate::http::ErrorBody),
        (status = 404, description = "No such room, or one the caller may not see (`not_found`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    who: Principal,
    Path(room_id): Path<i64>,
    Query(query): Query<CandidateQuery>,
) -> Result<Json<CandidateList>, ApiError> {
    let text = query.q.unwrap_or_default();
    let text = text.trim();
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(ChatError::invalid(
            "invalid_query",
            format!("`q` has at most {MAX_QUERY_CHARS} characters"),
        )
        .into());
    }
    let pattern = like_pattern(text);
    let candidates = app
        .store
        .read(move |conn| {
            Access::load(conn, room_id, &who)?.require_moderator()?;
            let mut stmt = conn.prepare_cached(
                "SELECT u.id, u.username, u.display_name, u.role FROM users u
                  WHERE u.disabled = 0
                    AND (u.username LIKE ?2 ESCAPE '\\' OR u.display_name LIKE ?2 ESCAPE '\\')
                    AND NOT EXISTS (SELECT 1 FROM room_members m
                                     WHERE m.room_id = ?1 AND m.user_id = u.id)
                  ORDER BY u.username LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![room_id, pattern, MAX_CANDIDATES], |r| {
                let role: String = r.get(3)?;
                Ok(Candidate {
                    user_id: r.get(0)?,
                    username: r.get(1)?,
                    display_name: r.get(2)?,
                    // The CHECK constraint allows only known roles; a stranger is shown as the
                    // least trusted.
                    account_role: Role::parse(&role).unwrap_or(Role::Guest),
                })
            })?;
            Ok::<_, ChatError>(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(CandidateList { candidates }))
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn wildcards_typed_are_matched_as_text() {
        assert_eq!(like_pattern("ana"), "%ana%");
        assert_eq!(like_pattern("100%_a\\"), "%100\\%\\_a\\\\%");
        assert_eq!(like_pattern(""), "%%");
    }
}
