//! The audit log: an append-only record of security-relevant events (sign-ins, refresh-token
//! reuse, setup, account and role changes, invites, API keys; later capabilities add theirs),
//! and the query its admin listing (`admin::audit_log`, `GET /api/v1/audit`) runs.
//!
//! Any module writes an event with [`record`] inside its own `store.write` closure, so the
//! event commits (or rolls back) together with the change it describes. Rows are only ever
//! inserted: there is no update path, and the table refuses UPDATE; deleting old rows is left
//! to retention. Events must never carry secrets — no passwords, tokens, codes or keys, only
//! who, what, to whom, from where and when, with non-secret detail as JSON.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::StoreError;

/// Whether the action an event describes succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = AuditOutcome)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// One audit event. Build with [`Event::new`] and the setters, then [`record`] it.
#[derive(Debug, Clone)]
pub struct Event {
    /// Dotted type, e.g. `auth.login`, `user.role_changed`, `api_key.created`.
    pub kind: &'static str,
    pub outcome: Outcome,
    /// Unix milliseconds; [`Event::new`] stamps the wall clock.
    pub at_ms: i64,
    pub actor_id: Option<i64>,
    /// The actor's name as it was at the time (`cli` for the command line).
    pub actor: Option<String>,
    /// What the action was done to, e.g. `user:12`, `invite:3`, `api_key:5`.
    pub target: Option<String>,
    pub client_ip: Option<IpAddr>,
    /// Non-secret detail (a JSON object).
    pub detail: Value,
}

impl Event {
    pub fn new(kind: &'static str) -> Event {
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Event {
            kind,
            outcome: Outcome::Success,
            at_ms,
            actor_id: None,
            actor: None,
            target: None,
            client_ip: None,
            detail: Value::Object(Default::default()),
        }
    }
    pub fn failure(mut self) -> Event {
        self.outcome = Outcome::Failure;
        self
    }
    pub fn actor(mut self, id: Option<i64>, name: impl Into<String>) -> Event {
        self.actor_id = id;
        self.actor = Some(name.into());
        self
    }
    pub fn target(mut self, target: impl Into<String>) -> Event {
        self.target = Some(target.into());
        self
    }
    pub fn ip(mut self, ip: Option<IpAddr>) -> Event {
        self.client_ip = ip;
        self
    }
    pub fn detail(mut self, detail: Value) -> Event {
        self.detail = detail;
        self
    }
    pub fn at_ms(mut self, at_ms: i64) -> Event {
        self.at_ms = at_ms;
        self
    }
}

/// Appends `event`. Call it inside the `store.write` closure that makes the change.
pub fn record(conn: &Connection, event: &Event) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit_log (at, type, outcome, actor_id, actor, target, client_ip, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            event.at_ms,
            event.kind,
            event.outcome.as_str(),
            event.actor_id,
            event.actor,
            event.target,
            event.client_ip.map(|ip| ip.to_string()),
            event.detail.to_string(),
        ],
    )?;
    Ok(())
}

/// An event as it was recorded, read back by [`list`].
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: i64,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// What happened, e.g. `auth.login`, `user.disabled`, `api_key.created`.
    pub kind: String,
    pub outcome: Outcome,
    pub actor_id: Option<i64>,
    pub actor: Option<String>,
    /// What it happened to, e.g. `user:3`.
    pub target: Option<String>,
    pub client_ip: Option<String>,
    /// Non-secret detail (a JSON object).
    pub detail: Value,
}

/// Filters for [`list`]; times are Unix milliseconds, `before_id` is the page cursor.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Exact type, or a prefix when it ends in `.*` (`auth.*`).
    pub kind: Option<String>,
    /// The actor's name, exactly.
    pub actor: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: usize,
}

/// The newest events matching `filter`, newest first, at most `filter.limit`.
pub fn list(conn: &Connection, filter: &Filter) -> Result<Vec<Entry>, StoreError> {
    let (kind_exact, kind_prefix) = match filter.kind.as_deref() {
        Some(k) => match k.strip_suffix('*') {
            Some(prefix) => (None, Some(prefix.to_owned())),
            None => (Some(k.to_owned()), None),
        },
        None => (None, None),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, type, outcome, actor_id, actor, target, client_ip, detail
           FROM audit_log
          WHERE (?1 IS NULL OR type = ?1)
            AND (?2 IS NULL OR substr(type, 1, length(?2)) = ?2)
            AND (?3 IS NULL OR at >= ?3)
            AND (?4 IS NULL OR at < ?4)
            AND (?5 IS NULL OR id < ?5)
            AND (?7 IS NULL OR actor = ?7)
          ORDER BY id DESC
          LIMIT ?6",
    )?;
    let rows = stmt.query_map(
        params![
            kind_exact,
            kind_prefix,
            filter.since_ms,
            filter.until_ms,
            filter.before_id,
            filter.limit as i64,
            filter.actor
        ],
        |row| {
            let outcome: String = row.get(3)?;
            let detail: String = row.get(8)?;
            Ok(Entry {
                id: row.get(0)?,
                at_ms: row.get(1)?,
                kind: row.get(2)?,
                outcome: if outcome == "failure" {
                    Outcome::Failure
                } else {
                    Outcome::Success
                },
                actor_id: row.get(4)?,
                actor: row.get(5)?,
                target: row.get(6)?,
                client_ip: row.get(7)?,
                detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(include_str!("store/migrations/0003_audit.sql"))
            .unwrap();
        conn
    }

    #[test]
    fn events_are_listed_newest_first_with_filters_and_pages() {
        let conn = db();
        for (i, kind) in [
            "auth.login",
            "user.created",
            "auth.login",
            "auth.refresh_reuse",
        ]
        .into_iter()
        .enumerate()
        {
            record(
                &conn,
                &Event::new(kind)
                    .at_ms(1000 * i as i64)
                    .actor(Some(1), "alice")
                    .target("user:2")
                    .ip(Some("192.0.2.1".parse().unwrap()))
                    .detail(serde_json::json!({ "n": i })),
            )
            .unwrap();
        }
        let all = list(
            &conn,
            &Filter {
                limit: 10,
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].kind, "auth.refresh_reuse");
        assert_eq!(all[3].detail["n"], 0);
        assert_eq!(all[3].client_ip.as_deref(), Some("192.0.2.1"));

        let logins = list(
            &conn,
            &Filter {
                kind: Some("auth.login".into()),
                limit: 10,
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(logins.len(), 2);
        let auth = list(
            &conn,
            &Filter {
                kind: Some("auth.*".into()),
                limit: 10,
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(auth.len(), 3);
        let window = list(
            &conn,
            &Filter {
                since_ms: Some(1000),
                until_ms: Some(3000),
                limit: 10,
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(window.len(), 2);
        let page2 = list(
            &conn,
            &Filter {
                before_id: Some(all[1].id),
                limit: 1,
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(page2[0].id, all[2].id);
        for (actor, found) in [("alice", 4), ("bob", 0)] {
            let by = list(
                &conn,
                &Filter {
                    actor: Some(actor.into()),
                    limit: 10,
                    ..Filter::default()
                },
            )
            .unwrap();
            assert_eq!(by.len(), found, "{actor}");
        }
    }

    #[test]
    fn the_log_refuses_updates() {
        let conn = db();
        record(&conn, &Event::new("auth.login")).unwrap();
        let err = conn
            .execute("UPDATE audit_log SET outcome = 'failure'", [])
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}
