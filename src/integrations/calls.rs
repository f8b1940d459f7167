//! `call.started` and `call.ended` for outgoing webhooks, from LiveKit's call registry
//! (`livekit::calls`). Calls are not room events (nothing is written to the store when someone
//! joins), so each delivery is queued in a write of its own when the registry reports the
//! change: a call counts as started when the first participant of a room with no call joins,
//! and as ended when the registry says so.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::Integrations;
use crate::chat::calls::{participant_view, room_id_of};
use crate::livekit::calls::CallEvent;
use crate::livekit::LiveKit;

/// Queues call deliveries until `shutdown`.
pub async fn run(
    integrations: Arc<Integrations>,
    livekit: Arc<LiveKit>,
    shutdown: CancellationToken,
) {
    let mut rx = livekit.calls.subscribe();
    // Rooms whose call.started was queued and whose call.ended was not yet; bounded by the
    // registry's own participant cap (a room is here only while someone is in its call).
    let mut active: HashSet<i64> = HashSet::new();
    loop {
        let event = tokio::select! {
            e = rx.recv() => e,
            () = shutdown.cancelled() => return,
        };
        let (room_id, event, data) = match event {
            Ok(CallEvent::Joined { room, participant }) => {
                let Some(room_id) = room_id_of(&room) else {
                    continue;
                };
                if !active.insert(room_id) {
                    continue;
                }
                let data = serde_json::json!({ "first": participant_view(&participant) });
                (room_id, "call.started", data)
            }
            Ok(CallEvent::Ended { room }) => {
                let Some(room_id) = room_id_of(&room) else {
                    continue;
                };
                active.remove(&room_id);
                (room_id, "call.ended", serde_json::json!({}))
            }
            Ok(CallEvent::Left { .. }) => continue,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "webhooks: fell behind LiveKit call events");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        integrations.queue_unstored(event, Some(room_id), data.to_string());
    }
}
