//! `roost user add|list|disable|enable|passwd` and `roost invite create`: account management
//! from the command line, working on the database directly.
//!
//! These open the store themselves (`store::Store::open`), which is safe while the daemon runs:
//! SQLite in WAL mode serialises the two writers, and the daemon checks sessions and users in
//! the database on every request, so a disable or password change made here takes effect in the
//! running daemon at once. Passwords come from stdin when it is piped, or are generated and
//! printed once. Nothing here prints a password it did not generate.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::password::{HashParams, Hasher};
use super::users::{self, Actor, NewUser, Role, UserPatch};
use super::{crypto, invites, setup, username, AuthError};
use crate::audit;
use crate::config::Config;
use crate::exit::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use crate::store::{Store, StoreOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Admin,
    Member,
    Guest,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Member => Role::Member,
            RoleArg::Guest => Role::Guest,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (password: one line on stdin, else generated and printed once)
    ///
    /// The password is the one line piped on standard input, without its line ending (LF or
    /// CRLF). Input with more than one non-empty line is refused. With nothing piped, a
    /// password is generated and printed once.
    Add {
        name: String,
        #[arg(long, value_enum, default_value = "member")]
        role: RoleArg,
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
    },
    /// List accounts
    List {
        /// One JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Disable an account and sign out all its sessions
    Disable { name: String },
    /// Enable a disabled account again
    Enable { name: String },
    /// Set a new password (one line on stdin, else generated) and sign out all sessions
    ///
    /// The password is the one line piped on standard input, without its line ending (LF or
    /// CRLF). Input with more than one non-empty line is refused. With nothing piped, a
    /// password is generated and printed once.
    Passwd { name: String },
}

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Create an invite code for new members
    Create {
        /// How many accounts the code may create
        #[arg(long, default_value_t = 1)]
        uses: i64,
        /// Validity: a number with s, m, h or d (e.g. 30m, 12h, 7d); at most 90d
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        expires: Duration,
    },
}

/// `7d`, `12h`, `30m`, `45s` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 7d, 12h or 30m"))?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: use a unit of s, m, h or d")),
    };
    n.checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Runs a `roost user` subcommand; returns the exit code.
pub fn user(config: &Config, command: UserCommand) -> u8 {
    with_store(config, |store| async move {
        match command {
            UserCommand::Add {
                name,
                role,
                display_name,
            } => add(config, &store, &name, role.into(), display_name.as_deref()).await,
            UserCommand::List { json } => list(&store, json).await,
            UserCommand::Disable { name } => set_disabled(&store, &name, true).await,
            UserCommand::Enable { name } => set_disabled(&store, &name, false).await,
            UserCommand::Passwd { name } => passwd(config, &store, &name).await,
        }
    })
}

/// Runs a `roost invite` subcommand; returns the exit code.
pub fn invite(config: &Config, command: InviteCommand) -> u8 {
    with_store(config, |store| async move {
        let InviteCommand::Create { uses, expires } = command;
        let expires_in = i64::try_from(expires.as_secs()).unwrap_or(i64::MAX);
        let now_ms = now_ms();
        let invite = store
            .write(move |conn| invites::issue(conn, uses, expires_in, &Actor::cli(), now_ms))
            .await?;
        println!("{}", invite.code);
        eprintln!(
            "invite {} for {} account(s), valid until {}; register with POST /api/v1/auth/register",
            invite.view.id, invite.view.max_uses, invite.view.expires_at
        );
        Ok(EXIT_OK)
    })
}

fn with_store<F, Fut>(config: &Config, f: F) -> u8
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = Result<u8, AuthError>>,
{
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
        if let Err(e) = std::fs::create_dir_all(config.data_dir()) {
            eprintln!("roost: cannot create {}: {e}", config.data_dir().display());
            return EXIT_FAILURE;
        }
        let store = match Store::open(&config.db_path(), StoreOptions::new(config.backups_dir())) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("roost: database {}: {e}", config.db_path().display());
                return EXIT_FAILURE;
            }
        };
        let code = match f(store.clone()).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("roost: {e}");
                match e {
                    AuthError::Invalid { .. } => EXIT_USAGE,
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

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The password from piped stdin, or `None` to generate one.
fn password_from_stdin() -> Result<Option<String>, AuthError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut text = String::new();
    // Bounded: a password longer than this is refused by the length rule anyway.
    stdin
        .lock()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| {
            AuthError::invalid("stdin", format!("reading the password from stdin: {e}"))
        })?;
    password_line(&text)
}

/// The password in piped input: its one non-empty line, without the line ending (LF or
/// CRLF); `None` when every line is empty. Two non-empty lines are refused rather than
/// joined: `printf 'pw\npw\n'` (a password typed twice) would otherwise set a password with
/// a newline in it, which no sign-in form can type.
fn password_line(text: &str) -> Result<Option<String>, AuthError> {
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .filter(|line| !line.is_empty());
    let first = lines.next();
    if lines.next().is_some() {
        return Err(AuthError::invalid(
            "stdin",
            "standard input has more than one line; pipe the password once, on one line \
             (e.g. `echo 'a long password' | roost user add NAME`)",
        ));
    }
    Ok(first.map(str::to_owned))
}

/// The password to set, and whether it was generated (and must be printed).
fn new_password(config: &Config) -> Result<(String, bool), AuthError> {
    match password_from_stdin()? {
        Some(p) => {
            username::check_new_password(
                &p,
                config.auth.min_password_length,
                config.auth.max_password_length,
            )?;
            Ok((p, false))
        }
        // 6 groups of 4 from a 31-letter alphabet: about 118 bits.
        None => Ok((crypto::human_code(6), true)),
    }
}

async fn hasher(config: &Config) -> Result<Hasher, AuthError> {
    Ok(Hasher::with_permits(HashParams::from_config(config), 1).await?)
}

async fn add(
    config: &Config,
    store: &Store,
    name: &str,
    role: Role,
    display_name: Option<&str>,
) -> Result<u8, AuthError> {
    let name = username::normalize_username(name)?;
    let display_name = username::display_name(display_name, &name)?;
    let (password, generated) = new_password(config)?;
    let password_hash = hasher(config).await?.hash(password.clone()).await?;
    let new = NewUser {
        username: name,
        display_name,
        role,
        password_hash,
    };
    let now_ms = now_ms();
    let user = store
        .write(move |conn| {
            let user = users::insert(conn, &new, now_ms / 1000)?;
            audit::record(
                conn,
                &Actor::cli()
                    .event("user.created", now_ms)
                    .target(format!("user:{}", user.id))
                    .detail(json!({ "username": user.username, "role": user.role, "via": "cli" })),
            )?;
            if user.role == Role::Admin {
                // An admin exists now: a pending setup code has no further use.
                conn.execute("DELETE FROM settings WHERE key = ?1", [setup::SETTINGS_KEY])?;
            }
            Ok::<_, AuthError>(user)
        })
        .await?;
    if user.role == Role::Admin {
        // The code's hash is gone, so the code is useless; its file goes too (the running
        // daemon would also remove it at its next `/status`).
        if let Err(e) = setup::remove_code_file(&setup::code_file(config)) {
            eprintln!("roost: cannot remove the used setup code file: {e}");
        }
    }
    println!(
        "created {} {} (id {})",
        user.role.as_str(),
        user.username,
        user.id
    );
    if generated {
        println!("password (shown only now): {password}");
    }
    Ok(EXIT_OK)
}

async fn list(store: &Store, as_json: bool) -> Result<u8, AuthError> {
    let all = store.read(users::all).await?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&all).expect("users serialize to JSON")
        );
        return Ok(EXIT_OK);
    }
    println!(
        "{:>5}  {:<32}  {:<6}  {:<8}  {:<20}  display name",
        "id", "username", "role", "status", "created"
    );
    for u in all {
        println!(
            "{:>5}  {:<32}  {:<6}  {:<8}  {:<20}  {}",
            u.id,
            u.username,
            u.role.as_str(),
            if u.disabled { "disabled" } else { "active" },
            u.created_at,
            u.display_name
        );
    }
    Ok(EXIT_OK)
}

async fn find(store: &Store, name: &str) -> Result<users::User, AuthError> {
    let name = username::normalize_username(name)?;
    let shown = name.clone();
    store
        .read(move |conn| users::by_username(conn, &name))
        .await?
        .ok_or_else(|| AuthError::conflict("no_such_user", format!("no account named {shown}")))
}

async fn set_disabled(store: &Store, name: &str, disabled: bool) -> Result<u8, AuthError> {
    let user = find(store, name).await?;
    let now_ms = now_ms();
    let patch = UserPatch {
        disabled: Some(disabled),
        ..UserPatch::default()
    };
    let id = user.id;
    store
        .write(move |conn| users::update(conn, id, &patch, &Actor::cli(), now_ms))
        .await?;
    if disabled {
        println!(
            "disabled {}; all its sessions are signed out",
            user.username
        );
    } else {
        println!("enabled {}", user.username);
    }
    Ok(EXIT_OK)
}

async fn passwd(config: &Config, store: &Store, name: &str) -> Result<u8, AuthError> {
    let user = find(store, name).await?;
    let (password, generated) = new_password(config)?;
    let hash = hasher(config).await?.hash(password.clone()).await?;
    let (id, now_ms) = (user.id, now_ms());
    store
        .write(move |conn| users::set_password(conn, id, &hash, &Actor::cli(), now_ms))
        .await?;
    println!(
        "password of {} changed; all its sessions are signed out",
        user.username
    );
    if generated {
        println!("password (shown only now): {password}");
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("7w").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn a_piped_password_is_its_one_line() {
        let line = |t: &str| password_line(t).map_err(|e| e.to_string());
        assert_eq!(line("pw one\n"), Ok(Some("pw one".into())));
        assert_eq!(line("pw one\r\n"), Ok(Some("pw one".into())));
        assert_eq!(line("pw one"), Ok(Some("pw one".into())));
        assert_eq!(line("\npw one\n\n"), Ok(Some("pw one".into())));
        assert_eq!(line(""), Ok(None));
        assert_eq!(line("\r\n\n"), Ok(None));
        let twice = line("pw\npw\n").unwrap_err();
        assert!(twice.contains("more than one line"), "{twice}");
    }
}
