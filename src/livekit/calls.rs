//! Who is in which call right now, as LiveKit's webhooks report it.
//!
//! [`Registry`] is an in-memory map from LiveKit room name to participants, updated only by the
//! webhook receiver (and cleared by the supervisor when LiveKit restarts, since every call ends
//! then). Changes are published on a bounded broadcast channel ([`Registry::subscribe`]) for
//! the realtime gateway: a subscriber that falls more than [`EVENT_QUEUE`] events behind gets
//! `Lagged` and should re-read [`Registry::participants`].
//!
//! Webhooks can arrive late or twice. A `participant_left` removes only the session (LiveKit
//! participant sid) it names, and a `participant_joined` for a session already seen leaving
//! (itself, or by its room's `room_finished`) or for a room session already finished is
//! ignored, so reordering or a repeat cannot resurrect someone who left or restart a call.
//!
//! This module knows nothing about HTTP, Roost rooms or accounts; it stores no history.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::broadcast;

/// Events buffered per subscriber; a slower subscriber lags (see the module docs).
pub const EVENT_QUEUE: usize = 256;
/// Participants tracked across all calls. Past it, joins are dropped with a warning: LiveKit
/// on a Pi holds far fewer, so reaching it means something is wrong, not a big party.
pub const MAX_PARTICIPANTS: usize = 10_000;
/// Participant sessions remembered as having left, and room sessions as having finished, to
/// ignore their late `joined` webhooks; past it the oldest is forgotten (LiveKit repeats a
/// webhook within seconds, not after a thousand others).
const LEFT_MEMORY: usize = 1024;

/// One person in a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Participant {
    /// The identity Roost put in the call token.
    pub identity: String,
    pub name: String,
    /// LiveKit's id for this session (a reconnect gets a new one).
    pub sid: String,
    /// Unix seconds, as LiveKit reported it (0 if it did not).
    pub joined_at: i64,
}

/// A change to the set of participants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    Joined {
        room: String,
        participant: Participant,
    },
    Left {
        room: String,
        identity: String,
        sid: String,
    },
    /// The call ended (everyone left, or LiveKit stopped); `Left` events for anyone still
    /// listed come first.
    Ended { room: String },
    /// Someone joined a call nobody was in; published before their `Joined`. `room_sid` is
    /// LiveKit's id of this session of the room (empty if the webhook had none).
    Started {
        room: String,
        room_sid: String,
        by: Participant,
    },
    /// The last person left (or the call was ended with people still listed); published after
    /// the `Left` events. Once per `Started`.
    Emptied { room: String, room_sid: String },
}

#[derive(Default)]
struct Inner {
    rooms: BTreeMap<String, BTreeMap<String, Participant>>,
    /// LiveKit's room sid of each call in `rooms`, as its first join reported it.
    room_sids: BTreeMap<String, String>,
    total: usize,
    /// Participant sessions that left.
    left_sids: Forgetful,
    /// Room sessions that finished (LiveKit gives a new call a new room sid).
    finished_room_sids: Forgetful,
}

/// A set that keeps only its newest [`LEFT_MEMORY`] entries.
#[derive(Default)]
struct Forgetful {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Forgetful {
    fn insert(&mut self, sid: &str) {
        if sid.is_empty() || !self.set.insert(sid.to_owned()) {
            return;
        }
        self.order.push_back(sid.to_owned());
        if self.order.len() > LEFT_MEMORY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    fn contains(&self, sid: &str) -> bool {
        self.set.contains(sid)
    }
}

impl Inner {
    /// Remembers a call's sessions as over when it ends with people still listed, so
    /// LiveKit's repeat of an earlier `participant_joined` does not start it again.
    fn forget_sessions(&mut self, room_sid: &str, members: &BTreeMap<String, Participant>) {
        self.finished_room_sids.insert(room_sid);
        for p in members.values() {
            self.left_sids.insert(&p.sid);
        }
    }
}

pub struct Registry {
    inner: Mutex<Inner>,
    events: broadcast::Sender<CallEvent>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry {
            inner: Mutex::new(Inner::default()),
            events: broadcast::channel(EVENT_QUEUE).0,
        }
    }

    /// Receives every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.events.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("registry lock is never poisoned: nothing panics while holding it")
    }

    fn publish(&self, events: Vec<CallEvent>) {
        for e in events {
            // No subscriber is fine: the state above is still current.
            let _ = self.events.send(e);
        }
    }

    /// Current participants of a call, by identity.
    pub fn participants(&self, room: &str) -> Vec<Participant> {
        self.lock()
            .rooms
            .get(room)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Rooms with at least one participant.
    pub fn active_rooms(&self) -> Vec<String> {
        self.lock().rooms.keys().cloned().collect()
    }

    /// `participant` joined the call in `room`, whose LiveKit session is `room_sid`.
    pub fn joined(&self, room: &str, room_sid: &str, participant: Participant) {
        let mut events = Vec::new();
        {
            let mut inner = self.lock();
            if inner.left_sids.contains(&participant.sid)
                || inner.finished_room_sids.contains(room_sid)
            {
                return; // a late or repeated webhook of a session that is over
            }
            let is_new_identity = !inner
                .rooms
                .get(room)
                .is_some_and(|m| m.contains_key(&participant.identity));
            if is_new_identity && inner.total >= MAX_PARTICIPANTS {
                tracing::warn!(
                    limit = MAX_PARTICIPANTS,
                    "call registry full; ignoring a participant_joined webhook"
                );
                return;
            }
            if !inner.rooms.contains_key(room) {
                inner.room_sids.insert(room.to_owned(), room_sid.to_owned());
                events.push(CallEvent::Started {
                    room: room.to_owned(),
                    room_sid: room_sid.to_owned(),
                    by: participant.clone(),
                });
            }
            let members = inner.rooms.entry(room.to_owned()).or_default();
            if members.get(&participant.identity) == Some(&participant) {
                return; // a repeated webhook
            }
            members.insert(participant.identity.clone(), participant.clone());
            if is_new_identity {
                inner.total += 1;
            }
            events.push(CallEvent::Joined {
                room: room.to_owned(),
                participant,
            });
        }
        self.publish(events);
    }

    /// Removes the session `sid` of `identity` (any session when `sid` is empty).
    pub fn left(&self, room: &str, identity: &str, sid: &str) {
        let mut events = Vec::new();
        {
            let mut inner = self.lock();
            inner.left_sids.insert(sid);
            let Some(members) = inner.rooms.get_mut(room) else {
                return;
            };
            let matches = members
                .get(identity)
                .is_some_and(|p| sid.is_empty() || p.sid == sid);
            if !matches {
                return; // a newer session of the same person is still in the call
            }
            let removed = members.remove(identity).expect("checked above");
            let now_empty = members.is_empty();
            inner.total -= 1;
            events.push(CallEvent::Left {
                room: room.to_owned(),
                identity: identity.to_owned(),
                sid: removed.sid,
            });
            if now_empty {
                inner.rooms.remove(room);
                events.push(CallEvent::Emptied {
                    room: room.to_owned(),
                    room_sid: inner.room_sids.remove(room).unwrap_or_default(),
                });
            }
        }
        self.publish(events);
    }

    /// The call in `room` ended: everyone still listed leaves.
    pub fn finished(&self, room: &str) {
        let events = {
            let mut inner = self.lock();
            let members = inner.rooms.remove(room).unwrap_or_default();
            let room_sid = inner.room_sids.remove(room).unwrap_or_default();
            inner.total -= members.len();
            inner.forget_sessions(&room_sid, &members);
            Self::ending(room, &room_sid, members)
        };
        self.publish(events);
    }

    /// LiveKit stopped: every call ended.
    pub fn clear(&self) {
        let events = {
            let mut inner = self.lock();
            inner.total = 0;
            let mut room_sids = std::mem::take(&mut inner.room_sids);
            std::mem::take(&mut inner.rooms)
                .into_iter()
                .flat_map(|(room, members)| {
                    let room_sid = room_sids.remove(&room).unwrap_or_default();
                    inner.forget_sessions(&room_sid, &members);
                    Self::ending(&room, &room_sid, members)
                })
                .collect()
        };
        self.publish(events);
    }

    fn ending(
        room: &str,
        room_sid: &str,
        members: BTreeMap<String, Participant>,
    ) -> Vec<CallEvent> {
        let was_busy = !members.is_empty();
        let mut events: Vec<CallEvent> = members
            .into_values()
            .map(|p| CallEvent::Left {
                room: room.to_owned(),
                identity: p.identity,
                sid: p.sid,
            })
            .collect();
        if was_busy {
            events.push(CallEvent::Emptied {
                room: room.to_owned(),
                room_sid: room_sid.to_owned(),
            });
        }
        events.push(CallEvent::Ended {
            room: room.to_owned(),
        });
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(identity: &str, sid: &str) -> Participant {
        Participant {
            identity: identity.into(),
            name: identity.to_uppercase(),
            sid: sid.into(),
            joined_at: 1,
        }
    }

    #[test]
    fn joins_and_leaves_are_tracked_and_published() {
        let r = Registry::new();
        let mut rx = r.subscribe();
        r.joined("room1", "RM_room1", p("alice", "PA_1"));
        r.joined("room1", "RM_room1", p("alice", "PA_1")); // repeated webhook: no second event
        r.joined("room1", "RM_room1", p("bob", "PA_2"));
        assert_eq!(r.participants("room1").len(), 2);
        r.left("room1", "alice", "PA_1");
        assert_eq!(r.participants("room1"), vec![p("bob", "PA_2")]);
        let mut seen = Vec::new();
        while let Ok(e) = rx.try_recv() {
            seen.push(e);
        }
        assert_eq!(
            seen,
            vec![
                CallEvent::Started {
                    room: "room1".into(),
                    room_sid: "RM_room1".into(),
                    by: p("alice", "PA_1")
                },
                CallEvent::Joined {
                    room: "room1".into(),
                    participant: p("alice", "PA_1")
                },
                CallEvent::Joined {
                    room: "room1".into(),
                    participant: p("bob", "PA_2")
                },
                CallEvent::Left {
                    room: "room1".into(),
                    identity: "alice".into(),
                    sid: "PA_1".into()
                },
            ]
        );
    }

    #[test]
    fn late_or_stale_webhooks_do_not_resurrect_or_evict() {
        let r = Registry::new();
        // left arrives before joined for a quick visit
        r.left("room1", "carol", "PA_9");
        r.joined("room1", "RM_room1", p("carol", "PA_9"));
        assert!(r.participants("room1").is_empty());
        // a reconnect: the old session's late "left" must not remove the new one
        r.joined("room1", "RM_room1", p("dave", "PA_1"));
        r.joined("room1", "RM_room1", p("dave", "PA_2"));
        r.left("room1", "dave", "PA_1");
        assert_eq!(r.participants("room1"), vec![p("dave", "PA_2")]);
    }

    #[test]
    fn room_finished_and_clear_end_every_call() {
        let r = Registry::new();
        r.joined("a", "RM_a", p("alice", "PA_1"));
        r.joined("b", "RM_b", p("bob", "PA_2"));
        let mut rx = r.subscribe();
        r.finished("a");
        assert!(r.participants("a").is_empty());
        assert_eq!(r.active_rooms(), vec!["b".to_string()]);
        r.clear();
        assert!(r.active_rooms().is_empty());
        let mut seen = Vec::new();
        while let Ok(e) = rx.try_recv() {
            seen.push(e);
        }
        // Left, Emptied (with the room's LiveKit session), Ended for each.
        assert_eq!(seen.len(), 6, "{seen:?}");
        assert_eq!(
            seen[1],
            CallEvent::Emptied {
                room: "a".into(),
                room_sid: "RM_a".into()
            }
        );
        assert_eq!(seen[2], CallEvent::Ended { room: "a".into() });
        assert_eq!(seen[5], CallEvent::Ended { room: "b".into() });
        assert_eq!(r.lock().total, 0);
    }

    #[test]
    fn repeated_joins_after_room_finished_do_not_restart_the_call() {
        let r = Registry::new();
        r.joined("a", "RM_1", p("alice", "PA_1"));
        r.joined("a", "RM_1", p("bob", "PA_2"));
        r.finished("a");
        let mut rx = r.subscribe();
        // LiveKit repeats both joins, and a third person's join of the finished session
        // arrives late.
        r.joined("a", "RM_1", p("alice", "PA_1"));
        r.joined("a", "RM_1", p("bob", "PA_2"));
        r.joined("a", "RM_1", p("carol", "PA_3"));
        assert!(r.active_rooms().is_empty());
        assert_eq!(rx.try_recv().ok(), None);
        // A new session of the room is a new call.
        r.joined("a", "RM_2", p("alice", "PA_4"));
        assert_eq!(r.participants("a"), vec![p("alice", "PA_4")]);
    }

    #[test]
    fn a_call_starts_with_its_first_join_and_empties_with_its_last_leave() {
        let r = Registry::new();
        let mut rx = r.subscribe();
        r.joined("a", "RM_1", p("alice", "PA_1"));
        r.joined("a", "RM_1", p("bob", "PA_2"));
        r.left("a", "alice", "PA_1");
        r.left("a", "bob", "PA_2");
        r.finished("a"); // LiveKit closes the empty room later: nothing ends twice
        let seen: Vec<CallEvent> = std::iter::from_fn(|| rx.try_recv().ok())
            .filter(|e| matches!(e, CallEvent::Started { .. } | CallEvent::Emptied { .. }))
            .collect();
        assert_eq!(
            seen,
            vec![
                CallEvent::Started {
                    room: "a".into(),
                    room_sid: "RM_1".into(),
                    by: p("alice", "PA_1")
                },
                CallEvent::Emptied {
                    room: "a".into(),
                    room_sid: "RM_1".into()
                },
            ]
        );
    }
}
