//! Mints one call token through Roost's own code path (configuration, key files,
//! `Permissions::for_role`, `tokens::mint`) and prints it as JSON, for
//! `scripts/livekit-compat.sh` to check with LiveKit's official SDK. Test tooling: not a user
//! command and never packaged.
//!
//! Usage: livekit_mint --config PATH --identity ID --room ROOM [--role moderator|member|guest]

use std::time::{Duration, SystemTime};

use roost::config::{self, LoadOptions};
use roost::livekit::keys;
use roost::livekit::tokens::{self, CallGrant, CallRole, Permissions, RoomCallPolicy};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let (Some(path), Some(identity), Some(room)) =
        (arg("--config"), arg("--identity"), arg("--room"))
    else {
        eprintln!("usage: livekit_mint --config PATH --identity ID --room ROOM [--role R]");
        std::process::exit(64);
    };
    let role = match arg("--role").as_deref().unwrap_or("member") {
        "moderator" => CallRole::Moderator,
        "member" => CallRole::Member,
        "guest" => CallRole::Guest,
        other => {
            eprintln!("unknown role {other}");
            std::process::exit(64);
        }
    };
    let config = config::load(&LoadOptions {
        path: Some(path.into()),
        dev: false,
    })
    .unwrap_or_else(|p| {
        eprint!("{p}");
        std::process::exit(64)
    });
    let ring = keys::load(&config, SystemTime::now()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let permissions = Permissions::for_role(role, RoomCallPolicy::default());
    let ttl = tokens::effective_ttl(
        // Ask for a day: the cap must bring it down to five minutes.
        Some(Duration::from_secs(86_400)),
        Duration::from_secs(config.livekit.token_ttl_secs),
    );
    let minted = tokens::mint(
        &ring.current,
        &CallGrant {
            identity: &identity,
            name: "Compat Check",
            metadata: Some("{\"from\":\"roost\"}"),
            room: &room,
            permissions: &permissions,
        },
        ttl,
        SystemTime::now(),
    )
    .unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    println!(
        "{}",
        serde_json::json!({
            "token": minted.token,
            "expires_at": minted.expires_at_unix(),
            "ttl_secs": minted.ttl.as_secs(),
            "permissions": permissions,
        })
    );
}
