//! systemd's notify protocol (`Type=notify`): READY, STATUS, STOPPING and the watchdog.
//!
//! A thin wrapper over the pure-Rust `sd-notify` crate. Outside systemd (no `NOTIFY_SOCKET`)
//! every call is a no-op. Failures are logged once at debug level: losing a status line must
//! never take the daemon down.

use std::time::Duration;

use sd_notify::NotifyState;

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// The interval at which to pet the watchdog: half of `WATCHDOG_USEC`, if systemd set one
/// for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0;
    if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
        Some(Duration::from_micros(usec) / 2)
    } else {
        None
    }
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}
