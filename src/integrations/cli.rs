//! `roost webhook list|add|update|pause|resume|rotate-secret|remove|deliveries`: outgoing
//! webhooks from the command line, on the database directly (like `roost user`; SQLite's WAL
//! serialises this process's writes with the daemon's). The running daemon's worker sees a
//! change within a second. A secret is printed only by `add` and `rotate-secret`.

use std::sync::Arc;

use clap::Subcommand;

use super::address::AddressPolicy;
use super::outgoing::{self, CreateWebhook, UpdateWebhook, WebhookView};
use super::sealing::{seal_clear_secrets, Sealer};
use super::IntegrationError;
use crate::auth::users::Actor;
use crate::config::Config;
use crate::exit::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use crate::http::time::now_ms;
use crate::store::{Store, StoreOptions};

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// List the outgoing webhooks
    List {
        /// One JSON array instead of lines
        #[arg(long)]
        json: bool,
    },
    /// Register a webhook; prints its secret once
    Add {
        /// http:// or https:// URL of the receiver
        url: String,
        /// Event names, comma-separated (message.created, message.updated, message.deleted,
        /// member.joined, member.left, call.started, call.ended, security.alert)
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// Only this room's events
        #[arg(long, value_name = "ID")]
        room: Option<i64>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Change a webhook's URL or events
    Update {
        id: i64,
        #[arg(long)]
        url: Option<String>,
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
    },
    /// Stop sending to a webhook (its events keep being queued)
    Pause { id: i64 },
    /// Send to a paused webhook again, from its oldest queued delivery
    Resume { id: i64 },
    /// Give a webhook a new secret; prints it once
    RotateSecret { id: i64 },
    /// Delete a webhook with its queue and log
    Remove { id: i64 },
    /// A webhook's newest deliveries
    Deliveries {
        id: i64,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// Runs a `roost webhook` subcommand; returns the exit code.
pub fn command(config: &Config, command: WebhookCommand) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roost: cannot start the async runtime: {e}");
            return EXIT_FAILURE;
        }
    };
    runtime.block_on(async {
        let store = match Store::open(&config.db_path(), StoreOptions::new(config.backups_dir())) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("roost: database {}: {e}", config.db_path().display());
                return EXIT_FAILURE;
            }
        };
        let policy = AddressPolicy::from_config(&config.webhooks);
        let code = match run(&store, config, policy, command).await {
            Ok(()) => EXIT_OK,
            Err(e) => {
                eprintln!("roost: {e}");
                match e {
                    IntegrationError::Invalid { .. } => EXIT_USAGE,
                    _ => EXIT_FAILURE,
                }
            }
        };
        if let Err(e) = store.close().await {
            eprintln!("roost: closing the database: {e}");
            return EXIT_FAILURE;
        }
        code
    })
}

fn line(w: &WebhookView) -> String {
    let state = match &w.paused_at {
        Some(at) => format!(
            "paused since {at} ({})",
            w.paused_reason.as_deref().unwrap_or("")
        ),
        None => "active".into(),
    };
    let room = w
        .room_id
        .map_or_else(|| "all rooms".to_owned(), |r| format!("room {r}"));
    format!(
        "{}\t{}\t{}\t{room}\t{state}\t{} pending",
        w.id,
        w.url,
        w.events.join(","),
        w.pending
    )
}

async fn run(
    store: &Store,
    config: &Config,
    policy: AddressPolicy,
    command: WebhookCommand,
) -> Result<(), IntegrationError> {
    let actor = Actor::cli();
    // The key file is made by `roost init` (and the daemon at start); without it no secret can
    // be sealed or opened, so nothing is done.
    let sealer = Arc::new(Sealer::load(config)?);
    // Secrets an older version stored in the clear are sealed before anything else reads them.
    let s = sealer.clone();
    store
        .write(move |conn| seal_clear_secrets(conn, &s))
        .await?;
    match command {
        WebhookCommand::List { json } => {
            let hooks = store.read(outgoing::load_all).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&hooks).expect("views serialize")
                );
            } else {
                for w in &hooks {
                    println!("{}", line(w));
                }
            }
        }
        WebhookCommand::Add {
            url,
            events,
            room,
            description,
        } => {
            let req = CreateWebhook {
                url,
                events,
                room_id: room,
                description,
            };
            let made = store
                .write(move |conn| outgoing::insert(conn, &req, policy, &sealer, &actor, now_ms()))
                .await?;
            println!("{}", line(&made.webhook));
            println!("secret (shown only now): {}", made.secret);
        }
        WebhookCommand::Update { id, url, events } => {
            let req = UpdateWebhook {
                url,
                events,
                ..UpdateWebhook::default()
            };
            let view = store
                .write(move |conn| outgoing::change(conn, id, &req, policy, &actor, now_ms()))
                .await?;
            println!("{}", line(&view));
        }
        WebhookCommand::Pause { id } | WebhookCommand::Resume { id } => {
            let req = UpdateWebhook {
                paused: Some(matches!(command, WebhookCommand::Pause { .. })),
                ..UpdateWebhook::default()
            };
            let view = store
                .write(move |conn| outgoing::change(conn, id, &req, policy, &actor, now_ms()))
                .await?;
            println!("{}", line(&view));
        }
        WebhookCommand::RotateSecret { id } => {
            let made = store
                .write(move |conn| outgoing::rotate_secret(conn, id, &sealer, &actor, now_ms()))
                .await?;
            println!("secret (shown only now): {}", made.secret);
        }
        WebhookCommand::Remove { id } => {
            store
                .write(move |conn| outgoing::remove(conn, id, &actor, now_ms()))
                .await?;
            println!("webhook {id} removed");
        }
        WebhookCommand::Deliveries { id, limit } => {
            let log = store
                .read(move |conn| outgoing::delivery_log(conn, id, limit.clamp(1, 1000)))
                .await?;
            for d in log {
                println!(
                    "{}\t{}\t{}\t{} attempts\t{}\t{}",
                    d.created_at,
                    d.id,
                    d.event,
                    d.attempts,
                    d.state,
                    d.last_status
                        .map(|s| s.to_string())
                        .or(d.last_error)
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}
