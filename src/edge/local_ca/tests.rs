//! The local CA's tests: the naming rules, and `ensure` seen from outside (what ends up in the
//! TLS directory, when it changes, and that clients trusting only `ca.crt` accept the result).

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{ServerName, UnixTime};
use rustls::RootCertStore;

use super::names::is_link_local_v6;
use super::*;

const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

fn names() -> ServerNames {
    ServerNames::from_parts(
        "roost",
        &["chat.example.org".to_owned()],
        vec!["192.168.1.20".parse().unwrap()],
    )
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn snapshot(files: &LocalCaFiles) -> Vec<Vec<u8>> {
    [
        &files.ca_cert,
        &files.ca_key,
        &files.server_cert,
        &files.server_key,
    ]
    .iter()
    .map(|path| fs::read(path).unwrap())
    .collect()
}

fn renewal_reason(issued: &Issued) -> &str {
    match issued {
        Issued::Renewed { reason } => reason,
        other => panic!("expected Renewed, got {other:?}"),
    }
}

#[test]
fn for_host_lists_hostname_mdns_localhost_extras_and_loopback() {
    let names = ServerNames::from_parts(
        "Roost.",
        &[
            "chat.example.org".to_owned(),
            "10.0.0.5".to_owned(),
            "localhost".to_owned(),
        ],
        vec!["192.168.1.20".parse().unwrap()],
    );
    assert_eq!(
        names.dns,
        ["roost", "chat.example.org", "localhost", "roost.local"]
    );
    let ips: Vec<String> = names.ips.iter().map(IpAddr::to_string).collect();
    assert_eq!(ips, ["10.0.0.5", "127.0.0.1", "192.168.1.20", "::1"]);

    let already_mdns = ServerNames::from_parts("pi.local", &[], Vec::new());
    assert_eq!(already_mdns.dns, ["pi.local", "localhost"]);
    let only_localhost = ServerNames::from_parts("localhost", &[], Vec::new());
    assert_eq!(only_localhost.dns, ["localhost"]);
    let address = ServerNames::from_parts("10.0.0.2", &[], Vec::new());
    assert_eq!(address.dns, ["localhost"]);
    assert!(address.ips.contains(&"10.0.0.2".parse().unwrap()));
}

#[test]
fn machine_ips_have_no_link_local_v6() {
    let names = ServerNames::for_host("roost", &[]);
    assert!(names.ips.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    assert!(names.ips.contains(&IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert!(!machine_ips().iter().any(is_link_local_v6));
    assert!(is_link_local_v6(&"fe80::1".parse().unwrap()));
    assert!(!is_link_local_v6(&"fd00::1".parse().unwrap()));
}

#[test]
fn empty_dir_gets_four_files_with_private_keys() {
    let temp = tempfile::tempdir().unwrap();
    let tls_dir = temp.path().join("tls");
    let outcome = ensure(&tls_dir, &names(), RENEW_BEFORE, now()).unwrap();

    assert_eq!(outcome.ca, Issued::Created);
    assert_eq!(outcome.server, Issued::Created);
    let files = LocalCaFiles::in_dir(&tls_dir);
    assert_eq!(mode(&tls_dir), 0o700);
    assert_eq!(mode(&files.ca_key), 0o600);
    assert_eq!(mode(&files.server_key), 0o600);
    assert_eq!(mode(&files.ca_cert), 0o644);
    assert_eq!(mode(&files.server_cert), 0o644);
    let mut entries: Vec<_> = fs::read_dir(&tls_dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(entries, ["ca.crt", "ca.key", "server.crt", "server.key"]);

    let ca_der = tls::read_cert_chain(&files.ca_cert).unwrap().remove(0);
    assert_eq!(
        outcome.ca_fingerprint_sha256,
        tls::sha256_fingerprint(&ca_der)
    );
    let ca = parse_certificate(&ca_der).unwrap();
    assert!(ca.subject().to_string().contains("Roost local CA (roost)"));
    let constraints = ca.basic_constraints().unwrap().unwrap().value;
    assert!(constraints.ca);
    assert_eq!(constraints.path_len_constraint, Some(0));

    let chain = tls::read_cert_chain(&files.server_cert).unwrap();
    assert_eq!(chain.len(), 2, "server.crt holds leaf and CA");
    assert_eq!(chain[1], ca_der);
    let leaf = parse_certificate(&chain[0]).unwrap();
    assert_eq!(
        leaf.validity().not_after.to_datetime(),
        outcome.server_not_after
    );
    let lifetime =
        leaf.validity().not_after.to_datetime() - leaf.validity().not_before.to_datetime();
    assert_eq!(lifetime, time::Duration::days(397));
    let usage = leaf.extended_key_usage().unwrap().unwrap().value;
    assert!(usage.server_auth);
    assert!(!leaf.is_ca());
}

#[test]
fn second_run_changes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let first = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
    let files = LocalCaFiles::in_dir(temp.path());
    let before = snapshot(&files);

    let second = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
    assert_eq!(second.ca, Issued::Unchanged);
    assert_eq!(second.server, Issued::Unchanged);
    assert_eq!(second.ca_fingerprint_sha256, first.ca_fingerprint_sha256);
    assert_eq!(second.server_not_after, first.server_not_after);
    assert_eq!(snapshot(&files), before);
}

#[test]
fn server_cert_is_renewed_near_expiry_and_ca_is_kept() {
    let temp = tempfile::tempdir().unwrap();
    let start = now();
    let first = ensure(temp.path(), &names(), RENEW_BEFORE, start).unwrap();
    let files = LocalCaFiles::in_dir(temp.path());
    let ca_before = fs::read(&files.ca_cert).unwrap();

    // 380 days in, the cert still has 17 days left: outside a zero window, inside 30 days.
    let later = start + time::Duration::days(380);
    let outside_window = ensure(temp.path(), &names(), Duration::ZERO, later).unwrap();
    assert_eq!(outside_window.server, Issued::Unchanged);

    let renewed = ensure(temp.path(), &names(), RENEW_BEFORE, later).unwrap();
    assert_eq!(renewed.ca, Issued::Unchanged);
    assert!(renewal_reason(&renewed.server).contains("renewal window"));
    assert!(renewed.server_not_after > first.server_not_after);
    assert_eq!(fs::read(&files.ca_cert).unwrap(), ca_before);
    assert_eq!(renewed.ca_fingerprint_sha256, first.ca_fingerprint_sha256);
}

#[test]
fn server_certs_never_outlive_the_ca_and_an_expired_ca_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let start = now();
    ensure(temp.path(), &names(), RENEW_BEFORE, start).unwrap();
    let files = LocalCaFiles::in_dir(temp.path());
    let ca_end = first_not_after(&files.ca_cert);

    // 100 days before the CA ends, a new certificate stops with the CA, not 397 days on.
    let late = ca_end - time::Duration::days(100);
    let reissued = ensure(temp.path(), &names(), RENEW_BEFORE, late).unwrap();
    assert!(matches!(reissued.server, Issued::Renewed { .. }));
    assert_eq!(reissued.server_not_after, ca_end);
    assert_eq!(first_not_after(&files.server_cert), ca_end);

    // Inside the renewal window of a certificate that already ends with the CA: kept.
    let last_days = ca_end - time::Duration::days(10);
    let kept = ensure(temp.path(), &names(), RENEW_BEFORE, last_days).unwrap();
    assert_eq!(kept.server, Issued::Unchanged);

    // Once the CA has expired nothing can be issued, and the error says what to do.
    let after = ca_end + time::Duration::days(1);
    let err = ensure(temp.path(), &names(), RENEW_BEFORE, after).unwrap_err();
    assert!(matches!(err, TlsError::CaExpired { .. }), "{err}");
    assert!(err.to_string().contains("roost init"), "{err}");
}

fn first_not_after(path: &Path) -> OffsetDateTime {
    let chain = tls::read_cert_chain(path).unwrap();
    parse_certificate(&chain[0])
        .unwrap()
        .validity()
        .not_after
        .to_datetime()
}

#[test]
fn server_cert_is_renewed_for_a_new_address() {
    let temp = tempfile::tempdir().unwrap();
    ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();

    let mut moved = names();
    moved.ips.push("192.168.1.77".parse().unwrap());
    let outcome = ensure(temp.path(), &moved, RENEW_BEFORE, now()).unwrap();
    assert_eq!(outcome.ca, Issued::Unchanged);
    assert!(renewal_reason(&outcome.server).contains("192.168.1.77"));

    // Dropping a name is not a reason to reissue.
    let fewer = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
    assert_eq!(fewer.server, Issued::Unchanged);
}

#[test]
fn server_cert_from_another_ca_is_reissued() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    ensure(ours.path(), &names(), RENEW_BEFORE, now()).unwrap();
    ensure(theirs.path(), &names(), RENEW_BEFORE, now()).unwrap();
    for file in ["server.crt", "server.key"] {
        fs::copy(theirs.path().join(file), ours.path().join(file)).unwrap();
    }

    let outcome = ensure(ours.path(), &names(), RENEW_BEFORE, now()).unwrap();
    assert!(renewal_reason(&outcome.server).contains("not issued by the current local CA"));
}

#[test]
fn damaged_server_files_are_reissued() {
    let temp = tempfile::tempdir().unwrap();
    ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
    let files = LocalCaFiles::in_dir(temp.path());

    fs::remove_file(&files.server_key).unwrap();
    let outcome = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
    assert!(renewal_reason(&outcome.server).contains("server.key is missing"));

    fs::write(&files.server_cert, "garbage").unwrap();
    let outcome = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
    assert!(renewal_reason(&outcome.server).contains("no PEM certificate found"));
    assert_eq!(mode(&files.server_cert), 0o644);
}

#[test]
fn half_a_ca_is_an_error_and_is_left_alone() {
    let temp = tempfile::tempdir().unwrap();
    ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap();
    let files = LocalCaFiles::in_dir(temp.path());
    let key_before = fs::read(&files.ca_key).unwrap();

    fs::remove_file(&files.ca_cert).unwrap();
    let err = ensure(temp.path(), &names(), RENEW_BEFORE, now()).unwrap_err();
    assert!(matches!(err, TlsError::IncompleteCa { .. }), "{err}");
    assert!(err.to_string().contains("ca.crt is missing"), "{err}");
    assert_eq!(fs::read(&files.ca_key).unwrap(), key_before);
    assert!(!files.ca_cert.exists());

    let other = tempfile::tempdir().unwrap();
    ensure(other.path(), &names(), RENEW_BEFORE, now()).unwrap();
    fs::remove_file(other.path().join("ca.key")).unwrap();
    let err = ensure(other.path(), &names(), RENEW_BEFORE, now()).unwrap_err();
    assert!(err.to_string().contains("ca.key is missing"), "{err}");
}

#[test]
fn ca_key_not_matching_ca_cert_is_an_error() {
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    ensure(ours.path(), &names(), RENEW_BEFORE, now()).unwrap();
    ensure(theirs.path(), &names(), RENEW_BEFORE, now()).unwrap();
    fs::copy(theirs.path().join("ca.key"), ours.path().join("ca.key")).unwrap();

    let err = ensure(ours.path(), &names(), RENEW_BEFORE, now()).unwrap_err();
    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err}");
}

#[test]
fn no_names_is_an_error() {
    let temp = tempfile::tempdir().unwrap();
    let empty = ServerNames {
        dns: Vec::new(),
        ips: Vec::new(),
    };
    let err = ensure(temp.path(), &empty, RENEW_BEFORE, now()).unwrap_err();
    assert!(matches!(err, TlsError::NoServerNames));
}

/// Checks the chain in `tls_dir` the way a client trusting only `ca.crt` would.
fn verify_for_every_name(tls_dir: &Path, at: OffsetDateTime) {
    let files = LocalCaFiles::in_dir(tls_dir);
    let mut roots = RootCertStore::empty();
    for ca in tls::read_cert_chain(&files.ca_cert).unwrap() {
        roots.add(ca).unwrap();
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    let chain = tls::read_cert_chain(&files.server_cert).unwrap();
    let verify_at = UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(at.unix_timestamp()).unwrap(),
    ));
    let verify = |name: &str| {
        let server_name = ServerName::try_from(name.to_owned()).unwrap();
        verifier.verify_server_cert(&chain[0], &chain[1..], &server_name, &[], verify_at)
    };

    for name in [
        "localhost",
        "roost",
        "roost.local",
        "chat.example.org",
        "127.0.0.1",
        "::1",
        "192.168.1.20",
    ] {
        verify(name).unwrap_or_else(|err| panic!("{name}: {err}"));
    }
    assert!(verify("example.com").is_err());
    assert!(verify("192.168.1.21").is_err());
}

#[test]
fn server_cert_verifies_against_the_ca_for_every_name() {
    let temp = tempfile::tempdir().unwrap();
    let at = now();
    let created = ensure(temp.path(), &names(), RENEW_BEFORE, at).unwrap();
    assert_eq!(created.ca, Issued::Created);
    verify_for_every_name(temp.path(), at);

    // Issued by a CA loaded back from disk, which signs through a rebuilt rcgen value.
    let files = LocalCaFiles::in_dir(temp.path());
    fs::remove_file(&files.server_cert).unwrap();
    fs::remove_file(&files.server_key).unwrap();
    let reissued = ensure(temp.path(), &names(), RENEW_BEFORE, at).unwrap();
    assert_eq!(reissued.ca, Issued::Unchanged);
    assert_eq!(reissued.server, Issued::Created);
    verify_for_every_name(temp.path(), at);
}
