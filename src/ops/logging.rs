//! Logging setup: journald's native fields under systemd, readable text or JSON otherwise.
//!
//! What is logged is decided where events are emitted; this module only chooses the sink.
//! Nothing here may print secrets: request logging elsewhere records paths, never query
//! strings (they can carry tokens).

use std::io::IsTerminal;
use std::os::fd::AsRawFd;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// journald when stderr is the journal, otherwise text
    Auto,
    Text,
    Json,
}

/// Installs the global subscriber. `ROOST_LOG` overrides the level: a level (`debug`), or
/// comma-separated `target=level` pairs with an optional default (`info,roost::store=trace`).
/// rustls logs at `error` unless `ROOST_LOG` names it (`debug,rustls=debug`): its warnings are
/// about what one peer sent (an IP address as SNI, which every client connecting to
/// `https://192.168.x.y` does), so any client could fill the journal with them, one line per
/// connection, and an operator can do nothing about them.
pub fn init(format: LogFormat) {
    let targets = filter_from(std::env::var("ROOST_LOG").ok().as_deref());
    let filter = || targets.clone();
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

/// The filter `ROOST_LOG` asks for; `info` when it is unset, or, with a warning on stderr
/// (no subscriber exists yet), when it cannot be parsed. rustls is held at `error` unless the
/// value names it.
fn filter_from(value: Option<&str>) -> Targets {
    let default = Targets::new().with_default(tracing::Level::INFO);
    let targets = match value.map(str::trim) {
        None | Some("") => default,
        Some(value) => value.parse().unwrap_or_else(|e| {
            eprintln!("roost: ignoring ROOST_LOG={value:?} ({e}); logging at info");
            default
        }),
    };
    if targets
        .iter()
        .any(|(target, _)| target.starts_with("rustls"))
    {
        targets
    } else {
        targets.with_target("rustls", tracing::Level::ERROR)
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

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn roost_log_sets_levels_per_target_and_bad_values_fall_back_to_info() {
        let unset = filter_from(None);
        assert!(unset.would_enable("roost::store", &tracing::Level::INFO));
        assert!(!unset.would_enable("roost::store", &tracing::Level::DEBUG));

        let custom = filter_from(Some("warn,roost::store=trace"));
        assert!(custom.would_enable("roost::store::writer", &tracing::Level::TRACE));
        assert!(!custom.would_enable("roost::api", &tracing::Level::INFO));
        assert_eq!(custom.default_level(), Some(LevelFilter::WARN));

        let bad = filter_from(Some("roost=loud"));
        assert!(bad.would_enable("roost", &tracing::Level::INFO));
        assert!(!bad.would_enable("roost", &tracing::Level::DEBUG));
    }

    #[test]
    fn rustls_speaks_only_of_errors_unless_roost_log_names_it() {
        for value in [None, Some("debug"), Some("warn,roost::store=trace")] {
            let targets = filter_from(value);
            let warning = "rustls::msgs::handshake";
            assert!(
                !targets.would_enable(warning, &tracing::Level::WARN),
                "{value:?}"
            );
            assert!(
                targets.would_enable(warning, &tracing::Level::ERROR),
                "{value:?}"
            );
        }
        let asked = filter_from(Some("info,rustls=debug"));
        assert!(asked.would_enable("rustls::conn", &tracing::Level::DEBUG));
    }
}
