//! `roost livekit config` and `roost livekit rotate-keys`: what they print and do.
//!
//! They work on `livekit::{keys, yaml}` directly, beside a running daemon or without one.
//! Neither prints a secret: the config is shown redacted and rotation reports key ids only.
//! Rotation tells a running daemon with SIGHUP (found through its pid file,
//! `daemon::pid_file`), which restarts LiveKit with both pairs.

use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config::Config;
use crate::exit::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};
use crate::livekit::{keys, lan, yaml};

/// Prints the LiveKit config the daemon would write, secrets redacted.
pub fn show_config(config: &Config) -> u8 {
    if !config.livekit.enabled {
        eprintln!("note: livekit.enabled is false; the daemon does not start LiveKit");
    }
    let ring = match keys::load(config, SystemTime::now()) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("note: {e}");
            None
        }
    };
    let text = yaml::render(
        &yaml::Inputs {
            config,
            keys: ring.as_ref(),
            internal_addr: config.internal_addr(),
            interfaces: &lan::interface_addresses(),
        },
        yaml::Secrets::Redact,
    );
    print!("{text}");
    EXIT_OK
}

/// Adds a new key pair, asks the daemon to restart LiveKit with both, and reports when the
/// old pair will be dropped.
pub fn rotate_keys(config: &Config) -> u8 {
    let rotated = match keys::rotate(config, SystemTime::now()) {
        Ok(r) => r,
        Err(e @ keys::KeyError::Configured) => {
            eprintln!("roost livekit rotate-keys: {e}");
            return EXIT_USAGE;
        }
        Err(e) => {
            eprintln!("roost livekit rotate-keys: {e}");
            return EXIT_FAILURE;
        }
    };
    let drop_unix = rotated
        .drop_after
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!("new LiveKit API key: {}", rotated.new_key);
    println!(
        "previous key {} stays valid for {} s (until unix time {drop_unix}), then it is dropped",
        rotated.old_key,
        keys::ROTATION_OVERLAP.as_secs()
    );
    match running_daemon(config) {
        Some(pid) => {
            match kill(pid, Signal::SIGHUP) {
                Ok(()) => println!(
                    "asked the running daemon (pid {pid}) to restart LiveKit with the new key"
                ),
                Err(e) => {
                    eprintln!("could not signal the daemon (pid {pid}): {e}; run `systemctl reload roost`");
                    return EXIT_FAILURE;
                }
            }
        }
        None => println!("no running daemon found; the new key is used from its next start"),
    }
    EXIT_OK
}

/// The pid in the daemon's pid file, if that process is alive.
fn running_daemon(config: &Config) -> Option<Pid> {
    let text = std::fs::read_to_string(crate::daemon::pid_file(config)).ok()?;
    let pid = Pid::from_raw(text.trim().parse().ok()?);
    match kill(pid, None) {
        // EPERM: it exists but belongs to another user; signalling will say so.
        Ok(()) | Err(nix::errno::Errno::EPERM) => Some(pid),
        Err(_) => None,
    }
}
