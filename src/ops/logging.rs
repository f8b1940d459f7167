//! Logging setup: journald's native fields under systemd, readable text or JSON otherwise.
//!
//! What is logged is decided where events are emitted; this module only chooses the sink.
//! Nothing here may print secrets: request logging elsewhere records paths, never query
//! strings (they can carry tokens).

use std::io::IsTerminal;
use std::os::fd::AsRawFd;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// journald when stderr is the journal, otherwise text
    Auto,
    Text,
    Json,
}

/// Installs the global subscriber. `ROOST_LOG` (EnvFilter syntax) overrides the level.
pub fn init(format: LogFormat) {
    let filter = || {
        EnvFilter::try_from_env("ROOST_LOG").unwrap_or_else(|_| EnvFilter::new("info,livekit=info"))
    };
    let journald = format == LogFormat::Auto && stderr_is_journal();
    let registry = tracing_subscriber::registry();
    if journald {
        if let Ok(layer) = tracing_journald::layer() {
            registry
                .with(
                    layer
                        .with_syslog_identifier("roost".into())
                        .with_filter(filter()),
                )
                .init();
            return;
        }
    }
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr)
                    .with_filter(filter()),
            )
            .init(),
        _ => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr)
                    .with_filter(filter()),
            )
            .init(),
    }
}

/// True when systemd connected stderr to the journal: `JOURNAL_STREAM` names the device and
/// inode of our stderr (systemd.exec(5)).
// st_dev/st_ino are narrower than u64 on 32-bit ARM, so the casts are needed there.
#[allow(clippy::unnecessary_cast)]
fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let Ok(st) = nix::sys::stat::fstat(std::io::stderr().as_raw_fd()) else {
        return false;
    };

    dev.parse::<u64>().ok() == Some(st.st_dev as u64)
        && ino.parse::<u64>().ok() == Some(st.st_ino as u64)
}
