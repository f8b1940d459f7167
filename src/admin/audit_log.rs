//! `GET /api/v1/audit`: the audit log for admins, a page at a time, newest first, over
//! `audit::list` (which knows nothing of HTTP). Times go out as RFC 3339 and come in as RFC
//! 3339 or Unix seconds; the cursor is the id of the last event of the previous page.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{self, Entry, Filter, Outcome};
use crate::auth::RequireAdmin;
use crate::http::{ApiError, Json, Query};
use crate::store::Store;

/// An event as the API lists it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AuditEvent)]
pub struct EventView {
    pub id: i64,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub at: String,
    /// What happened, e.g. `auth.login`, `user.disabled`, `api_key.created`.
    #[serde(rename = "type")]
    pub kind: String,
    pub outcome: Outcome,
    #[schema(required = true)]
    pub actor_id: Option<i64>,
    #[schema(required = true)]
    pub actor: Option<String>,
    /// What it happened to, e.g. `user:3`.
    #[schema(required = true)]
    pub target: Option<String>,
    #[schema(required = true)]
    pub client_ip: Option<String>,
    /// Event-specific details (never a password, token, code or key).
    pub detail: Value,
}

impl From<Entry> for EventView {
    fn from(e: Entry) -> EventView {
        EventView {
            id: e.id,
            at: crate::http::time::rfc3339_ms(e.at_ms),
            kind: e.kind,
            outcome: e.outcome,
            actor_id: e.actor_id,
            actor: e.actor,
            target: e.target,
            client_ip: e.client_ip,
            detail: e.detail,
        }
    }
}

/// Largest page `GET /api/v1/audit` returns; `limit` above it is clamped.
pub const MAX_PAGE: usize = 200;
const DEFAULT_PAGE: usize = 50;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// An exact type (`auth.login`) or a prefix ending in `*` (`auth.*`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Only events by this actor (a username, exactly).
    pub actor: Option<String>,
    /// Events at or after this time: RFC 3339 or Unix seconds.
    pub since: Option<String>,
    /// Events before this time: RFC 3339 or Unix seconds.
    pub until: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 200 (default 50; larger values are clamped).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AuditPage)]
pub struct Page {
    /// Newest first.
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/audit?type=&actor=&since=&until=&cursor=&limit=` (admin).
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "listAuditEvents",
    summary = "Read the audit log (admins)",
    tag = "audit",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of events, newest first", body = Page),
        (status = 400, description = "A bad `since`, `until`, `cursor` or `limit` \
         (`invalid_query`)", body = crate::http::ErrorBody),
        (status = 403, description = "Not an admin (`forbidden`, `insufficient_scope`)",
         body = crate::http::ErrorBody),
    )
)]
pub async fn list(
    State(store): State<Store>,
    _admin: RequireAdmin,
    Query(q): Query<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let instant = |name: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        v.as_deref()
            .map(|text| {
                crate::http::time::parse_instant_ms(text).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!("`{name}` must be an RFC 3339 time or Unix seconds"),
                    )
                })
            })
            .transpose()
    };
    let before_id = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::bad_request("invalid_query", "`cursor` is not valid"))
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let filter = Filter {
        kind: q.kind.filter(|k| !k.is_empty()),
        actor: q.actor.filter(|a| !a.is_empty()),
        since_ms: instant("since", &q.since)?,
        until_ms: instant("until", &q.until)?,
        before_id,
        limit,
    };
    let entries = store
        .read(move |conn| audit::list(conn, &filter))
        .await
        .map_err(ApiError::from)?;
    let next_cursor = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    Ok(Json(Page {
        events: entries.into_iter().map(EventView::from).collect(),
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use crate::documented;
    use axum::body::Body;
    use http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::auth::{Credential, Principal, Role, Scopes};
    use crate::http::Routes;
    use crate::store::StoreOptions;

    fn caller(role: Role) -> Principal {
        Principal {
            user_id: 1,
            username: "root".into(),
            role,
            credential: Credential::Session("s".into()),
            scopes: Scopes::ALL,
        }
    }

    /// The listing needs nothing but the store: mounted on a state that is only a `Store`, it
    /// answers an admin with RFC 3339 times and a cursor, and refuses a member.
    #[tokio::test]
    async fn the_log_is_listed_from_a_state_that_is_only_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &dir.path().join("roost.db"),
            StoreOptions::new(dir.path().join("backups")),
        )
        .unwrap();
        store
            .write(|conn| {
                for at_ms in [1_000, 1_500] {
                    let event = audit::Event::new("auth.login")
                        .at_ms(at_ms)
                        .actor(Some(1), "root");
                    audit::record(conn, &event)?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .await
            .unwrap();
        let (router, _) = Routes::new().api(documented!(list)).finish(store.clone());
        let ask = |role| {
            let mut req = Request::get("/api/v1/audit?limit=1")
                .body(Body::empty())
                .unwrap();
            req.extensions_mut().insert(caller(role));
            router.clone().oneshot(req)
        };

        let answer = ask(Role::Admin).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .unwrap();
        let page: Page = serde_json::from_slice(&body).unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.events[0].at, "1970-01-01T00:00:01.5Z");
        assert_eq!(page.events[0].kind, "auth.login");
        assert_eq!(page.next_cursor, Some(page.events[0].id.to_string()));

        let refused = ask(Role::Member).await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        store.close().await.unwrap();
    }
}
