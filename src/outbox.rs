//! Webhook deliveries queued in the writer's transaction.
//!
//! [`enqueue`] writes one `webhook_deliveries` row per outgoing webhook that wants an event,
//! inside the transaction that writes the event itself (`chat::events::append` for room
//! events; `integrations` for call and security-alert events). A rolled-back change therefore
//! never gets a delivery, and a committed one never loses its delivery, whatever happens to
//! the process after COMMIT. The rows are sent later by `integrations::delivery`'s worker.
//!
//! This module sits below `chat` and `integrations` so that both can queue without either
//! depending on the other. It reads the `webhooks` table (which `integrations::outgoing`
//! maintains) and writes `webhook_deliveries`; it never sends anything, never wakes the worker
//! (the caller does, once its transaction committed) and knows no HTTP.

use rusqlite::{params, Connection};

use crate::store::StoreError;

/// The JSON body every delivery of an event carries (the same for every hook, and on every
/// attempt): `{"event","room_id","seq","at","data"}`. `data` is the event's JSON as the
/// gateway sends it, spliced in as stored.
pub fn delivery_body(
    event: &str,
    room_id: Option<i64>,
    seq: Option<i64>,
    at_ms: i64,
    data: &str,
) -> String {
    let event = serde_json::Value::from(event);
    let at = serde_json::Value::from(crate::http::time::rfc3339_ms(at_ms));
    let room_id = serde_json::Value::from(room_id);
    let seq = serde_json::Value::from(seq);
    format!(r#"{{"event":{event},"room_id":{room_id},"seq":{seq},"at":{at},"data":{data}}}"#)
}

/// Queues a delivery of `event` for every webhook that wants it (its event list, and its room
/// filter when `room_id` is given), inside the caller's transaction. Cheap when no hook wants
/// it: one scan of the (small, at most `integrations::outgoing::MAX_WEBHOOKS` rows) `webhooks`
/// table. A hook with a room filter never gets an event of no room (`room_id` None). Returns
/// how many were queued.
pub fn enqueue(
    conn: &Connection,
    event: &str,
    room_id: Option<i64>,
    seq: Option<i64>,
    at_ms: i64,
    data: &str,
) -> Result<usize, StoreError> {
    // `webhooks.events` is the hook's event names between commas (`,message.created,`), so one
    // `instr` finds a whole name and never a prefix of another.
    let mut hooks = conn.prepare_cached(
        "SELECT id FROM webhooks
          WHERE instr(events, ',' || ?1 || ',') > 0
            AND (room_id IS NULL OR room_id = ?2)",
    )?;
    let ids: Vec<i64> = hooks
        .query_map(params![event, room_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    let body = delivery_body(event, room_id, seq, at_ms, data);
    let mut insert = conn.prepare_cached(
        "INSERT INTO webhook_deliveries (webhook_id, delivery_id, event, body, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?;
    for id in &ids {
        insert.execute(params![id, delivery_id(), event, body, at_ms])?;
    }
    Ok(ids.len())
}

/// A delivery's id (the receiver's dedup key, sent in a header): 128 random bits as 32
/// lowercase hex characters.
fn delivery_id() -> String {
    crate::auth::crypto::id_128()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_body_splices_the_event_data_in_as_stored() {
        let body = delivery_body("message.created", Some(3), Some(7), 1_500, r#"{"id":1}"#);
        assert_eq!(
            body,
            r#"{"event":"message.created","room_id":3,"seq":7,"at":"1970-01-01T00:00:01.5Z","data":{"id":1}}"#
        );
        let alert = delivery_body("security.alert", None, None, 0, "{}");
        let v: serde_json::Value = serde_json::from_str(&alert).expect("valid JSON");
        assert!(v["room_id"].is_null() && v["seq"].is_null());
    }

    #[test]
    fn delivery_ids_are_128_random_bits_in_hex() {
        let (a, b) = (delivery_id(), delivery_id());
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
