//! The command line as an operator uses it: config errors, init, migrate, version.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::support::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn check_config_accepts_a_good_file() {
    let s = Setup::new();
    s.write_config("");
    let out = s.run(&["check-config"]);
    assert_exit_0(&out);
    assert!(
        stdout(&out).contains("configuration OK"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_config_prints_every_problem_and_exits_64() {
    let s = Setup::new()
        .toml("[tls]\ncert_file = \"/nonexistent/cert.pem\"\n[limits]\nmax_body_bytes = 1\n");
    s.write_config("trusted_proxies = [\"not-a-cidr\"]\nmax_conections = 5");
    let out = s.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(64));
    let text = stdout(&out);
    for needle in [
        "server.trusted_proxies[0]",
        "server.max_conections",
        "did you mean `max_connections`",
        "tls.cert_file",
        "limits.max_body_bytes",
        "fix:",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn serve_refuses_bad_config_with_64_before_binding() {
    let s = Setup::new();
    // The HTTPS port is taken by this test: if serve bound sockets before validating, it would
    // fail with "cannot listen" (exit 1) instead of reporting the config problem.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std::fs::write(
        s.config_path(),
        format!(
            "[server]\nhttps_addr = \"{}\"\ninternal_addr = \"10.0.0.1:9090\"\n",
            taken.local_addr().unwrap()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(s.config_path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("server.internal_addr"),
        "{}",
        stderr(&out)
    );
    assert!(
        !s.data_dir().exists(),
        "nothing may be created for an invalid config"
    );
}

#[test]
fn environment_overrides_are_validated_too() {
    let s = Setup::new().env("ROOST_SERVER_SHUTDOWN_GRACE_SECS", "soon");
    s.write_config("");
    let out = s.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stdout(&out).contains("ROOST_SERVER_SHUTDOWN_GRACE_SECS"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn weak_secrets_are_refused_without_being_echoed() {
    let s = Setup::new().toml("[auth]\njwt_secret = \"change-me-change-me-change-me-change-me\"\n");
    s.write_config("");
    let out = s.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(64));
    let text = stdout(&out);
    assert!(
        text.contains("auth.jwt_secret") && text.contains("placeholder"),
        "{text}"
    );
    assert!(
        !text.contains("change-me-change-me"),
        "the secret itself must not be printed: {text}"
    );
}

#[test]
fn missing_explicit_config_file_is_a_usage_error() {
    let out = Command::new(BIN)
        .args(["check-config", "--config", "/nonexistent/roost.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn bad_arguments_exit_64_and_help_exits_0() {
    let out = Command::new(BIN).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    for cmd in ["serve", "init", "check-config", "migrate", "version"] {
        assert!(stdout(&out).contains(cmd), "{cmd} missing from --help");
    }
}

#[test]
fn version_prints_the_package_version() {
    let out = Command::new(BIN).arg("version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with(&format!("roost {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn init_creates_keys_privately_and_never_overwrites() {
    let s = Setup::new();
    s.write_config("");
    let out = s.run(&["init"]);
    assert_exit_0(&out);
    assert!(
        stdout(&out).contains("CA fingerprint (SHA-256):"),
        "{}",
        stdout(&out)
    );
    let data = s.data_dir();
    let files = [
        "tls/ca.key",
        "tls/ca.crt",
        "tls/server.key",
        "tls/server.crt",
        "secrets/jwt_signing.key",
        "roost.sqlite3",
    ];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(data.join(f)).unwrap())
        .collect();
    for key in [
        "tls/ca.key",
        "tls/server.key",
        "secrets/jwt_signing.key",
        "secrets/livekit_api_key",
        "secrets/livekit_api_secret",
        "secrets/webhook_secrets.key",
    ] {
        assert_eq!(mode(&data.join(key)), 0o600, "{key}");
    }
    assert_eq!(mode(&data.join("secrets")), 0o700);
    // Every secret went through a temporary file; none is left beside them.
    for (dir, expected) in [
        (
            "secrets",
            &[
                "jwt_signing.key",
                "livekit_api_key",
                "livekit_api_secret",
                "webhook_secrets.key",
            ][..],
        ),
        ("tls", &["ca.crt", "ca.key", "server.crt", "server.key"][..]),
    ] {
        let mut names: Vec<String> = std::fs::read_dir(data.join(dir))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, expected, "{dir}");
    }

    let again = s.run(&["init"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        !stdout(&again).contains("created"),
        "second init created something:\n{}",
        stdout(&again)
    );
    let after: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(data.join(f)).unwrap())
        .collect();
    for (i, f) in files.iter().enumerate().take(5) {
        assert_eq!(before[i], after[i], "{f} changed on the second init");
    }
}

#[test]
fn migrate_check_reports_pending_then_current() {
    let s = Setup::new();
    s.write_config("");
    let out = s.run(&["migrate", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("pending"), "{}", stdout(&out));
    assert!(
        !s.data_dir().join("roost.sqlite3").exists(),
        "--check must not create the database"
    );

    let out = s.run(&["migrate"]);
    assert_exit_0(&out);
    let out = s.run(&["migrate", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("current"));
}

#[test]
fn user_help_says_the_password_is_one_line_of_stdin() {
    for sub in ["add", "passwd"] {
        let out = Command::new(BIN)
            .args(["user", sub, "--help"])
            .output()
            .unwrap();
        assert_exit_0(&out);
        let help = stdout(&out)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            help.contains("one line piped on standard input")
                && help.contains("more than one non-empty line is refused"),
            "{sub}: {help}"
        );
    }
}
