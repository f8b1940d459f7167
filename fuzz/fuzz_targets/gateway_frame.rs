//! What a gateway client sends as text frames: the first frame (`auth` / `resume` with
//! cursors, `gateway::protocol::Hello`) and the frames after `ready` (`ClientFrame`). A parsed
//! hello's cursors then go through `gateway::session::start_state` against a real database
//! (the migrated schema, four rooms in different states), as a connecting session does.
//!
//! Must hold: nothing panics; every room with a cursor is either resumed or told to resync,
//! never both; a resumed room replays exactly the events after its cursor, in order, and only
//! when they are all still kept; rooms without a cursor are neither.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use roost::chat::events::{self, LogPosition};
use roost::gateway::protocol::{ClientFrame, Hello};
use roost::gateway::session::start_state;

/// The rooms of the fixture: (id, events appended, events kept).
const ROOMS: [(i64, i64, u64); 4] = [
    (1, 0, 100),  // no event yet
    (2, 10, 100), // everything kept
    (3, 60, 20),  // 41..=60 kept
    (4, 3, 1),    // only the newest kept
];

fn db() -> &'static Mutex<rusqlite::Connection> {
    static DB: OnceLock<Mutex<rusqlite::Connection>> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("roost-fuzz-gateway-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let path = dir.join("roost.sqlite3");
        roost::store::migrations::apply(&path, &dir.join("backups")).expect("migrations apply");
        let conn = rusqlite::Connection::open(&path).expect("the fixture database opens");
        conn.execute(
            "INSERT INTO users (id, username, display_name, role, password_hash, created_at,
                                updated_at)
             VALUES (1, 'fuzz', 'Fuzz', 'member', 'x', 0, 0)",
            [],
        )
        .expect("a user");
        for (id, n, keep) in ROOMS {
            conn.execute(
                "INSERT INTO rooms (id, name, visibility, created_at, updated_at)
                 VALUES (?1, 'r', 'public', 0, 0)",
                [id],
            )
            .expect("a room");
            conn.execute(
                "INSERT INTO room_members (room_id, user_id, role, joined_at)
                 VALUES (?1, 1, 'member', 0)",
                [id],
            )
            .expect("a membership");
            for i in 0..n {
                events::append(&conn, id, "room.updated", &i, 0, keep, None).expect("an event");
            }
        }
        Mutex::new(conn)
    })
}

fn position(room: i64) -> LogPosition {
    let (_, n, keep) = ROOMS.iter().find(|r| r.0 == room).copied().expect("a room");
    LogPosition {
        last_seq: n,
        oldest_kept: (n > 0).then(|| (n - keep as i64 + 1).max(1)),
    }
}

fn check_start(cursors: &BTreeMap<i64, i64>) {
    let conn = db().lock().expect("not poisoned");
    let rooms: Vec<i64> = ROOMS.iter().map(|r| r.0).collect();
    let start = start_state(&conn, 1, cursors, 10_000).expect("the fixture reads");
    assert_eq!(
        start.positions,
        ROOMS.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        "positions are every room's last sequence number"
    );
    for room in rooms {
        let resumed = start.resumed.contains(&room);
        let resync = start.resync.contains(&room);
        let replayed: Vec<i64> = start
            .replay
            .iter()
            .filter(|e| e.room_id == room)
            .map(|e| e.seq)
            .collect();
        let Some(&cursor) = cursors.get(&room) else {
            assert!(!resumed && !resync && replayed.is_empty(), "room {room}: no cursor");
            continue;
        };
        assert!(resumed != resync, "room {room}, cursor {cursor}: resumed xor resync");
        let pos = position(room);
        let all_kept = (0..=pos.last_seq).contains(&cursor)
            && (cursor == pos.last_seq || pos.oldest_kept.is_some_and(|o| o <= cursor + 1));
        assert_eq!(resumed, all_kept, "room {room}, cursor {cursor}, {pos:?}");
        if resumed {
            assert_eq!(
                replayed,
                ((cursor + 1)..=pos.last_seq).collect::<Vec<_>>(),
                "room {room}: exactly the events after cursor {cursor}"
            );
        } else {
            assert!(replayed.is_empty());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    // The gateway receives text frames only (binary ones are refused before parsing).
    let text = String::from_utf8_lossy(rest);
    if sel & 1 == 0 {
        if let Ok(hello) = serde_json::from_str::<Hello>(&text) {
            let _ = hello.token();
            let cursors = hello.cursors();
            check_start(&cursors);
        }
    } else {
        match serde_json::from_str::<ClientFrame>(&text) {
            Ok(ClientFrame::Ping) | Ok(ClientFrame::Typing { .. }) | Err(_) => {}
        }
    }
});
