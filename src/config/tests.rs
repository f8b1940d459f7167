use std::collections::HashMap;
use std::io::Write;

use super::*;

fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, Problems> {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_with_env(
        &LoadOptions {
            path: Some(f.path().to_path_buf()),
            dev: false,
        },
        &|k| env.get(k).cloned(),
    )
}

fn problems(text: &str, env: &[(&str, &str)]) -> Vec<Problem> {
    load_text(text, env).expect_err("expected problems").0
}

#[test]
fn empty_file_gives_defaults() {
    let c = load_text("", &[]).unwrap();
    assert_eq!(c.server.https_addr, "[::]:443");
    assert_eq!(c.server.max_connections, 4096);
    assert_eq!(c.limits.max_body_bytes, 1024 * 1024);
    assert_eq!(c.profile(), Profile::Production);
}

#[test]
fn dev_profile_needs_no_file_and_stays_on_loopback() {
    let c = load_with_env(
        &LoadOptions {
            path: None,
            dev: true,
        },
        &|_| None,
    )
    .unwrap();
    assert_eq!(c.https_addr().to_string(), "127.0.0.1:8443");
    assert_eq!(c.http_addr().unwrap().to_string(), "127.0.0.1:8080");
    assert_eq!(c.internal_addr().to_string(), "127.0.0.1:9090");
    assert_eq!(c.data_dir(), Path::new("roost-dev"));
    assert_eq!(c.profile(), Profile::Dev);
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = problems(
        "[server]\nhttps_adr = \"x\"\nmax_connections = \"many\"\ninternal_addr = \"0.0.0.0:9090\"\n[tls]\ncert_file = \"/nonexistent.pem\"\n[bogus]\n",
        &[],
    );
    let locations: Vec<&str> = p.iter().map(|p| p.location.as_str()).collect();
    assert!(locations.contains(&"server.https_adr"), "{p:?}");
    assert!(locations.contains(&"server.max_connections"), "{p:?}");
    assert!(locations.contains(&"server.internal_addr"), "{p:?}");
    assert!(
        locations.contains(&"tls.key_file"),
        "a cert without a key: {p:?}"
    );
    assert!(locations.contains(&"bogus"), "{p:?}");
    let typo = p.iter().find(|p| p.location == "server.https_adr").unwrap();
    assert!(
        typo.hint.as_deref().unwrap().contains("https_addr"),
        "{typo:?}"
    );
}

#[test]
fn syntax_errors_name_the_file() {
    let p = problems("[server\n", &[]);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].location.ends_with(|c: char| c.is_alphanumeric()),
        "{p:?}"
    );
}

#[test]
fn env_overrides_file_and_is_typed() {
    let c = load_text(
        "[server]\nmax_connections = 10\n",
        &[
            ("ROOST_SERVER_MAX_CONNECTIONS", "20"),
            ("ROOST_SERVER_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ],
    )
    .unwrap();
    assert_eq!(c.server.max_connections, 20);
    assert_eq!(c.server.trusted_proxies, vec!["10.0.0.0/8", "::1"]);

    let p = problems("", &[("ROOST_SERVER_MAX_CONNECTIONS", "lots")]);
    assert_eq!(
        p[0].location,
        "ROOST_SERVER_MAX_CONNECTIONS (server.max_connections)"
    );
}

#[test]
fn weak_secrets_fail_in_production_only() {
    for weak in [
        "s3cr3t",
        "change-me-please-change-me-please-0000",
        "an-example-secret-that-is-long-enough-ok",
    ] {
        let p = problems(&format!("[auth]\njwt_secret = \"{weak}\"\n"), &[]);
        assert_eq!(p[0].location, "auth.jwt_secret", "{weak}: {p:?}");
        assert!(
            !p[0].to_string().contains(weak),
            "a problem must not echo the secret: {}",
            p[0]
        );
    }
    let dev = load_with_env(
        &LoadOptions {
            path: None,
            dev: true,
        },
        &|k| (k == "ROOST_AUTH_JWT_SECRET").then(|| "short".to_string()),
    )
    .unwrap();
    assert_eq!(dev.auth.jwt_secret.expose(), "short");
}

#[test]
fn secrets_come_from_files_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let strong = "k".repeat(40);
    std::fs::write(dir.path().join("jwt"), format!("{strong}\n")).unwrap();
    let c = load_text(
        &format!(
            "[auth]\njwt_secret_file = \"{}\"\n",
            dir.path().join("jwt").display()
        ),
        &[],
    )
    .unwrap();
    assert_eq!(c.auth.jwt_secret.expose(), strong);

    std::fs::write(dir.path().join("auth_jwt_secret"), &strong).unwrap();
    let c = load_text(
        "",
        &[("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap())],
    )
    .unwrap();
    assert_eq!(c.auth.jwt_secret.expose(), strong);
    assert_eq!(format!("{:?}", c.auth.jwt_secret), "Secret(<redacted>)");

    let p = problems("[auth]\njwt_secret_file = \"/nonexistent/secret\"\n", &[]);
    assert_eq!(p[0].location, "auth.jwt_secret_file");
    let p = problems(
        &format!("[auth]\njwt_secret = \"{strong}\"\njwt_secret_file = \"/x\"\n"),
        &[],
    );
    assert!(p[0].message.contains("both"), "{p:?}");
}

#[test]
fn a_secret_file_that_never_ends_is_a_problem_not_a_hang() {
    // Found while writing the config_load fuzz target: /dev/zero was read until memory ran
    // out and a FIFO blocked startup forever.
    let p = problems("[auth]\njwt_secret_file = \"/dev/zero\"\n", &[]);
    assert_eq!(p[0].location, "auth.jwt_secret_file");
    assert!(p[0].message.contains("not a regular file"), "{p:?}");

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("secret.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let p = problems(
        &format!("[auth]\njwt_secret_file = \"{}\"\n", fifo.display()),
        &[],
    );
    assert!(p[0].message.contains("not a regular file"), "{p:?}");

    let big = dir.path().join("big");
    std::fs::write(&big, "k".repeat(100_000)).unwrap();
    let p = problems(
        &format!(
            "[livekit]\napi_key = \"k\"\napi_secret_file = \"{}\"\n",
            big.display()
        ),
        &[],
    );
    let p = p
        .iter()
        .find(|p| p.location == "livekit.api_secret_file")
        .unwrap();
    assert!(p.message.contains("larger than 65536 bytes"), "{p:?}");
}

#[test]
fn addresses_cidrs_hosts_and_urls_are_checked() {
    let p = problems(
        "[server]\nhttps_addr = \"443\"\nhttp_addr = \"[::]:443\"\ntrusted_proxies = [\"10.0.0.0/33\"]\nallowed_hosts = [\"*\"]\npublic_url = \"http://x\"\nhostname = \"bad host\"\n[storage]\ndata_dir = \"relative\"\n",
        &[],
    );
    let locations: Vec<&str> = p.iter().map(|p| p.location.as_str()).collect();
    for key in [
        "server.https_addr",
        "server.trusted_proxies[0]",
        "server.allowed_hosts[0]",
        "server.public_url",
        "server.hostname",
        "storage.data_dir",
    ] {
        assert!(locations.contains(&key), "missing {key} in {p:?}");
    }
}

#[test]
fn listener_ports_must_not_collide() {
    let p = problems(
        "[server]\nhttps_addr = \"0.0.0.0:8443\"\nhttp_addr = \"127.0.0.1:8443\"\n",
        &[],
    );
    assert_eq!(p[0].location, "server.http_addr", "{p:?}");
}

#[test]
fn explicit_missing_file_is_a_problem() {
    let r = load_with_env(
        &LoadOptions {
            path: Some("/nonexistent/roost.toml".into()),
            dev: false,
        },
        &|_| None,
    );
    assert!(r.unwrap_err().0[0].message.contains("cannot read"));
}

#[test]
fn shipped_config_parses_to_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/roost.toml");
    let c = load_with_env(
        &LoadOptions {
            path: Some(path),
            dev: false,
        },
        &|_| None,
    )
    .unwrap();
    let d = Config::default();
    assert_eq!(toml::to_string(&c).unwrap(), toml::to_string(&d).unwrap());
}

/// Found while setting up `scripts/robustness/abuse.py`'s websocket attacks with
/// `limits.idle_timeout_secs = 15`: the edge's idle deadline cut every quiet gateway connection
/// at 15 s, before the first server ping (20 s), without a close frame.
#[test]
fn gateway_pings_must_come_within_the_edge_idle_deadline() {
    let quick = "[livekit]\nenabled = false\n[limits]\nidle_timeout_secs = 15\n";
    let p = problems(quick, &[]);
    assert!(
        p.iter().any(|p| p.location == "gateway.ping_interval_secs"),
        "{p:?}"
    );
    let c = load_text(&format!("{quick}[gateway]\nping_interval_secs = 10\n"), &[]).unwrap();
    assert_eq!(c.gateway.ping_interval_secs, 10);
}

#[test]
fn gateway_frame_budget_and_key_slots_are_checked() {
    let quick = "[livekit]\nenabled = false\n";
    let p = problems(
        &format!(
            "{quick}[gateway]\nclient_frames_burst = 0\nclient_frames_per_sec = 0\nmax_api_key_connections_per_user = 0\n"
        ),
        &[],
    );
    for key in [
        "gateway.client_frames_burst",
        "gateway.client_frames_per_sec",
        "gateway.max_api_key_connections_per_user",
    ] {
        assert!(p.iter().any(|p| p.location == key), "{key}: {p:?}");
    }
    let c = load_text(
        &format!(
            "{quick}[gateway]\nclient_frames_burst = 100\nmax_api_key_connections_per_user = 1\n"
        ),
        &[],
    )
    .unwrap();
    assert_eq!(
        (
            c.gateway.client_frames_burst,
            c.gateway.max_api_key_connections_per_user
        ),
        (100, 1)
    );
}
