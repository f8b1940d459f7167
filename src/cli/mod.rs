//! The command line: parses arguments, loads configuration, and calls into the library.
//!
//! Exit codes are part of the contract: 0 ok, 64 bad usage or configuration (`EX_USAGE`),
//! 1 runtime failure. Commands print for humans on stdout; the daemon logs through tracing.

mod livekit;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, LoadOptions};
use crate::ops::logging::{self, LogFormat};
use crate::ops::provision;
use crate::store::migrations;

use crate::exit::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

#[derive(Debug, Parser)]
#[command(name = "roost", version = crate::VERSION, about = "Private chat and voice/video server for a Raspberry Pi")]
pub struct Cli {
    /// Log output: journald fields under systemd, readable text, or JSON lines
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct ConfigArgs {
    /// Configuration file [default: /etc/roost/roost.toml; none with --dev]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Embedded development profile: data in ./roost-dev/, loopback ports 8443/8080/9090
    #[arg(long, global = true)]
    pub dev: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon
    Serve(ConfigArgs),
    /// Create the data dir, secrets, local CA and server certificate; never overwrites
    Init(ConfigArgs),
    /// Validate the configuration and print every problem (exit 64 if any)
    CheckConfig(ConfigArgs),
    /// Apply pending schema migrations (a snapshot is taken first)
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only report; exit 1 if migrations are pending
        #[arg(long)]
        check: bool,
    },
    /// Print the version
    Version,
    /// Back up the database and attachments while the daemon runs (with SHA256SUMS)
    Backup {
        #[command(flatten)]
        config: ConfigArgs,
        /// Folder to create the backup in [default: [backup] dir, i.e. <data_dir>/backups]
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// Keep this many complete backups in that folder, deleting older ones (0: keep all)
        /// [default: [backup] keep, 7]
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
    },
    /// Verify a backup, then restore it (the daemon must be stopped)
    Restore {
        #[command(flatten)]
        config: ConfigArgs,
        /// The backup folder (roost-<time>) to restore
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Verify and check the backup in a temporary folder; change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Diagnose configuration, certificates, clock, disk, database, LiveKit and ports
    Doctor {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print the checks as JSON
        #[arg(long)]
        json: bool,
    },
    /// Ask the running daemon how it is (over the internal listener)
    Status {
        #[command(flatten)]
        config: ConfigArgs,
        /// Print the daemon's JSON answer as is
        #[arg(long)]
        json: bool,
    },
    /// Manage accounts: add, list, disable, enable, passwd
    User {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: crate::auth::cli::UserCommand,
    },
    /// Create invite codes for new members
    Invite {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: crate::auth::cli::InviteCommand,
    },
    /// LiveKit: print its generated config (secrets redacted) or rotate its API keys
    Livekit {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: LivekitCommand,
    },
    /// Message search: rebuild the full-text index from the messages
    Search {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: SearchCommand,
    },
    /// Manage outgoing webhooks (works beside a running daemon)
    Webhook {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: crate::integrations::cli::WebhookCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// Rebuild the search index (safe while the daemon runs)
    Rebuild,
}

#[derive(Debug, Subcommand)]
pub enum LivekitCommand {
    /// Print the LiveKit config the daemon generates, with secrets redacted
    Config,
    /// Add a new API key pair, restart LiveKit with both, drop the old one after 5 minutes
    RotateKeys,
}

/// Parses the process arguments and runs the command; returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(run(cli))
}

fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Version => {
            println!("roost {} ({})", crate::VERSION, std::env::consts::ARCH);
            EXIT_OK
        }
        Command::CheckConfig(args) => check_config(&args),
        Command::Init(args) => with_config(&args, |c| init(&c)),
        Command::Migrate {
            config: args,
            check,
        } => with_config(&args, |c| migrate(&c, check)),
        Command::Livekit {
            config: args,
            command,
        } => with_config(&args, |c| match command {
            LivekitCommand::Config => livekit::show_config(&c),
            LivekitCommand::RotateKeys => livekit::rotate_keys(&c),
        }),
        Command::Serve(args) => {
            logging::init(cli.log_format);
            with_config(&args, serve)
        }
        Command::Backup {
            config: args,
            output,
            keep,
        } => with_config(&args, |c| crate::ops::backup::command(&c, output, keep)),
        Command::Restore {
            config: args,
            dir,
            dry_run,
        } => with_config(&args, |c| crate::ops::restore::command(&c, &dir, dry_run)),
        Command::Doctor { config: args, json } => crate::ops::doctor::command(load(&args), json),
        Command::Status { config: args, json } => {
            with_config(&args, |c| crate::ops::status::command(&c, json))
        }
        Command::User { config, command } => {
            with_config(&config, |c| crate::auth::cli::user(&c, command))
        }
        Command::Invite { config, command } => {
            with_config(&config, |c| crate::auth::cli::invite(&c, command))
        }
        Command::Webhook { config, command } => {
            with_config(&config, |c| crate::integrations::cli::command(&c, command))
        }
        Command::Search { config, command } => with_config(&config, |c| match command {
            SearchCommand::Rebuild => crate::chat::search::rebuild_command(&c),
        }),
    }
}

fn load(args: &ConfigArgs) -> Result<Config, config::Problems> {
    config::load(&LoadOptions {
        path: args.config.clone(),
        dev: args.dev,
    })
}

fn with_config(args: &ConfigArgs, f: impl FnOnce(Config) -> u8) -> u8 {
    // Files the daemon creates (database, journals) are not for other users.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o027));
    match load(args) {
        Ok(c) => f(c),
        Err(problems) => {
            eprint!("roost: {problems}");
            EXIT_USAGE
        }
    }
}

fn check_config(args: &ConfigArgs) -> u8 {
    match load(args) {
        Ok(c) => {
            match &c.source {
                Some(p) => println!("configuration OK: {}", p.display()),
                None if args.dev => println!("configuration OK: embedded development defaults"),
                None => println!(
                    "configuration OK: no file at {}, using embedded defaults",
                    config::DEFAULT_CONFIG_PATH
                ),
            }
            EXIT_OK
        }
        Err(problems) => {
            print!("{problems}");
            EXIT_USAGE
        }
    }
}

fn init(config: &Config) -> u8 {
    let provisioned = match provision::provision(config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("roost init: {e}");
            return EXIT_FAILURE;
        }
    };
    for path in &provisioned.created {
        println!("created {}", path.display());
    }
    match migrations::apply(&config.db_path(), &config.backups_dir()) {
        Ok(report) if report.from != report.to => {
            println!(
                "database {} at schema version {}",
                config.db_path().display(),
                report.to
            )
        }
        Ok(report) => println!(
            "database {} already at schema version {}",
            config.db_path().display(),
            report.to
        ),
        Err(e) => {
            eprintln!("roost init: database {}: {e}", config.db_path().display());
            return EXIT_FAILURE;
        }
    }
    match &provisioned.ca {
        Some(ca) => {
            println!("local CA: {:?}, server certificate: {:?}", ca.ca, ca.server);
            println!("CA fingerprint (SHA-256): {}", ca.ca_fingerprint_sha256);
            println!(
                "devices trust this server after importing {}",
                config.tls_dir().join("ca.crt").display()
            );
        }
        None => println!(
            "TLS: using the operator's certificate {}",
            config.tls.cert_file
        ),
    }
    println!("data directory {} is ready", config.data_dir().display());
    EXIT_OK
}

fn migrate(config: &Config, check: bool) -> u8 {
    let db = config.db_path();
    if check {
        return match migrations::status(&db) {
            Ok(s) if s.pending.is_empty() => {
                println!("schema version {} is current", s.current);
                EXIT_OK
            }
            Ok(s) => {
                println!(
                    "schema version {}; {} migration(s) pending:",
                    s.current,
                    s.pending.len()
                );
                for (v, name) in &s.pending {
                    println!("  {v:04} {name}");
                }
                EXIT_FAILURE
            }
            Err(e) => {
                eprintln!("roost migrate: {}: {e}", db.display());
                EXIT_FAILURE
            }
        };
    }
    if let Err(e) = std::fs::create_dir_all(config.data_dir()) {
        eprintln!(
            "roost migrate: cannot create {}: {e}",
            config.data_dir().display()
        );
        return EXIT_FAILURE;
    }
    match migrations::apply(&db, &config.backups_dir()) {
        Ok(r) => {
            if let Some(snap) = &r.snapshot {
                println!("snapshot written to {}", snap.display());
            }
            if r.from == r.to {
                println!("schema version {} is current; nothing to do", r.to);
            } else {
                println!(
                    "migrated {} from schema version {} to {}",
                    db.display(),
                    r.from,
                    r.to
                );
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("roost migrate: {}: {e}", db.display());
            EXIT_FAILURE
        }
    }
}

/// Threads for blocking work (database reads, password hashes, file I/O), instead of tokio's
/// 512. Every user holds one only while its work runs, never while waiting for a client (an
/// upload writes each batch in its own step), so more would only mean more stacks when a
/// burst of work queues; past the cap, work waits its turn in order.
const MAX_BLOCKING_THREADS: usize = 64;

fn serve(config: Config) -> u8 {
    // Before any thread exists: each thread that allocates before the arena limit is set may
    // get an arena of its own (a soak run found three with the limit at two).
    crate::ops::memory::configure();
    // Before the first connection (SQLite takes it only then): the writer and the readers.
    match crate::store::page_region::reserve(config.storage.read_connections + 1) {
        Ok(region) => tracing::debug!(
            bytes = region.bytes(),
            "reserved SQLite's page-cache region"
        ),
        Err(e) => tracing::warn!(error = %e, "SQLite's pages come from the heap"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("roost")
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roost: cannot start the async runtime: {e}");
            return EXIT_FAILURE;
        }
    };
    if config.profile() == config::Profile::Dev {
        print_dev_banner(&config);
    }
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        crate::daemon::run(config, shutdown).await
    });
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "roost failed");
            eprintln!("roost: {e:#}");
            EXIT_FAILURE
        }
    }
}

/// SIGTERM (systemd stop) or SIGINT (Ctrl-C) starts the graceful shutdown.
async fn cancel_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "shutdown requested");
    shutdown.cancel();
}

fn print_dev_banner(config: &Config) {
    let https = config.https_addr();
    let ca = config.tls_dir().join("ca.crt");
    eprintln!("roost --dev: data in {}", config.data_dir().display());
    eprintln!(
        "  open   https://localhost:{}/health   (trust {} or use curl --cacert)",
        https.port(),
        ca.display()
    );
    eprintln!(
        "  try    curl --cacert {} https://localhost:{}/ready",
        ca.display(),
        https.port()
    );
    eprintln!("  metrics http://{}/metrics", config.internal_addr());
}
