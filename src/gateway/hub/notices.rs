//! Passing on notices (`chat::notices`): a display name changed, a DM hidden or shown again.
//!
//! A notice has an audience, not a room: the account's own connections, and for a rename every
//! connection subscribed to one of the rooms the account is in. Each connection in it gets the
//! frame once, however many of those rooms it shares, through its bounded queue like any
//! frame (full: kicked as a slow consumer). Notices are held for a credential re-check like
//! room events, so a connection cut off by the same change never hears it. They are not
//! replayed: a client that was away learns the same from its next HTTP load.

use std::collections::HashSet;

use axum::extract::ws::Utf8Bytes;

use super::{Held, Hub, Kicked, Outbound, State, MAX_HELD};
use crate::chat::notices::Audience;
use crate::chat::Notice;

impl Hub {
    /// Passes on committed notices, or holds them while a credential re-check is due.
    pub fn notify(&self, notices: Vec<Notice>) {
        if notices.is_empty() {
            return;
        }
        // Read before the lock, as `publish` does.
        let generation = self.store.generation();
        let mut st = self.lock();
        if st.conns.is_empty() {
            st.validated = st.validated.max(generation);
        }
        if generation > st.validated || !st.held.is_empty() {
            if st.held.len() + notices.len() > MAX_HELD {
                // As `publish` does at this limit: everyone reconnects, and learns the same
                // from their next load.
                tracing::warn!(
                    held = st.held.len(),
                    "gateway: credentials could not be re-checked in time; notices dropped"
                );
                let everyone: Vec<u64> = st.conns.keys().copied().collect();
                for conn_id in everyone {
                    Self::kick_out(&mut st, conn_id, Kicked::SlowConsumer);
                }
                return;
            }
            st.held.extend(
                notices
                    .into_iter()
                    .map(|notice| (generation, Held::Notice(notice))),
            );
            drop(st);
            self.revalidate_wanted.notify_one();
            return;
        }
        for notice in &notices {
            Self::deliver_notice(&mut st, notice);
        }
    }

    /// Sends `notice` once to each connection of its audience.
    pub(super) fn deliver_notice(st: &mut State, notice: &Notice) {
        let targets = Self::audience(st, &notice.audience);
        let text = Utf8Bytes::from(&*notice.frame);
        for conn_id in targets {
            Self::deliver(st, conn_id, Outbound::Frame(text.clone()));
        }
    }

    /// The connections that hear a notice, each once.
    fn audience(st: &State, audience: &Audience) -> HashSet<u64> {
        let (user_id, rooms) = match audience {
            Audience::Own(user_id) => (*user_id, &[][..]),
            Audience::SharingRooms { user_id, rooms } => (*user_id, &rooms[..]),
        };
        let own = st.users.get(&user_id).into_iter().flatten().copied();
        let sharing = rooms
            .iter()
            .filter_map(|room_id| st.rooms.get(room_id))
            .flat_map(|room| room.subscribers.iter().copied());
        own.chain(sharing).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::tests::{caller, hub, session_caller, slots, two_signed_in};
    use super::*;
    use crate::chat::notices::{dm_hidden, Audience};

    fn frames(rx: &crate::gateway::queue::Queue<Outbound>) -> Vec<String> {
        std::iter::from_fn(|| rx.try_pop())
            .map(|o| match o {
                Outbound::Frame(t) | Outbound::Event { text: t, .. } => t.to_string(),
            })
            .filter(|t| !t.contains("presence"))
            .collect()
    }

    /// Someone in many rooms with the same people costs one frame per connection.
    #[tokio::test]
    async fn a_rename_reaches_each_connection_sharing_a_room_once() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path(), 16);
        let (me, me_rx, _) = hub.register(caller(1), slots(4)).unwrap();
        let (peer, peer_rx, _) = hub.register(caller(2), slots(4)).unwrap();
        let (stranger, stranger_rx, _) = hub.register(caller(3), slots(4)).unwrap();
        hub.subscribe(me.conn_id, &[(1, 0), (2, 0)]);
        hub.subscribe(peer.conn_id, &[(1, 0), (2, 0)]);
        hub.subscribe(stranger.conn_id, &[]);
        let renamed = Notice {
            audience: Audience::SharingRooms {
                user_id: 1,
                rooms: vec![1, 2],
            },
            frame: Arc::from(r#"{"op":"user"}"#),
        };
        hub.notify(vec![renamed]);
        assert_eq!(frames(&peer_rx), vec![r#"{"op":"user"}"#]);
        assert_eq!(frames(&me_rx), vec![r#"{"op":"user"}"#]);
        assert_eq!(frames(&stranger_rx), Vec::<String>::new());

        hub.notify(vec![dm_hidden(1, 2, 5)]);
        assert_eq!(frames(&me_rx).len(), 1);
        assert_eq!(
            frames(&peer_rx),
            Vec::<String>::new(),
            "only the person's own"
        );
    }

    /// A change that also moves the store's generation (a rename and a revocation in one
    /// write) is heard only after the re-check, and never by the connection it cut off.
    #[tokio::test]
    async fn notices_wait_for_the_credential_re_check() {
        use crate::auth::session;
        let (_dir, store, sessions, hub) = two_signed_in().await;
        let (ada, ada_rx, _) = hub
            .register(session_caller(&sessions[0]), slots(4))
            .unwrap();
        let (bob, bob_rx, bob_kick) = hub
            .register(session_caller(&sessions[1]), slots(4))
            .unwrap();
        hub.subscribe(ada.conn_id, &[(1, 0)]);
        hub.subscribe(bob.conn_id, &[(1, 0)]);
        frames(&ada_rx);

        let bob_sid = sessions[1].1.clone();
        store
            .write(move |conn| session::revoke(conn, &bob_sid, "logout", 1))
            .await
            .unwrap();
        let renamed = Notice {
            audience: Audience::SharingRooms {
                user_id: sessions[0].0,
                rooms: vec![1],
            },
            frame: Arc::from(r#"{"op":"user"}"#),
        };
        hub.notify(vec![renamed]);
        assert_eq!(frames(&ada_rx), Vec::<String>::new(), "held");
        hub.revalidate(1).await.unwrap();
        assert_eq!(bob_kick.reason.get(), Some(&Kicked::Revoked));
        assert_eq!(frames(&ada_rx), vec![r#"{"op":"user"}"#]);
        assert_eq!(frames(&bob_rx), Vec::<String>::new());
        drop((ada, bob));
        store.close().await.unwrap();
    }
}
