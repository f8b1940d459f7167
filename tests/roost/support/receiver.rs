//! An HTTP server on 127.0.0.1 that plays a webhook receiver: it records every request it
//! answers with 200 and answers what the test tells it to (a receiver that is down).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::eventually;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

impl Delivery {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver on 127.0.0.1 that records what it gets and answers `status`.
pub struct Receiver {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Delivery>>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (s, st) = (seen.clone(), status.clone());
        let app = axum::Router::new().fallback(
            move |uri: http::Uri, headers: http::HeaderMap, body: bytes::Bytes| {
                let (s, st) = (s.clone(), st.clone());
                async move {
                    let code = st.load(Ordering::SeqCst);
                    if code == 200 {
                        s.lock().unwrap().push(Delivery {
                            path: uri.path().to_owned(),
                            headers,
                            body,
                        });
                    }
                    http::StatusCode::from_u16(code).unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { addr, seen, status }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<Delivery> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until at least `n` deliveries arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        eventually(
            Duration::from_secs(30),
            &format!("{n} deliveries"),
            || async {
                let seen = self.seen();
                (seen.len() >= n).then_some(seen)
            },
        )
        .await
    }
}
