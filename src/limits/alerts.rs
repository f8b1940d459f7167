//! Security alerts: a JSON POST to `[alerts] webhook_url` when failed sign-ins or rate-limit
//! refusals exceed a threshold within a window.
//!
//! Requests only ever call [`AlertSink`] methods, which `try_send` on a bounded queue and
//! never wait: when the queue is full the signal is counted in a per-kind drop counter
//! (added to the window by the alerter on its next round, and to
//! `roost_alert_signals_dropped_total`) instead. One background [`Alerter`] counts signals per
//! second over the window and POSTs
//! `{"event":"roost.security_alert","kind":...,"count":...,"window_secs":...,"host":...,"at":...}`
//! with a timeout, at most once per `min_interval_secs` per kind, from a spawned task so a slow
//! webhook never holds up counting. The webhook URL usually embeds a token: it is never logged.
//! The same payload goes to an [`AlertHook`] when one is given (outgoing webhooks that want
//! `security.alert`, `integrations`), which queues it without waiting.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::alerts::Alerts;
use crate::metrics::Metrics;

/// Signals waiting for the alerter. At the bound, signals are counted, not queued.
const QUEUE_CAPACITY: usize = 1024;
/// A webhook that has not answered in this long is given up on (the next alert may retry).
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    AuthFailures,
    RateLimitHits,
}

impl AlertKind {
    const ALL: [AlertKind; 2] = [AlertKind::AuthFailures, AlertKind::RateLimitHits];

    /// The `kind` field of the webhook payload.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::AuthFailures => "auth_failures",
            AlertKind::RateLimitHits => "rate_limit_hits",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Where requests report security-relevant events. Cheap to clone; every method returns at
/// once. A disabled sink (no webhook configured) does nothing.
#[derive(Clone, Default)]
pub struct AlertSink {
    inner: Option<Arc<Shared>>,
}

struct Shared {
    tx: mpsc::Sender<AlertKind>,
    dropped: [AtomicU64; 2],
    dropped_total: Counter,
}

impl AlertSink {
    /// A sink that ignores everything (no webhook, and tests).
    pub fn disabled() -> AlertSink {
        AlertSink { inner: None }
    }

    /// A sign-in failed (wrong password, unknown user, bad token...).
    pub fn auth_failure(&self) {
        self.signal(AlertKind::AuthFailures);
    }

    /// The rate limiter refused a request.
    pub fn rate_limited(&self) {
        self.signal(AlertKind::RateLimitHits);
    }

    fn signal(&self, kind: AlertKind) {
        let Some(shared) = &self.inner else { return };
        if shared.tx.try_send(kind).is_err() {
            shared.dropped[kind.index()].fetch_add(1, Ordering::Relaxed);
            shared.dropped_total.inc();
        }
    }

    /// Signals that found the queue full (or the alerter gone) so far.
    pub fn dropped(&self) -> u64 {
        self.inner.as_ref().map_or(0, |s| s.dropped_total.get())
    }
}

/// Where else an alert goes besides `[alerts] webhook_url`: called with the payload each time
/// one is raised (outgoing webhooks that want `security.alert`); it must not wait.
pub type AlertHook = Arc<dyn Fn(&serde_json::Value) + Send + Sync>;

/// Makes the sink and, when a webhook is configured or `hook` is given, the alerter task to
/// spawn with it. `host` names this server in the payload.
pub fn alerter(
    config: &Alerts,
    host: String,
    metrics: &Metrics,
    hook: Option<AlertHook>,
) -> (AlertSink, Option<Alerter>) {
    if config.webhook_url.is_empty() && hook.is_none() {
        return (AlertSink::disabled(), None);
    }
    // Building fails only when the system's root store holds nothing but unparsable
    // certificates; then alerts are off and the operator is told, the daemon still serves.
    let client = match reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e.without_url(), "cannot build the webhook client; security alerts are off");
            return (AlertSink::disabled(), None);
        }
    };
    let (sink, rx) = channel(QUEUE_CAPACITY, metrics);
    let alerter = Alerter {
        rx,
        shared: sink.inner.clone().expect("channel() makes an enabled sink"),
        state: AlertState::new(config),
        url: (!config.webhook_url.is_empty()).then(|| Arc::from(config.webhook_url.as_str())),
        window_secs: config.window_secs,
        host,
        client,
        hook,
    };
    (sink, Some(alerter))
}

fn channel(capacity: usize, metrics: &Metrics) -> (AlertSink, mpsc::Receiver<AlertKind>) {
    let (tx, rx) = mpsc::channel(capacity);
    let dropped_total = Counter::default();
    metrics.register(
        "alert_signals_dropped",
        "Security-alert signals not queued because the alerter was behind (still counted)",
        dropped_total.clone(),
    );
    let shared = Shared {
        tx,
        dropped: Default::default(),
        dropped_total,
    };
    (
        AlertSink {
            inner: Some(Arc::new(shared)),
        },
        rx,
    )
}

/// The background task counting signals and sending alerts.
pub struct Alerter {
    rx: mpsc::Receiver<AlertKind>,
    shared: Arc<Shared>,
    state: AlertState,
    /// `[alerts] webhook_url`, if set.
    url: Option<Arc<str>>,
    window_secs: u64,
    host: String,
    client: reqwest::Client,
    hook: Option<AlertHook>,
}

impl Alerter {
    /// Runs until `shutdown`; an alert still being sent then is abandoned.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sending: [Option<JoinHandle<()>>; 2] = [None, None];
        loop {
            let signal = tokio::select! {
                _ = shutdown.cancelled() => break,
                signal = self.rx.recv() => match signal {
                    Some(kind) => Some(kind),
                    None => break,
                },
                _ = tick.tick() => None,
            };
            let now = start.elapsed().as_secs();
            if let Some(kind) = signal {
                self.state.record(kind, now, 1);
            }
            for kind in AlertKind::ALL {
                let dropped = self.shared.dropped[kind.index()].swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    self.state.record(kind, now, dropped);
                }
                let slot = &mut sending[kind.index()];
                if slot.as_ref().is_some_and(|h| !h.is_finished()) {
                    continue;
                }
                if let Some(count) = self.state.due(kind, now) {
                    tracing::warn!(
                        kind = kind.name(),
                        count,
                        window_secs = self.window_secs,
                        "security alert"
                    );
                    let body = payload(kind, count, self.window_secs, &self.host);
                    if let Some(hook) = &self.hook {
                        hook(&body);
                    }
                    if let Some(url) = &self.url {
                        *slot = Some(tokio::spawn(post(
                            self.client.clone(),
                            url.clone(),
                            body,
                            kind,
                        )));
                    }
                }
            }
        }
        for handle in sending.into_iter().flatten() {
            handle.abort();
        }
    }
}

fn payload(kind: AlertKind, count: u64, window_secs: u64, host: &str) -> serde_json::Value {
    let at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "event": "roost.security_alert",
        "kind": kind.name(),
        "count": count,
        "window_secs": window_secs,
        "host": host,
        "at": at,
    })
}

async fn post(client: reqwest::Client, url: Arc<str>, body: serde_json::Value, kind: AlertKind) {
    let sent = client
        .post(&*url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await;
    match sent {
        Ok(resp) if resp.status().is_success() => {
            tracing::info!(kind = kind.name(), "security alert delivered")
        }
        Ok(resp) => tracing::warn!(
            kind = kind.name(),
            status = resp.status().as_u16(),
            "the webhook refused the security alert"
        ),
        Err(e) => tracing::warn!(
            kind = kind.name(),
            error = %e.without_url(),
            "cannot deliver the security alert"
        ),
    }
}

/// Counts per kind over the window and decides when an alert is due. Pure: time is passed in
/// as whole seconds since the alerter started.
struct AlertState {
    windows: [Window; 2],
    thresholds: [u64; 2],
    last_sent: [Option<u64>; 2],
    min_interval_secs: u64,
}

impl AlertState {
    fn new(c: &Alerts) -> AlertState {
        AlertState {
            windows: [Window::new(c.window_secs), Window::new(c.window_secs)],
            thresholds: [
                c.auth_failures_threshold.into(),
                c.rate_limit_hits_threshold.into(),
            ],
            last_sent: [None, None],
            min_interval_secs: c.min_interval_secs,
        }
    }

    fn record(&mut self, kind: AlertKind, now: u64, n: u64) {
        self.windows[kind.index()].add(now, n);
    }

    /// The count to report if an alert of `kind` is due now (and marks it sent).
    fn due(&mut self, kind: AlertKind, now: u64) -> Option<u64> {
        let i = kind.index();
        let threshold = self.thresholds[i];
        let count = self.windows[i].total(now);
        let quiet = self.last_sent[i].is_none_or(|t| now >= t + self.min_interval_secs);
        if threshold == 0 || count < threshold || !quiet {
            return None;
        }
        self.last_sent[i] = Some(now);
        Some(count)
    }
}

/// Events per second over the last `secs` seconds: at most `secs` entries, whatever the rate.
struct Window {
    secs: u64,
    per_second: VecDeque<(u64, u64)>,
    total: u64,
}

impl Window {
    fn new(secs: u64) -> Window {
        Window {
            secs,
            per_second: VecDeque::new(),
            total: 0,
        }
    }

    fn add(&mut self, now: u64, n: u64) {
        self.trim(now);
        match self.per_second.back_mut() {
            Some((second, count)) if *second == now => *count += n,
            _ => self.per_second.push_back((now, n)),
        }
        self.total += n;
    }

    fn total(&mut self, now: u64) -> u64 {
        self.trim(now);
        self.total
    }

    fn trim(&mut self, now: u64) {
        while let Some(&(second, count)) = self.per_second.front() {
            if second + self.secs > now {
                break;
            }
            self.per_second.pop_front();
            self.total -= count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> Alerts {
        Alerts {
            webhook_url: url.into(),
            auth_failures_threshold: 3,
            rate_limit_hits_threshold: 0,
            window_secs: 10,
            min_interval_secs: 60,
        }
    }

    #[test]
    fn alerts_fire_at_the_threshold_within_the_window_and_are_debounced() {
        let mut s = AlertState::new(&config(""));
        let auth = AlertKind::AuthFailures;
        s.record(auth, 0, 2);
        assert_eq!(s.due(auth, 0), None, "below the threshold");
        s.record(auth, 10, 2);
        assert_eq!(s.due(auth, 10), None, "the first two left the window");
        s.record(auth, 11, 1);
        assert_eq!(s.due(auth, 11), Some(3));
        s.record(auth, 12, 100);
        assert_eq!(s.due(auth, 12), None, "debounced");
        assert_eq!(
            s.due(auth, 70),
            None,
            "still debounced; and the burst is over"
        );
        s.record(auth, 71, 5);
        assert_eq!(s.due(auth, 71), Some(5), "a new alert after min_interval");
        // Threshold 0: never.
        s.record(AlertKind::RateLimitHits, 71, 1_000_000);
        assert_eq!(s.due(AlertKind::RateLimitHits, 71), None);
    }

    #[test]
    fn window_memory_is_bounded_by_its_length() {
        let mut w = Window::new(5);
        for second in 0..1_000 {
            w.add(second, 7);
            assert!(w.per_second.len() <= 5);
        }
        assert_eq!(w.total(999), 35);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        let metrics = Metrics::new();
        let (sink, _rx) = channel(2, &metrics);
        for _ in 0..5 {
            sink.auth_failure();
        }
        assert_eq!(sink.dropped(), 3);
        assert!(metrics
            .encode()
            .contains("roost_alert_signals_dropped_total 3"));
        AlertSink::disabled().rate_limited(); // a no-op
    }

    #[tokio::test]
    async fn the_webhook_receives_one_alert() {
        use axum::routing::post;
        let (tx, mut rx) = mpsc::channel::<(Option<String>, serde_json::Value)>(8);
        let app = axum::Router::new().route(
            "/hook",
            post(
                move |headers: http::HeaderMap, body: axum::body::Bytes| async move {
                    let ct = headers
                        .get("content-type")
                        .map(|v| v.to_str().unwrap().to_owned());
                    let _ = tx.send((ct, serde_json::from_slice(&body).unwrap())).await;
                    "ok"
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let metrics = Metrics::new();
        let cfg = config(&format!("http://{addr}/hook"));
        let (sink, alerter) = alerter(&cfg, "roost.test".into(), &metrics, None);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(alerter.unwrap().run(shutdown.clone()));
        for _ in 0..5 {
            sink.auth_failure();
            sink.rate_limited();
        }
        let (ct, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an alert within 10 s")
            .unwrap();
        assert_eq!(ct.as_deref(), Some("application/json"));
        assert_eq!(body["event"], "roost.security_alert");
        assert_eq!(body["kind"], "auth_failures");
        assert_eq!(body["window_secs"], 10);
        assert_eq!(body["host"], "roost.test");
        let count = body["count"].as_u64().unwrap();
        assert!((3..=5).contains(&count), "{body}");
        assert!(body["at"].as_str().unwrap().ends_with('Z'), "{body}");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the alerter stops on shutdown")
            .unwrap();
        assert!(rx.try_recv().is_err(), "debounced: one alert only");
    }
}
