//! `call.started` and `call.ended` for outgoing webhooks, from LiveKit's call registry
//! (`livekit::calls`). Calls are not room events (nothing is written to the store when someone
//! joins), so each delivery is queued in a write of its own when the registry reports the
//! change: its `Started` (the first join of a room with no call) and `Emptied` (the last leave,
//! or LiveKit ending the call), once per LiveKit room session. Deliveries are queued one after
//! the other, in the registry's order.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::Integrations;
use crate::chat::call_mapping::{participant_view, room_id_of};
use crate::livekit::calls::CallEvent;
use crate::livekit::LiveKit;

/// Queues call deliveries until `shutdown`.
pub async fn run(
    integrations: Arc<Integrations>,
    livekit: Arc<LiveKit>,
    shutdown: CancellationToken,
) {
    let mut rx = livekit.calls.subscribe();
    loop {
        let event = tokio::select! {
            e = rx.recv() => e,
            () = shutdown.cancelled() => return,
        };
        let (room_id, event, data) = match event {
            // The registry says when a call starts (its first join) and when it empties (its
            // last leave, or LiveKit ending it), once per LiveKit room session.
            Ok(CallEvent::Started { room, by, .. }) => {
                let Some(room_id) = room_id_of(&room) else {
                    continue;
                };
                let data = serde_json::json!({ "first": participant_view(&by) });
                (room_id, "call.started", data)
            }
            Ok(CallEvent::Emptied { room, .. }) => {
                let Some(room_id) = room_id_of(&room) else {
                    continue;
                };
                (room_id, "call.ended", serde_json::json!({}))
            }
            Ok(CallEvent::Joined { .. } | CallEvent::Left { .. } | CallEvent::Ended { .. }) => {
                continue
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "webhooks: fell behind LiveKit call events");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        // Awaited, not spawned: a call's `call.ended` must never be queued before its
        // `call.started`, and hooks get their deliveries in the order they were queued.
        integrations
            .queue_unstored_in_order(event, Some(room_id), data.to_string())
            .await;
    }
}
