//! The edge's reading of client-controlled headers: `Forwarded` / `X-Forwarded-For` through
//! trusted proxies (`EdgePolicy::client_ip`) and `Host` normalisation and matching
//! (`request_host`, `host_allowed`). Nothing may panic; a peer that is not a trusted proxy is
//! always its own client IP, whatever it sends.
#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use roost::edge::policy::{request_host, EdgePolicy};

fn policy() -> &'static Arc<EdgePolicy> {
    static P: OnceLock<Arc<EdgePolicy>> = OnceLock::new();
    P.get_or_init(|| {
        let mut config = roost::config::dev_defaults();
        config.server.hostname = "roost".into();
        config.server.trusted_proxies = vec!["10.0.0.0/8".into(), "fd00::/8".into()];
        config.server.public_url = "https://chat.example.org".into();
        EdgePolicy::public(&config, 443, &["192.0.2.10".parse().unwrap()])
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    let names = ["forwarded", "x-forwarded-for", "host"];
    for (i, line) in rest.split(|&b| b == b'\n').enumerate().take(16) {
        if let Ok(v) = http::HeaderValue::from_bytes(line) {
            headers.append(names[(i + sel as usize) % 3], v);
        }
    }
    let p = policy();
    let peers: [IpAddr; 4] = [
        "10.1.2.3".parse().unwrap(),
        "fd00::5".parse().unwrap(),
        "203.0.113.7".parse().unwrap(),
        "::ffff:10.0.0.1".parse().unwrap(),
    ];
    let peer = peers[(sel >> 4) as usize % peers.len()];
    let ip = p.client_ip(peer, &headers);
    if peer == peers[2] {
        assert_eq!(
            ip, peer,
            "an untrusted peer's forwarding headers must be ignored"
        );
    }

    // Host: as HTTP/1.1 sends it, and as an HTTP/2 :authority in the URI.
    let mut req = http::Request::builder().uri("/");
    if let Some(h) = headers.get("host") {
        req = req.header("host", h);
    }
    let req = req
        .body(axum::body::Body::empty())
        .expect("a valid request");
    if let Some(host) = request_host(&req) {
        let _ = p.host_allowed(&host);
    }
    if let Ok(s) = std::str::from_utf8(rest) {
        if let Ok(uri) = format!("https://{s}/").parse::<http::Uri>() {
            let req = http::Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .expect("a parsed URI");
            if let Some(host) = request_host(&req) {
                let _ = p.host_allowed(&host);
            }
        }
    }
});
