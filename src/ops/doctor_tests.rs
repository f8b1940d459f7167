use std::os::unix::fs::PermissionsExt;

use time::macros::datetime;

use super::*;

const NOW: OffsetDateTime = datetime!(2026-11-22 12:00:00 UTC);

#[test]
fn a_clock_in_the_past_fails_and_an_unsynchronised_one_warns() {
    assert_eq!(
        check_clock(datetime!(1970-01-01 00:00:10 UTC), Some(true)).status,
        Level::Fail
    );
    assert_eq!(check_clock(NOW, Some(true)).status, Level::Ok);
    let c = check_clock(NOW, Some(false));
    assert_eq!(c.status, Level::Warn);
    assert!(c.fix.unwrap().contains("timedatectl set-ntp true"));
    assert_eq!(check_clock(NOW, None).status, Level::Warn);
}

#[test]
fn disk_fails_below_the_minimum_and_warns_near_it() {
    let mib = 1024 * 1024;
    assert_eq!(check_disk(Some(100 * mib), 256).status, Level::Fail);
    assert_eq!(check_disk(Some(300 * mib), 256).status, Level::Warn);
    assert_eq!(check_disk(Some(5000 * mib), 256).status, Level::Ok);
    assert_eq!(check_disk(None, 256).status, Level::Warn);
}

#[test]
fn certificates_expire_in_three_steps() {
    let day = time::Duration::days(1);
    let judge =
        |left| judge_expiry("certificates", "cert", NOW + left, NOW, CERT_WARN, "renew").status;
    assert_eq!(judge(-day), Level::Fail);
    assert_eq!(judge(day * 3), Level::Warn);
    assert_eq!(judge(day * 60), Level::Ok);
}

#[test]
fn the_local_ca_warns_half_a_year_ahead_and_fails_once_expired() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.storage.data_dir = dir.path().to_owned();
    assert!(c.local_ca_mode());
    // A CA made by local_ca itself with its clock set back: 100 days of it are left at NOW
    // (less the hour it is backdated by against clock skew).
    let made = NOW - local_ca::CA_VALIDITY + time::Duration::days(100);
    let names = local_ca::ServerNames {
        dns: vec!["roost".into()],
        ips: Vec::new(),
    };
    local_ca::ensure(&c.tls_dir(), &names, Duration::ZERO, made).unwrap();
    let ca_check = |now| {
        check_certificates(&c, now)
            .into_iter()
            .find(|check| check.name == "ca")
            .unwrap()
    };

    let near = ca_check(NOW);
    assert_eq!(near.status, Level::Warn, "{near:?}");
    assert!(near.message.contains("(99 days left)"), "{near:?}");
    let fix = near.fix.unwrap();
    assert!(fix.contains("sudo -u roost roost init"), "{fix}");
    assert!(
        fix.contains(&c.tls_dir().join("ca.key").display().to_string()),
        "{fix}"
    );
    assert!(fix.contains("on every device"), "{fix}");

    // 190 days before its end it is still fine; an hour after its end it fails.
    assert_eq!(ca_check(NOW - time::Duration::days(90)).status, Level::Ok);
    let expired = ca_check(NOW + time::Duration::days(100));
    assert_eq!(expired.status, Level::Fail, "{expired:?}");
    assert!(expired.message.contains("expired on"), "{expired:?}");
    assert!(expired.fix.unwrap().contains("roost init"));
}

#[test]
fn ports_are_judged_against_whether_the_daemon_runs() {
    let addrs = [
        ("https", "[::]:443".parse().unwrap()),
        ("internal", "127.0.0.1:9090".parse().unwrap()),
    ];
    let up = |_| true;
    let down = |_| false;
    let only_https = |a: SocketAddr| a.port() == 443;
    assert_eq!(check_ports(&addrs, Some(true), &up).status, Level::Ok);
    let c = check_ports(&addrs, Some(true), &only_https);
    assert_eq!(c.status, Level::Fail);
    assert!(c.message.contains("internal 127.0.0.1:9090"), "{c:?}");
    assert_eq!(check_ports(&addrs, Some(false), &down).status, Level::Warn);
    let c = check_ports(&addrs, Some(false), &only_https);
    assert_eq!(c.status, Level::Fail);
    assert!(c.message.contains("another program"), "{c:?}");
    // A wildcard bind is reached on loopback.
    let seen = std::sync::Mutex::new(Vec::new());
    check_ports(&addrs, None, &|a| {
        seen.lock().unwrap().push(a);
        true
    });
    assert_eq!(seen.lock().unwrap()[0], "[::1]:443".parse().unwrap());
}

#[test]
fn small_udp_buffers_warn_with_the_sysctl_fix() {
    let ok = check_udp_buffer(Some(RMEM_RECOMMENDED), Some(212_992));
    assert_eq!(ok.status, Level::Ok);
    assert_eq!(
        ok.message,
        "net.core.rmem_max = 5000000, net.core.wmem_max = 212992"
    );
    let c = check_udp_buffer(Some(212_992), None);
    assert_eq!(c.status, Level::Warn);
    assert!(c.message.contains("wmem_max unreadable"), "{c:?}");
    assert!(c.fix.unwrap().contains("net.core.rmem_max=5000000"));
}

#[test]
fn a_backup_older_than_two_days_is_stale() {
    let at = |secs_ago: i64| LastSuccess {
        created: "x".into(),
        created_unix: NOW.unix_timestamp() - secs_ago,
        path: "/b".into(),
        bytes: 1,
    };
    assert_eq!(check_backup(None, NOW).status, Level::Warn);
    assert_eq!(check_backup(Some(&at(3600)), NOW).status, Level::Ok);
    assert_eq!(check_backup(Some(&at(3 * 86_400)), NOW).status, Level::Warn);
}

#[test]
fn a_readable_key_fails_with_a_chmod_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.storage.data_dir = dir.path().join("data");
    assert_eq!(check_permissions(&c).status, Level::Warn, "not created yet");
    std::fs::create_dir_all(c.secrets_dir()).unwrap();
    std::fs::set_permissions(c.data_dir(), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::set_permissions(c.secrets_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = c.secrets_dir().join("jwt_signing.key");
    std::fs::write(&key, "k").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        check_permissions(&c).status,
        Level::Ok,
        "{:?}",
        check_permissions(&c)
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let check = check_permissions(&c);
    assert_eq!(check.status, Level::Fail);
    assert!(check
        .fix
        .unwrap()
        .contains(&format!("chmod 600 {}", key.display())));

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(c.data_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        check_permissions(&c).status,
        Level::Warn,
        "world-readable data dir"
    );
}

#[test]
fn livekit_absent_warns_and_present_reports_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("livekit-server");
    let c = check_livekit(std::slice::from_ref(&missing));
    assert_eq!(c.status, Level::Warn);
    assert!(c.message.contains("calls are disabled"));
    // Where it looked, so the admin knows where to put it.
    assert!(c.message.contains(&missing.display().to_string()), "{c:?}");

    std::fs::write(&missing, "#!/bin/sh\necho 'livekit-server version 1.8.4'\n").unwrap();
    std::fs::set_permissions(&missing, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = check_livekit(&[dir.path().join("absent"), missing.clone()]);
    assert_eq!(c.status, Level::Ok, "{c:?}");
    assert!(c.message.contains("1.8.4"));
    // Where it found the binary that runs: the first candidate that exists.
    assert!(
        c.message.starts_with(&format!("{}: ", missing.display())),
        "{c:?}"
    );
}

#[test]
fn the_database_check_reports_missing_current_and_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.storage.data_dir = dir.path().to_owned();
    assert_eq!(check_database(&c).status, Level::Warn);
    migrations::apply(&c.db_path(), &c.backups_dir()).unwrap();
    assert_eq!(
        check_database(&c).status,
        Level::Ok,
        "{:?}",
        check_database(&c)
    );
}

#[test]
fn the_report_lists_fixes_and_counts() {
    let checks = [
        Check::ok("config", "fine"),
        Check::fail("disk", "full", "delete things"),
    ];
    let text = render(&checks);
    assert!(text.contains("FAIL  disk          full\n"), "{text}");
    assert!(text.contains("fix: delete things"), "{text}");
    assert!(text.ends_with("1 ok, 0 warnings, 1 failures\n"), "{text}");
}
