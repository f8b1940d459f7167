//! The in-memory fan-out: which connection is subscribed to which room, delivery of committed
//! room events in sequence order, presence and typing.
//!
//! Events arrive from `chat::commit` after their transaction committed, but tasks finishing
//! one group-commit batch can publish out of order. Per room the hub knows the next sequence
//! number it owes its subscribers and holds back later events until the gap is filled; since
//! committed sequence numbers are contiguous, a gap means a publish is on its way. A gap that
//! stays open longer than [`GAP_WAIT`] (a publisher that died) is filled from the `events`
//! table by [`Hub::repair_gaps`], so subscribers still get every event, in order.
//!
//! Delivery never blocks: each connection has a bounded queue (`[gateway] queue_capacity`);
//! a connection whose queue is full is kicked as a slow consumer (its session closes it with
//! 4008) and dropped from every room here, so it never stalls others or grows memory.
//! Connections leave through the [`Registration`] guard's `Drop`. Presence and typing exist
//! only here, derived from connections; nothing is persisted. Only connections that may write
//! (sessions, API keys with the `write` scope) make their user present or send typing.
//!
//! Directory frames (`chat::directory`: a public room created, changed or made private) ride
//! on their room event and go, when it is delivered, to every connection of an account that
//! may see public rooms and is not in the room, through the same bounded queues.
//!
//! Notices (`chat::notices`: a display name changed, a DM hidden or shown) are not room events:
//! [`notices`] sends each connection that should hear one exactly one frame, held for a
//! credential re-check like room events.
//!
//! Revocation: each connection remembers what it signed in with. When the store's generation
//! moves (a committed change to accounts, sessions or API keys, bumped before the change is
//! acknowledged), room events published from then on are held until [`Hub::revalidate`] has
//! re-checked every connection's credential at that generation or later: a connection whose
//! sign-in no longer holds is cut off from every room and kicked (close 4003) before any of
//! them reaches it. Changes made by another process (the command line) do not move the
//! generation; the gateway re-checks every [`REVALIDATE_EVERY`] for them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::queue::{Full, Queue};
use crate::auth::{AuthError, Credential, Principal, Role};
use crate::chat::events::{self, MemberChange};
use crate::chat::{Notice, RoomEvent};
use crate::store::Store;

mod notices;

/// How long a room's delivery waits for a missing sequence number before reading it from the
/// database.
pub const GAP_WAIT: Duration = Duration::from_secs(1);
/// Out-of-order events held per room at most; past it the gap is repaired at once.
const MAX_PENDING_PER_ROOM: usize = 4096;
/// How often every connection's credential is re-checked even though the generation did not
/// move: the longest a change made by another process (`roost user disable`) takes to close
/// the connections it ends, as it takes that long to reach requests (`auth::session_cache`).
pub const REVALIDATE_EVERY: Duration = Duration::from_secs(1);
/// Events held while a re-check is due, at most. Past it (the database cannot be read) every
/// connection is kicked as a slow consumer: they resume with a fresh sign-in and lose nothing.
const MAX_HELD: usize = 16_384;
/// One `typing` per room per connection per this long is passed on; the rest are dropped.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);
/// Rooms whose last typing time a connection remembers. Only rooms it is in are recorded, and
/// an entry older than [`TYPING_EVERY`] no longer throttles anything, so at the limit those
/// are dropped; if none is that old (the frame budget makes that hard), the typing is dropped.
const TYPING_MEMORY: usize = 64;

/// What a connection is sent.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A room event; the session drops it if it already delivered `seq` for that room.
    Event {
        room_id: i64,
        seq: i64,
        text: Utf8Bytes,
    },
    /// Presence, typing and call frames: not sequenced, not replayed.
    Frame(Utf8Bytes),
}

/// A connection's outgoing queue: the hub fills it, the session drains it.
pub type Outbox = Arc<Queue<Outbound>>;

/// Why the hub (or someone through it) ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kicked {
    SlowConsumer,
    /// What it signed in with no longer holds (found by [`Hub::revalidate`]).
    Revoked,
}

/// The signal that ends a connection from outside its session.
#[derive(Debug, Default)]
pub struct Kick {
    pub token: CancellationToken,
    pub reason: OnceLock<Kicked>,
}

impl Kick {
    fn kick(&self, reason: Kicked) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }
}

/// Who a connection acts for, as authentication found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: i64,
    pub credential: Credential,
    /// Sessions, and API keys with the `write` scope: they show the user as present and may
    /// send typing. A read-only key only listens.
    pub may_write: bool,
    /// A member-role account or an admin: it may join public rooms, so it hears of them
    /// (`directory` frames). Guests never do. Read again by every [`Hub::revalidate`], so an
    /// account made a guest stops hearing of them with its next re-check.
    pub sees_public_rooms: bool,
}

impl Caller {
    pub fn of(principal: &Principal) -> Caller {
        Caller {
            user_id: principal.user_id,
            credential: principal.credential.clone(),
            may_write: principal.scopes.write(),
            sees_public_rooms: principal.role >= Role::Member,
        }
    }

    fn via_api_key(&self) -> bool {
        matches!(self.credential, Credential::ApiKey(_))
    }
}

/// Connections one account may hold, the person's devices and its API keys apart.
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    pub sessions: usize,
    pub api_keys: usize,
}

struct Conn {
    caller: Caller,
    user_id: i64,
    tx: Outbox,
    rooms: HashSet<i64>,
    kick: Arc<Kick>,
    /// Until [`Hub::subscribe`] ran: the rooms this user left since the connection registered,
    /// with the sequence number of the `member.left` event. The session reads the user's rooms
    /// after registering and subscribes a moment later; a leave delivered in between must not
    /// be undone by that (by then stale) list. Emptied by `subscribe`, so it holds at most the
    /// rooms left during one database read.
    left_before_subscribe: Option<HashMap<i64, i64>>,
    /// When this connection last passed on `typing`, per room it is in (see [`TYPING_MEMORY`]).
    typing_sent: HashMap<i64, Instant>,
}

impl Conn {
    /// Counts towards its user's presence: subscribed, and allowed to write.
    fn present(&self) -> bool {
        self.caller.may_write && self.left_before_subscribe.is_none()
    }
}

struct Room {
    next_seq: i64,
    pending: BTreeMap<i64, RoomEvent>,
    /// When the oldest still-open gap was first seen.
    gap_since: Option<Instant>,
    subscribers: HashSet<u64>,
}

impl Room {
    fn new(next_seq: i64) -> Room {
        Room {
            next_seq,
            pending: BTreeMap::new(),
            gap_since: None,
            subscribers: HashSet::new(),
        }
    }
}

#[derive(Default)]
struct State {
    next_conn: u64,
    conns: HashMap<u64, Conn>,
    users: HashMap<i64, Vec<u64>>,
    rooms: HashMap<i64, Room>,
    /// The store generation at which every connection's credential was last found good (or
    /// there was no connection to check).
    validated: u64,
    /// Published events and notices waiting for a re-check, oldest first, each with the
    /// generation read when it was published: it may go out once `validated` has reached that.
    held: VecDeque<(u64, Held)>,
}

/// What waits for a credential re-check.
enum Held {
    Event(RoomEvent),
    Notice(Notice),
}

pub struct Hub {
    state: Mutex<State>,
    store: Store,
    queue_capacity: usize,
    /// Wakes the gateway's re-check task when events are held for one.
    revalidate_wanted: Notify,
}

/// Too many connections for one account.
#[derive(Debug)]
pub struct TooMany;

/// A connection's place in the hub; dropping it unsubscribes the connection everywhere and
/// announces the user offline if it was their last connection.
pub struct Registration {
    hub: Arc<Hub>,
    pub conn_id: u64,
    pub user_id: i64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.conn_id);
    }
}

fn presence_frame(user_id: i64, online: bool) -> Utf8Bytes {
    let status = if online { "online" } else { "offline" };
    Utf8Bytes::from(format!(
        r#"{{"op":"presence","user_id":{user_id},"status":"{status}"}}"#
    ))
}

impl Hub {
    /// A hub that owes every existing room its next event (`positions`: room id and
    /// `last_seq`, read at startup). Rooms created later start at sequence 1.
    pub fn new(store: Store, queue_capacity: usize, positions: Vec<(i64, i64)>) -> Hub {
        let mut state = State {
            validated: store.generation(),
            ..State::default()
        };
        for (room_id, last_seq) in positions {
            state.rooms.insert(room_id, Room::new(last_seq + 1));
        }
        Hub {
            state: Mutex::new(state),
            store,
            queue_capacity,
            revalidate_wanted: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("hub lock is never poisoned: nothing panics while holding it")
    }

    /// Adds a connection for `caller` (no rooms yet) unless its user already holds all the
    /// `slots` of its kind: connections made with API keys count apart from sessions.
    pub fn register(
        self: &Arc<Self>,
        caller: Caller,
        slots: Slots,
    ) -> Result<(Registration, Outbox, Arc<Kick>), TooMany> {
        let tx = Arc::new(Queue::new(self.queue_capacity));
        let rx = tx.clone();
        let kick = Arc::new(Kick::default());
        let user_id = caller.user_id;
        let via_api_key = caller.via_api_key();
        let max = if via_api_key {
            slots.api_keys
        } else {
            slots.sessions
        };
        let mut st = self.lock();
        let held = st.users.get(&user_id).map_or(0, |mine| {
            mine.iter()
                .filter_map(|c| st.conns.get(c))
                .filter(|c| c.caller.via_api_key() == via_api_key)
                .count()
        });
        if held >= max {
            return Err(TooMany);
        }
        st.next_conn += 1;
        let conn_id = st.next_conn;
        st.users.entry(user_id).or_default().push(conn_id);
        st.conns.insert(
            conn_id,
            Conn {
                caller,
                user_id,
                tx,
                rooms: HashSet::new(),
                kick: kick.clone(),
                left_before_subscribe: Some(HashMap::new()),
                typing_sent: HashMap::new(),
            },
        );
        drop(st);
        Ok((
            Registration {
                hub: self.clone(),
                conn_id,
                user_id,
            },
            rx,
            kick,
        ))
    }

    /// Subscribes a connection to the rooms its user was a member of when the session read
    /// them: `rooms` holds each room's id and its `last_seq` in that same read. A room whose
    /// `member.left` for this user was delivered after that read (a sequence number above it)
    /// is skipped: the leave happened after the read, and the hub already applied it. Joins
    /// need no such care: `member.joined` subscribes every registered connection of the user.
    /// The user's first connection announces them online to everyone sharing one of the rooms.
    /// Returns the rooms subscribed.
    pub fn subscribe(&self, conn_id: u64, rooms: &[(i64, i64)]) -> Vec<i64> {
        let mut st = self.lock();
        let Some(conn) = st.conns.get_mut(&conn_id) else {
            return Vec::new();
        };
        let user_id = conn.user_id;
        let announces = conn.caller.may_write;
        let left = conn.left_before_subscribe.take().unwrap_or_default();
        let wanted: Vec<i64> = rooms
            .iter()
            .filter(|(room_id, read_at)| left.get(room_id).is_none_or(|seq| seq <= read_at))
            .map(|(room_id, _)| *room_id)
            .collect();
        conn.rooms.extend(wanted.iter().copied());
        for room_id in &wanted {
            st.rooms
                .entry(*room_id)
                .or_insert_with(|| Room::new(1))
                .subscribers
                .insert(conn_id);
        }
        if announces && !Self::present_elsewhere(&st, user_id, conn_id) {
            let frame = presence_frame(user_id, true);
            Self::to_peers(&mut st, user_id, &wanted, &frame);
        }
        wanted
    }

    /// Whether `user_id` has a connection other than `conn_id` that makes it present.
    fn present_elsewhere(st: &State, user_id: i64, conn_id: u64) -> bool {
        st.users.get(&user_id).is_some_and(|mine| {
            mine.iter()
                .filter(|c| **c != conn_id)
                .filter_map(|c| st.conns.get(c))
                .any(Conn::present)
        })
    }

    /// Users present (a connection that may write) in one of `rooms` (presence for `ready`).
    pub fn online_in(&self, rooms: &[i64]) -> Vec<i64> {
        let st = self.lock();
        let mut users: Vec<i64> = rooms
            .iter()
            .filter_map(|r| st.rooms.get(r))
            .flat_map(|r| r.subscribers.iter())
            .filter_map(|c| st.conns.get(c))
            .filter(|c| c.present())
            .map(|c| c.user_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        users.sort_unstable();
        users
    }

    /// Open connections (the `roost_ws_connections` gauge counts sessions, this the hub).
    pub fn connection_count(&self) -> usize {
        self.lock().conns.len()
    }

    fn unregister(&self, conn_id: u64) {
        let mut st = self.lock();
        Self::leave(&mut st, conn_id);
    }

    /// Takes a connection out of the hub, and announces its user offline if it was the last
    /// connection that made them present.
    fn leave(st: &mut State, conn_id: u64) {
        let Some(conn) = Self::detach(st, conn_id) else {
            return;
        };
        if conn.present() && !Self::present_elsewhere(st, conn.user_id, conn_id) {
            let rooms: Vec<i64> = conn.rooms.iter().copied().collect();
            let frame = presence_frame(conn.user_id, false);
            Self::to_peers(st, conn.user_id, &rooms, &frame);
        }
    }

    /// Kicks a connection for `reason` and takes it out of every room at once, so nothing
    /// more is queued for it; its session closes it, and its registration's drop finds it
    /// already gone.
    fn kick_out(st: &mut State, conn_id: u64, reason: Kicked) {
        if let Some(conn) = st.conns.get(&conn_id) {
            conn.kick.kick(reason);
        }
        Self::leave(st, conn_id);
    }

    /// Removes a connection from every index; returns it.
    fn detach(st: &mut State, conn_id: u64) -> Option<Conn> {
        let conn = st.conns.remove(&conn_id)?;
        for room_id in &conn.rooms {
            if let Some(room) = st.rooms.get_mut(room_id) {
                room.subscribers.remove(&conn_id);
            }
        }
        if let Some(list) = st.users.get_mut(&conn.user_id) {
            list.retain(|c| *c != conn_id);
            if list.is_empty() {
                st.users.remove(&conn.user_id);
            }
        }
        Some(conn)
    }

    /// Sends `frame` to every connection in `rooms` that is not `user_id`'s (each once).
    fn to_peers(st: &mut State, user_id: i64, rooms: &[i64], frame: &Utf8Bytes) {
        let targets: HashSet<u64> = rooms
            .iter()
            .filter_map(|r| st.rooms.get(r))
            .flat_map(|r| r.subscribers.iter().copied())
            .collect();
        for conn_id in targets {
            if st.conns.get(&conn_id).is_some_and(|c| c.user_id != user_id) {
                Self::deliver(st, conn_id, Outbound::Frame(frame.clone()));
            }
        }
    }

    /// After `member.joined`: the new member and the room's others learn that each other is
    /// online. Without it, people who shared no room before would show each other offline
    /// until one of them reconnected (presence is otherwise sent at `ready` and on connecting
    /// and leaving). The new member's connections hear of others only while their queue is
    /// less than half full, so a crowded room cannot make them slow consumers; whoever is left
    /// out shows at their next `ready`.
    fn introduce(st: &mut State, user_id: i64, room_id: i64) {
        let subscribers: Vec<u64> = st
            .rooms
            .get(&room_id)
            .map(|r| r.subscribers.iter().copied().collect())
            .unwrap_or_default();
        let mut joiner_present = false;
        let mut others_present = BTreeSet::new();
        for conn in subscribers.iter().filter_map(|c| st.conns.get(c)) {
            if conn.user_id == user_id {
                joiner_present |= conn.present();
            } else if conn.present() {
                others_present.insert(conn.user_id);
            }
        }
        if joiner_present {
            Self::to_peers(st, user_id, &[room_id], &presence_frame(user_id, true));
        }
        let joiner_conns: Vec<(u64, usize)> = subscribers
            .iter()
            .filter_map(|c| st.conns.get(c).map(|conn| (*c, conn)))
            .filter(|(_, conn)| conn.user_id == user_id)
            .map(|(c, conn)| (c, conn.tx.room_below_half()))
            .collect();
        for (conn_id, spare) in joiner_conns {
            for other in others_present.iter().take(spare) {
                Self::deliver(st, conn_id, Outbound::Frame(presence_frame(*other, true)));
            }
        }
    }

    /// Sends a `directory` frame about `room_id` to every connection that may see public rooms
    /// and is not in the room (its members had the room event itself), nor the member who just
    /// created it. Each goes through the connection's bounded queue like any frame.
    fn to_directory(st: &mut State, room_id: i64, member: Option<MemberChange>, frame: &str) {
        let joiner = match member {
            Some(MemberChange::Joined(user_id)) => Some(user_id),
            _ => None,
        };
        let targets: Vec<u64> = st
            .conns
            .iter()
            .filter(|(_, c)| {
                c.caller.sees_public_rooms
                    && !c.rooms.contains(&room_id)
                    && Some(c.user_id) != joiner
            })
            .map(|(id, _)| *id)
            .collect();
        if targets.is_empty() {
            return;
        }
        let text = Utf8Bytes::from(frame);
        for conn_id in targets {
            Self::deliver(st, conn_id, Outbound::Frame(text.clone()));
        }
    }

    /// Queues `item` for one connection; a full queue kicks it as a slow consumer.
    fn deliver(st: &mut State, conn_id: u64, item: Outbound) {
        let Some(conn) = st.conns.get(&conn_id) else {
            return;
        };
        if let Err(Full(_)) = conn.tx.try_push(item) {
            // Out of every room now, so it costs nothing more.
            Self::kick_out(st, conn_id, Kicked::SlowConsumer);
        }
    }

    /// Sends an unsequenced frame to every connection subscribed to `room_id` (call events).
    pub fn broadcast_room(&self, room_id: i64, frame: Utf8Bytes) {
        let mut st = self.lock();
        let targets: Vec<u64> = st
            .rooms
            .get(&room_id)
            .map(|r| r.subscribers.iter().copied().collect())
            .unwrap_or_default();
        for conn_id in targets {
            Self::deliver(&mut st, conn_id, Outbound::Frame(frame.clone()));
        }
    }

    /// `typing` from a connection: to the room's other users, if the connection is in the
    /// room, may write, and has not passed one on for it within [`TYPING_EVERY`]. Nothing is
    /// recorded for a room the connection is not in. True if it was passed on.
    pub fn typing(&self, conn_id: u64, room_id: i64) -> bool {
        let now = Instant::now();
        let mut st = self.lock();
        let Some(conn) = st
            .conns
            .get_mut(&conn_id)
            .filter(|c| c.caller.may_write && c.rooms.contains(&room_id))
        else {
            return false;
        };
        let sent = &mut conn.typing_sent;
        if sent
            .get(&room_id)
            .is_some_and(|t| now.duration_since(*t) < TYPING_EVERY)
        {
            return false;
        }
        if sent.len() >= TYPING_MEMORY {
            sent.retain(|_, t| now.duration_since(*t) < TYPING_EVERY);
            if sent.len() >= TYPING_MEMORY {
                return false;
            }
        }
        sent.insert(room_id, now);
        let user_id = conn.user_id;
        let frame = Utf8Bytes::from(format!(
            r#"{{"op":"typing","room_id":{room_id},"user_id":{user_id}}}"#
        ));
        Self::to_peers(&mut st, user_id, &[room_id], &frame);
        true
    }

    /// Delivers committed events, each room's in sequence order (see the module docs). While
    /// a credential re-check is due they are held for it (see the module docs).
    pub fn publish(&self, events: Vec<RoomEvent>) {
        if events.is_empty() {
            return;
        }
        // Read before the lock, like the re-check reads it before looking: a revocation that
        // committed before this publish has moved it already.
        let generation = self.store.generation();
        let mut st = self.lock();
        if st.conns.is_empty() {
            // Nobody to cut off: nothing to check.
            st.validated = st.validated.max(generation);
        }
        if generation > st.validated || !st.held.is_empty() {
            if st.held.len() + events.len() > MAX_HELD {
                tracing::warn!(
                    held = st.held.len(),
                    "gateway: credentials could not be re-checked in time; every connection \
                     must reconnect and resume"
                );
                let everyone: Vec<u64> = st.conns.keys().copied().collect();
                for conn_id in everyone {
                    Self::kick_out(&mut st, conn_id, Kicked::SlowConsumer);
                }
                // Nobody is left to hear the notices; the events still move each room on.
                let held: Vec<RoomEvent> = st
                    .held
                    .drain(..)
                    .filter_map(|(_, held)| match held {
                        Held::Event(e) => Some(e),
                        Held::Notice(_) => None,
                    })
                    .collect();
                Self::order(&mut st, held);
                Self::order(&mut st, events);
                return;
            }
            st.held.extend(
                events
                    .into_iter()
                    .map(|event| (generation, Held::Event(event))),
            );
            drop(st);
            self.revalidate_wanted.notify_one();
            return;
        }
        Self::order(&mut st, events);
    }

    /// Takes events into their rooms' sequences and delivers what is contiguous.
    fn order(st: &mut State, events: Vec<RoomEvent>) {
        for event in events {
            let room_id = event.room_id;
            let room = st.rooms.entry(room_id).or_insert_with(|| Room::new(1));
            if event.seq < room.next_seq {
                continue; // already delivered (a repaired gap, or a repeat)
            }
            room.pending.insert(event.seq, event);
            Self::flush(st, room_id);
        }
    }

    /// Waits until events are held for a re-check (the gateway's task also re-checks every
    /// [`REVALIDATE_EVERY`]).
    pub async fn revalidation_wanted(&self) {
        self.revalidate_wanted.notified().await;
    }

    /// Re-checks every connection's credential at `now` (Unix seconds) in one read: those no
    /// longer good are kicked ([`Kicked::Revoked`]) and cut off from every room, and every
    /// account's role is read again ([`Caller::sees_public_rooms`]); then the
    /// events held for a re-check at this generation go out. Connections that register during
    /// the read are not in it: their sessions check again themselves if the generation moved
    /// since they signed in.
    pub async fn revalidate(&self, now: i64) -> Result<(), AuthError> {
        let generation = self.store.generation();
        let callers: HashSet<(Credential, i64)> = {
            let st = self.lock();
            st.conns
                .values()
                .map(|c| (c.caller.credential.clone(), c.user_id))
                .collect()
        };
        let (ended, roles): (HashSet<(Credential, i64)>, HashMap<i64, Role>) = if callers.is_empty()
        {
            (HashSet::new(), HashMap::new())
        } else {
            self.store
                .read(move |conn| {
                    let mut ended = HashSet::new();
                    let mut roles = HashMap::new();
                    for (credential, user_id) in callers {
                        if !crate::auth::credential_is_live(conn, &credential, user_id, now)? {
                            ended.insert((credential, user_id));
                        }
                        if let std::collections::hash_map::Entry::Vacant(role) =
                            roles.entry(user_id)
                        {
                            if let Some(user) = crate::auth::users::by_id(conn, user_id)? {
                                role.insert(user.role);
                            }
                        }
                    }
                    Ok::<_, AuthError>((ended, roles))
                })
                .await?
        };
        let mut st = self.lock();
        // Whether each account may see public rooms now (made a guest, or a member again).
        // A connection that registered during the read is not in `roles` and keeps what its
        // sign-in found.
        for conn in st.conns.values_mut() {
            if let Some(role) = roles.get(&conn.user_id) {
                conn.caller.sees_public_rooms = *role >= Role::Member;
            }
        }
        if !ended.is_empty() {
            let gone: Vec<u64> = st
                .conns
                .iter()
                .filter(|(_, c)| ended.contains(&(c.caller.credential.clone(), c.user_id)))
                .map(|(id, _)| *id)
                .collect();
            for conn_id in gone {
                Self::kick_out(&mut st, conn_id, Kicked::Revoked);
            }
        }
        st.validated = st.validated.max(generation);
        // In the order they were published: events into their rooms, notices to their
        // audience.
        while st
            .held
            .front()
            .is_some_and(|(held_at, _)| *held_at <= st.validated)
        {
            match st.held.pop_front() {
                Some((_, Held::Event(event))) => Self::order(&mut st, vec![event]),
                Some((_, Held::Notice(notice))) => Self::deliver_notice(&mut st, &notice),
                None => break,
            }
        }
        let more = !st.held.is_empty();
        drop(st);
        if more {
            self.revalidate_wanted.notify_one();
        }
        Ok(())
    }

    /// Delivers a room's pending events from `next_seq` on while they are contiguous.
    fn flush(st: &mut State, room_id: i64) {
        loop {
            let Some(room) = st.rooms.get_mut(&room_id) else {
                return;
            };
            let Some(event) = room.pending.remove(&room.next_seq) else {
                if room.pending.is_empty() {
                    room.gap_since = None;
                } else if room.gap_since.is_none() {
                    room.gap_since = Some(Instant::now());
                }
                return;
            };
            room.next_seq += 1;
            Self::deliver_event(st, event);
        }
    }

    fn deliver_event(st: &mut State, event: RoomEvent) {
        let room_id = event.room_id;
        // A new member's connections join before the event, so they receive it.
        if let Some(MemberChange::Joined(user_id)) = event.member {
            let conns = st.users.get(&user_id).cloned().unwrap_or_default();
            for conn_id in conns {
                if let Some(c) = st.conns.get_mut(&conn_id) {
                    c.rooms.insert(room_id);
                }
                if let Some(room) = st.rooms.get_mut(&room_id) {
                    room.subscribers.insert(conn_id);
                }
            }
        }
        let text = Utf8Bytes::from(event.frame.to_string());
        let targets: Vec<u64> = st
            .rooms
            .get(&room_id)
            .map(|r| r.subscribers.iter().copied().collect())
            .unwrap_or_default();
        for conn_id in targets {
            Self::deliver(
                st,
                conn_id,
                Outbound::Event {
                    room_id,
                    seq: event.seq,
                    text: text.clone(),
                },
            );
        }
        if let Some(MemberChange::Joined(user_id)) = event.member {
            Self::introduce(st, user_id, room_id);
        }
        if let Some(frame) = &event.directory {
            Self::to_directory(st, room_id, event.member, frame);
        }
        // A member who left hears it, then stops receiving the room. A connection that has not
        // subscribed yet remembers the leave, so its (older) list of rooms cannot bring the
        // room back (see `subscribe`).
        if let Some(MemberChange::Left(user_id)) = event.member {
            let conns = st.users.get(&user_id).cloned().unwrap_or_default();
            for conn_id in conns {
                if let Some(c) = st.conns.get_mut(&conn_id) {
                    c.rooms.remove(&room_id);
                    if let Some(left) = c.left_before_subscribe.as_mut() {
                        left.insert(room_id, event.seq);
                    }
                }
                if let Some(room) = st.rooms.get_mut(&room_id) {
                    room.subscribers.remove(&conn_id);
                }
            }
        }
    }

    /// Rooms whose gap has been open longer than `wait` (or whose backlog is too long): room,
    /// the missing sequence number and the first one held back.
    fn stale_gaps(&self, wait: Duration) -> Vec<(i64, i64, i64)> {
        let st = self.lock();
        st.rooms
            .iter()
            .filter(|(_, r)| {
                r.gap_since.is_some_and(|t| t.elapsed() >= wait)
                    || r.pending.len() > MAX_PENDING_PER_ROOM
            })
            .filter_map(|(id, r)| {
                let first = *r.pending.keys().next()?;
                Some((*id, r.next_seq, first))
            })
            .collect()
    }

    /// Fills gaps open longer than `wait` from the `events` table; if the database does not
    /// have the missing events (pruned), skips to what is held back. Called every
    /// `GAP_WAIT / 2` by the gateway's background task.
    pub async fn repair_gaps(&self, wait: Duration) {
        for (room_id, missing, first_held) in self.stale_gaps(wait) {
            let found = self
                .store
                .read(move |conn| {
                    events::range(
                        conn,
                        room_id,
                        missing - 1,
                        first_held - 1,
                        MAX_PENDING_PER_ROOM,
                    )
                })
                .await;
            let found = match found {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(error = %e, room_id, "gateway: reading events to fill a gap");
                    continue;
                }
            };
            tracing::warn!(
                room_id,
                missing,
                recovered = found.len(),
                "gateway: an event was not published in time; delivered it from the database"
            );
            self.publish(found);
            // Whatever is still missing cannot be had: move on so the room is not stuck. Not
            // while events wait for a credential re-check: what was found may be among them,
            // and is delivered when they go out (the next round looks again).
            let mut st = self.lock();
            if !st.held.is_empty() {
                continue;
            }
            if let Some(room) = st.rooms.get_mut(&room_id) {
                if room.next_seq < first_held {
                    room.next_seq = first_held;
                }
            }
            Self::flush(&mut st, room_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    fn event(room_id: i64, seq: i64, member: Option<MemberChange>) -> RoomEvent {
        RoomEvent {
            room_id,
            seq,
            kind: "message.created".into(),
            at_ms: 0,
            frame: events::render(room_id, seq, "message.created", 0, "{}"),
            member,
            directory: None,
        }
    }

    pub(super) fn caller(user_id: i64) -> Caller {
        Caller {
            user_id,
            credential: Credential::Session(format!("s{user_id}")),
            may_write: true,
            sees_public_rooms: true,
        }
    }

    pub(super) fn slots(n: usize) -> Slots {
        Slots {
            sessions: n,
            api_keys: n,
        }
    }

    pub(super) fn hub(dir: &std::path::Path, capacity: usize) -> Arc<Hub> {
        let store = Store::open(
            &dir.join("db.sqlite3"),
            StoreOptions::new(dir.join("backups")),
        )
        .unwrap();
        Arc::new(Hub::new(store, capacity, vec![(1, 0), (2, 0)]))
    }

    /// A hub on a real store with two members, ada and bob, each signed in with a session
    /// (`(user id, session id)`), and room 1 at sequence 0.
    pub(super) async fn two_signed_in() -> (tempfile::TempDir, Store, Vec<(i64, String)>, Arc<Hub>)
    {
        use crate::auth::{session, users, Role};
        let dir = tempfile::tempdir().unwrap();
        let mut options = StoreOptions::new(dir.path().join("backups"));
        options.watched_tables = crate::gateway::WATCHED_TABLES;
        let store = Store::open(&dir.path().join("db.sqlite3"), options).unwrap();
        let sessions: Vec<(i64, String)> = store
            .write(|conn| {
                let mut out = Vec::new();
                for name in ["ada", "bob"] {
                    let new = users::NewUser {
                        username: name.into(),
                        display_name: name.into(),
                        role: Role::Member,
                        password_hash: "x".into(),
                    };
                    let user = users::insert(conn, &new, 0)?;
                    out.push((user.id, session::create(conn, user.id, 0, 1000)?.session_id));
                }
                Ok::<_, AuthError>(out)
            })
            .await
            .unwrap();
        let hub = Arc::new(Hub::new(store.clone(), 16, vec![(1, 0)]));
        (dir, store, sessions, hub)
    }

    /// A member's connection with the session `two_signed_in` made for them.
    pub(super) fn session_caller((user_id, sid): &(i64, String)) -> Caller {
        Caller {
            user_id: *user_id,
            credential: Credential::Session(sid.clone()),
            may_write: true,
            sees_public_rooms: true,
        }
    }

    fn seqs(rx: &Queue<Outbound>) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(item) = rx.try_pop() {
            if let Outbound::Event { seq, .. } = item {
                out.push(seq);
            }
        }
        out
    }

    #[tokio::test]
    async fn events_published_out_of_order_are_delivered_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path(), 16);
        let (reg, rx, _) = hub.register(caller(7), slots(4)).unwrap();
        hub.subscribe(reg.conn_id, &[(1, 0)]);
        hub.publish(vec![event(1, 2, None)]);
        assert_eq!(seqs(&rx), Vec::<i64>::new(), "2 waits for 1");
        hub.publish(vec![event(1, 1, None), event(1, 3, None)]);
        assert_eq!(seqs(&rx), vec![1, 2, 3]);
        hub.publish(vec![event(1, 2, None)]);
        assert_eq!(seqs(&rx), Vec::<i64>::new(), "a repeat is dropped");
    }

    #[tokio::test]
    async fn a_full_queue_kicks_only_that_connection() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path(), 8);
        let (slow, _slow_rx, slow_kick) = hub.register(caller(1), slots(4)).unwrap();
        let (fast, fast_rx, fast_kick) = hub.register(caller(2), slots(4)).unwrap();
        hub.subscribe(slow.conn_id, &[(1, 0)]);
        hub.subscribe(fast.conn_id, &[(1, 0)]);
        while fast_rx.try_pop().is_some() {} // presence of the slow one
        for seq in 1..=20 {
            hub.publish(vec![event(1, seq, None)]);
            assert_eq!(seqs(&fast_rx), vec![seq]);
        }
        assert_eq!(slow_kick.reason.get(), Some(&Kicked::SlowConsumer));
        assert!(!fast_kick.token.is_cancelled());
        assert_eq!(hub.connection_count(), 1);
        drop(slow); // the guard finds it gone already
        assert_eq!(hub.connection_count(), 1);
    }

    #[tokio::test]
    async fn membership_events_subscribe_and_unsubscribe() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path(), 16);
        let (reg, rx, _) = hub.register(caller(5), slots(4)).unwrap();
        hub.subscribe(reg.conn_id, &[]);
        hub.publish(vec![event(2, 1, Some(MemberChange::Joined(5)))]);
        hub.publish(vec![event(2, 2, None)]);
        hub.publish(vec![event(2, 3, Some(MemberChange::Left(5)))]);
        hub.publish(vec![event(2, 4, None)]);
        assert_eq!(seqs(&rx), vec![1, 2, 3]);
    }

    /// The session's order: register, read the user's rooms, subscribe. A leave committed and
    /// delivered between the read and the subscribe must stay a leave.
    #[tokio::test]
    async fn a_leave_between_reading_rooms_and_subscribing_is_not_undone() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path(), 16);
        let (reg, rx, _) = hub.register(caller(5), slots(4)).unwrap();
        // The session read: member of room 1 (at seq 0) and room 2 (at seq 0).
        let read = [(1, 0), (2, 0)];
        // Meanwhile user 5 leaves room 2 (seq 1), and the hub delivers it.
        hub.publish(vec![event(2, 1, Some(MemberChange::Left(5)))]);
        assert_eq!(hub.subscribe(reg.conn_id, &read), vec![1]);
        hub.publish(vec![event(2, 2, None), event(1, 1, None)]);
        let got: Vec<(i64, i64)> = std::iter::from_fn(|| rx.try_pop())
            .filter_map(|o| match o {
                Outbound::Event { room_id, seq, .. } => Some((room_id, seq)),
                Outbound::Frame(_) => None,
            })
            .collect();
        assert_eq!(got, vec![(1, 1)], "nothing from the room left");
        assert_eq!(hub.online_in(&[2]), Vec::<i64>::new());

        // A leave older than the read does not hold the subscription back: the user left
        // (4) and re-joined (5) before the read; the hub has not delivered the re-join yet.
        drop(reg);
        let (again, rx, _) = hub.register(caller(5), slots(4)).unwrap();
        hub.publish(vec![
            event(2, 3, Some(MemberChange::Joined(5))),
            event(2, 4, Some(MemberChange::Left(5))),
        ]);
        assert_eq!(hub.subscribe(again.conn_id, &[(2, 5)]), vec![2]);
        hub.publish(vec![
            event(2, 5, Some(MemberChange::Joined(5))),
            event(2, 6, None),
        ]);
        assert_eq!(seqs(&rx), vec![3, 4, 5, 6]);
    }

    #[tokio::test]
    async fn per_user_cap_and_presence() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path(), 16);
        let (a, a_rx, _) = hub.register(caller(1), slots(1)).unwrap();
        assert!(hub.register(caller(1), slots(1)).is_err());
        hub.subscribe(a.conn_id, &[(1, 0)]);
        let (b, _b_rx, _) = hub.register(caller(2), slots(1)).unwrap();
        hub.subscribe(b.conn_id, &[(1, 0)]);
        assert_eq!(hub.online_in(&[1]), vec![1, 2]);
        drop(b);
        let frames: Vec<String> = std::iter::from_fn(|| a_rx.try_pop())
            .map(|o| match o {
                Outbound::Frame(t) => t.to_string(),
                Outbound::Event { text, .. } => text.to_string(),
            })
            .collect();
        assert_eq!(
            frames,
            vec![
                r#"{"op":"presence","user_id":2,"status":"online"}"#,
                r#"{"op":"presence","user_id":2,"status":"offline"}"#
            ]
        );
    }

    /// A revocation moves the generation before it is acknowledged: events published after it
    /// wait for the re-check, which cuts off the revoked connection before they go out.
    #[tokio::test]
    async fn events_after_a_revocation_wait_until_the_revoked_connection_is_cut_off() {
        use crate::auth::session;
        let (_dir, store, sessions, hub) = two_signed_in().await;
        let (ada, ada_rx, ada_kick) = hub
            .register(session_caller(&sessions[0]), slots(4))
            .unwrap();
        let (bob, bob_rx, bob_kick) = hub
            .register(session_caller(&sessions[1]), slots(4))
            .unwrap();
        hub.subscribe(ada.conn_id, &[(1, 0)]);
        hub.subscribe(bob.conn_id, &[(1, 0)]);
        while ada_rx.try_pop().is_some() {} // presence
        hub.publish(vec![event(1, 1, None)]);
        assert_eq!((seqs(&ada_rx), seqs(&bob_rx)), (vec![1], vec![1]));

        let bob_sid = sessions[1].1.clone();
        store
            .write(move |conn| session::revoke(conn, &bob_sid, "logout", 1))
            .await
            .unwrap();
        hub.publish(vec![event(1, 2, None)]);
        assert_eq!((seqs(&ada_rx), seqs(&bob_rx)), (vec![], vec![]), "held");
        hub.revalidate(1).await.unwrap();
        assert_eq!(bob_kick.reason.get(), Some(&Kicked::Revoked));
        assert!(!ada_kick.token.is_cancelled());
        assert_eq!((seqs(&ada_rx), seqs(&bob_rx)), (vec![2], vec![]));
        // Nothing more is held once the generation is checked.
        hub.publish(vec![event(1, 3, None)]);
        assert_eq!(seqs(&ada_rx), vec![3]);
        assert_eq!(hub.connection_count(), 1);
        drop((ada, bob));
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn typing_needs_membership_and_write_and_is_throttled_per_room() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path(), 64);
        let (typist, _, _) = hub.register(caller(1), slots(4)).unwrap();
        let reader = Caller {
            may_write: false,
            credential: Credential::ApiKey(9),
            ..caller(1)
        };
        let (key, _, _) = hub.register(reader, slots(4)).unwrap();
        let (peer, peer_rx, _) = hub.register(caller(2), slots(4)).unwrap();
        hub.subscribe(typist.conn_id, &[(1, 0)]);
        hub.subscribe(key.conn_id, &[(1, 0)]);
        hub.subscribe(peer.conn_id, &[(1, 0)]);
        while peer_rx.try_pop().is_some() {} // presence
        assert!(!hub.typing(key.conn_id, 1), "a read-only key");
        assert!(hub.typing(typist.conn_id, 1));
        for other in 2..1000 {
            assert!(!hub.typing(typist.conn_id, other), "not in room {other}");
        }
        assert!(!hub.typing(typist.conn_id, 1), "still throttled");
        assert_eq!(std::iter::from_fn(|| peer_rx.try_pop()).count(), 1);
    }

    #[tokio::test]
    async fn api_keys_have_slots_apart_and_read_only_ones_are_not_present() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path(), 64);
        let key = |id| Caller {
            may_write: false,
            credential: Credential::ApiKey(id),
            ..caller(1)
        };
        let limits = Slots {
            sessions: 1,
            api_keys: 2,
        };
        let (k1, _, _) = hub.register(key(1), limits).unwrap();
        let (_k2, _, _) = hub.register(key(2), limits).unwrap();
        assert!(hub.register(key(3), limits).is_err());
        hub.subscribe(k1.conn_id, &[(1, 0)]);
        assert_eq!(hub.online_in(&[1]), Vec::<i64>::new());
        let (own, _, _) = hub.register(caller(1), limits).unwrap();
        assert!(hub.register(caller(1), limits).is_err());
        hub.subscribe(own.conn_id, &[(1, 0)]);
        assert_eq!(hub.online_in(&[1]), vec![1]);
    }

    /// A public room's directory frame reaches those outside it who may join it: not its
    /// members (they have the event), not its creator, not guests.
    #[tokio::test]
    async fn directory_frames_go_to_people_outside_the_room_who_may_join_it() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path(), 16);
        let (creator, creator_rx, _) = hub.register(caller(1), slots(4)).unwrap();
        let (member, member_rx, _) = hub.register(caller(2), slots(4)).unwrap();
        let (outsider, outsider_rx, _) = hub.register(caller(3), slots(4)).unwrap();
        let guest = Caller {
            sees_public_rooms: false,
            ..caller(4)
        };
        let (guest, guest_rx, _) = hub.register(guest, slots(4)).unwrap();
        hub.subscribe(creator.conn_id, &[]);
        hub.subscribe(member.conn_id, &[(2, 0)]);
        hub.subscribe(outsider.conn_id, &[]);
        hub.subscribe(guest.conn_id, &[]);
        let frames = |rx: &Queue<Outbound>| -> Vec<String> {
            std::iter::from_fn(|| rx.try_pop())
                .map(|o| match o {
                    Outbound::Frame(t) | Outbound::Event { text: t, .. } => t.to_string(),
                })
                .filter(|t| !t.contains("presence"))
                .collect()
        };
        let announce = Arc::<str>::from(r#"{"op":"directory"}"#);
        hub.publish(vec![RoomEvent {
            directory: Some(announce.clone()),
            ..event(2, 1, Some(MemberChange::Joined(1)))
        }]);
        assert_eq!(frames(&outsider_rx), vec![r#"{"op":"directory"}"#]);
        assert_eq!(frames(&guest_rx), Vec::<String>::new());
        let creators = frames(&creator_rx);
        assert_eq!(creators.len(), 1, "only the event: {creators:?}");
        assert!(creators[0].contains(r#""op":"event""#));
        let members = frames(&member_rx);
        assert_eq!(members.len(), 1, "only the event: {members:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_that_stays_open_is_skipped_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let hub = hub(dir.path(), 16);
        let (reg, rx, _) = hub.register(caller(1), slots(4)).unwrap();
        hub.subscribe(reg.conn_id, &[(1, 0)]);
        hub.publish(vec![event(1, 2, None)]);
        hub.repair_gaps(GAP_WAIT).await;
        assert_eq!(seqs(&rx), Vec::<i64>::new(), "not yet");
        tokio::time::advance(GAP_WAIT).await;
        // The database has no event 1 of room 1 (there is no room 1): skip it.
        hub.repair_gaps(GAP_WAIT).await;
        assert_eq!(seqs(&rx), vec![2]);
    }
}
