//! The delivery worker: sends the queued `webhook_deliveries` rows, each hook's in `id` order.
//!
//! One task ([`Integrations::run`]) looks at the head of every unpaused hook's queue (on a wake
//! after a commit, when a retry falls due, and at least every second, which also picks up
//! changes made by `roost webhook` in another process) and starts a drain task for each hook
//! whose head is due, at most `[webhooks] max_concurrent` at a time. A drain task sends the
//! head, records the outcome, and goes on with the next row while they succeed; after a
//! failure the row waits `first_retry_secs * 2^(failures-1)` (at most `max_retry_secs`, plus
//! up to 25% jitter). After `max_attempts` failures in a row the hook is paused (audit
//! `webhook.paused`, `roost_webhooks_paused_total`); its queue stays and is sent, in order,
//! once it is resumed.
//!
//! Delivery is at least once: a row is marked delivered only after the receiver answered 2xx,
//! so a crash between the answer and the mark sends it again, with the same delivery id.
//! Pending rows survive restarts (they are in the database), and on shutdown the sends in
//! flight are dropped, to be sent again at the next start.
//!
//! Every request carries `X-Roost-Delivery`, `X-Roost-Event`, `X-Roost-Attempt`,
//! `X-Roost-Timestamp` (Unix seconds) and `X-Roost-Signature: sha256=<hex HMAC-SHA256 of
//! "<timestamp>.<body>" keyed with the hook's secret>` ([`sign`]). Redirects are not followed
//! (a 3xx is a failed attempt) and no proxy from the environment is used. The secret is read
//! sealed and opened (`sealing`) only for the attempt that signs with it; one that cannot be
//! opened (the key file replaced) fails the attempt with a reason that says to rotate it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::address::{self, AddressPolicy, CheckedResolver};
use super::sealing::Sealer;
use super::IntegrationError;
use crate::audit;
use crate::config::webhooks::Webhooks;
use crate::http::time::now_ms;
use crate::limits::bucket::{self, Rate};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// The longest the worker sleeps without looking at the queues (changes made by the CLI in
/// another process, a resumed hook).
const POLL: Duration = Duration::from_secs(1);
/// Incoming webhook URLs whose bucket is remembered; past this, full buckets are forgotten
/// (a full bucket and an absent one are the same).
const MAX_INCOMING_BUCKETS: usize = 10_000;
/// Deliveries of one hook read (and their outcomes written) at a time.
const BATCH: i64 = 32;
/// The longest error text kept in the delivery log.
const MAX_ERROR_CHARS: usize = 300;

pub const HEADER_DELIVERY: &str = "x-roost-delivery";
pub const HEADER_EVENT: &str = "x-roost-event";
pub const HEADER_ATTEMPT: &str = "x-roost-attempt";
pub const HEADER_TIMESTAMP: &str = "x-roost-timestamp";
pub const HEADER_SIGNATURE: &str = "x-roost-signature";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    /// `delivered` or `failed` (one attempt each).
    result: &'static str,
}

/// The integrations' shared state: the HTTP client, the worker's wake-up, metrics, and the
/// incoming URLs' buckets. One per daemon, shared as [`super::Handle`].
pub struct Integrations {
    store: Store,
    config: Webhooks,
    policy: AddressPolicy,
    /// Seals new secrets and opens stored ones for signing.
    sealer: Arc<Sealer>,
    /// `None` when the client could not be built (an unreadable CA file is refused by the
    /// config check; this is the system's roots failing): deliveries then wait, and the log
    /// says why once.
    client: Option<reqwest::Client>,
    wake: Notify,
    attempts: Family<ResultLabels, Counter>,
    latency: Histogram,
    paused: Counter,
    pending: Gauge,
    /// Incoming webhook id → its bucket's theoretical arrival time (`limits::bucket`).
    incoming: Mutex<HashMap<i64, u64>>,
    started: Instant,
}

impl Integrations {
    /// `local_ca_pem`: the server's own CA, trusted for receivers when `trust_local_ca`.
    pub fn new(
        store: Store,
        config: &Webhooks,
        sealer: Arc<Sealer>,
        local_ca_pem: Option<&str>,
        metrics: &Metrics,
    ) -> Integrations {
        let policy = AddressPolicy::from_config(config);
        let client = match build_client(config, policy, local_ca_pem) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the webhook client; outgoing webhooks wait");
                None
            }
        };
        let attempts = Family::<ResultLabels, Counter>::default();
        metrics.register(
            "webhook_attempts",
            "Outgoing webhook delivery attempts, by result (delivered: a 2xx answer)",
            attempts.clone(),
        );
        let latency = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        metrics.register(
            "webhook_delivery_latency_seconds",
            "From the commit of an event to the receiver's 2xx answer, retries included",
            latency.clone(),
        );
        let paused = Counter::default();
        metrics.register(
            "webhooks_paused",
            "Outgoing webhooks paused because their deliveries kept failing",
            paused.clone(),
        );
        let pending = Gauge::default();
        metrics.register(
            "webhook_deliveries_pending",
            "Outgoing webhook deliveries queued and not yet delivered (at the worker's last look)",
            pending.clone(),
        );
        Integrations {
            store,
            config: config.clone(),
            policy,
            sealer,
            client,
            wake: Notify::new(),
            attempts,
            latency,
            paused,
            pending,
            incoming: Mutex::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &Webhooks {
        &self.config
    }

    pub fn policy(&self) -> AddressPolicy {
        self.policy
    }

    pub fn sealer(&self) -> Arc<Sealer> {
        self.sealer.clone()
    }

    /// Something may have been queued (a commit), or a hook resumed: look at the queues now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Queues `event` (not a room event: a call, a security alert) for the hooks that want it,
    /// in a write of its own, from a spawned task (the caller does not wait, so two calls may
    /// be queued in either order: use [`Self::queue_unstored_in_order`] where order matters).
    pub fn queue_unstored(
        self: &Arc<Self>,
        event: &'static str,
        room_id: Option<i64>,
        data: String,
    ) {
        let integrations = self.clone();
        tokio::spawn(async move {
            integrations
                .queue_unstored_in_order(event, room_id, data)
                .await
        });
    }

    /// Queues `event` like [`Self::queue_unstored`], returning once it is committed, so the
    /// events one task queues this way are delivered in that order.
    pub async fn queue_unstored_in_order(
        &self,
        event: &'static str,
        room_id: Option<i64>,
        data: String,
    ) {
        let queued = self
            .store
            .write(move |conn| crate::outbox::enqueue(conn, event, room_id, None, now_ms(), &data))
            .await;
        match queued {
            Ok(0) => {}
            Ok(_) => self.wake(),
            Err(e) => tracing::warn!(error = %e, event, "webhooks: cannot queue an event"),
        }
    }

    /// The `limits::alerts` hook that queues `security.alert` deliveries.
    pub fn alert_hook(self: &Arc<Self>) -> crate::limits::alerts::AlertHook {
        let integrations = self.clone();
        Arc::new(move |payload: &serde_json::Value| {
            integrations.queue_unstored("security.alert", None, payload.to_string());
        })
    }

    /// Takes a token from incoming webhook `id`'s own bucket; `Err(seconds)` to wait when empty.
    pub fn take_incoming_token(&self, id: i64) -> Result<(), u64> {
        let rate = Rate::per_minute(self.config.incoming_burst, self.config.incoming_per_minute);
        let now = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut buckets = self
            .incoming
            .lock()
            .expect("the bucket lock is never poisoned: nothing panics while holding it");
        if buckets.len() >= MAX_INCOMING_BUCKETS && !buckets.contains_key(&id) {
            buckets.retain(|_, tat| !bucket::is_full(*tat, now));
        }
        let tat = buckets.entry(id).or_insert(0);
        let verdict = bucket::acquire(tat, now, rate);
        if verdict.allowed {
            Ok(())
        } else {
            Err(verdict.wait_nanos.div_ceil(1_000_000_000).max(1))
        }
    }

    /// The worker: runs until `shutdown`, then drops the sends in flight (their rows stay
    /// queued and are sent again at the next start).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut running: HashSet<i64> = HashSet::new();
        let mut drains: JoinSet<i64> = JoinSet::new();
        // The queue's length is counted at most once per POLL: a wake comes with every commit,
        // and counting a long backlog on each would keep a reader busy for nothing.
        let mut counted: Option<Instant> = None;
        loop {
            let mut wait = POLL;
            let count = counted.is_none_or(|at| at.elapsed() >= POLL);
            match self.store.read(move |conn| heads(conn, count)).await {
                Ok((heads, pending)) => {
                    if let Some(pending) = pending {
                        self.pending.set(pending);
                        counted = Some(Instant::now());
                    }
                    let now = now_ms();
                    for head in heads {
                        if running.contains(&head.hook_id) {
                            continue;
                        }
                        if head.next_attempt_at <= now {
                            if running.len() < self.config.max_concurrent {
                                running.insert(head.hook_id);
                                drains.spawn(self.clone().drain(head.hook_id));
                            }
                        } else {
                            let until = u64::try_from(head.next_attempt_at - now).unwrap_or(0);
                            wait = wait.min(Duration::from_millis(until));
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the webhook queues"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                Some(done) = drains.join_next(), if !drains.is_empty() => {
                    if let Ok(hook_id) = done {
                        running.remove(&hook_id);
                    }
                }
            }
            while let Some(done) = drains.try_join_next() {
                if let Ok(hook_id) = done {
                    running.remove(&hook_id);
                }
            }
            // A drain task that panicked took its hook id with it: start over from what runs.
            if running.len() > drains.len() {
                running.clear();
                drains.abort_all();
                while drains.join_next().await.is_some() {}
            }
        }
        drains.abort_all();
        while drains.join_next().await.is_some() {}
    }

    /// Sends hook `hook_id`'s due deliveries in order until one fails or none is due. They
    /// are read [`BATCH`] at a time and their outcomes written once per batch, so a busy hook
    /// does not wait for a commit between two sends (a crash in between sends the batch's
    /// delivered ones again: at least once, same delivery ids).
    async fn drain(self: Arc<Self>, hook_id: i64) -> i64 {
        loop {
            let batch = match self.store.read(move |conn| due_batch(conn, hook_id)).await {
                Ok(batch) if !batch.is_empty() => batch,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, hook = hook_id, "cannot read a webhook's queue");
                    break;
                }
            };
            let mut delivered = Vec::with_capacity(batch.len());
            let mut failed = None;
            for head in batch {
                let outcome = self.attempt(&head).await;
                if outcome.delivered {
                    let seconds = (now_ms() - head.created_at).max(0) as f64 / 1000.0;
                    self.latency.observe(seconds);
                    self.attempts
                        .get_or_create(&ResultLabels {
                            result: "delivered",
                        })
                        .inc();
                    delivered.push((head.id, outcome.status));
                } else {
                    self.attempts
                        .get_or_create(&ResultLabels { result: "failed" })
                        .inc();
                    failed = Some((head, outcome));
                    break;
                }
            }
            let config = self.config.clone();
            let stop = failed.is_some();
            let recorded = self
                .store
                .write(move |conn| {
                    record(
                        conn,
                        hook_id,
                        &delivered,
                        failed.as_ref(),
                        &config,
                        now_ms(),
                    )
                })
                .await;
            match recorded {
                Ok(Recorded::Paused) => {
                    self.paused.inc();
                    tracing::warn!(
                        hook = hook_id,
                        "an outgoing webhook kept failing and was paused"
                    );
                    break;
                }
                Ok(_) if stop => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, hook = hook_id, "cannot record webhook deliveries");
                    break;
                }
            }
        }
        hook_id
    }

    /// One attempt at `head`.
    async fn attempt(&self, head: &Head) -> Outcome {
        let Some(client) = &self.client else {
            return Outcome::failed(None, "the webhook client is not available".into());
        };
        if let Err(why) = address::check_url(&head.url, self.policy) {
            return Outcome::failed(None, why);
        }
        let secret = match head.sealed_secret.as_deref().map(|s| self.sealer.open(s)) {
            Some(Ok(secret)) => secret,
            Some(Err(e)) => return Outcome::failed(None, e.to_string()),
            // Every row is sealed at start (`sealing::seal_clear_secrets`); one that is not was
            // written behind the daemon's back, and is not sent unsigned.
            None => {
                return Outcome::failed(None, "the webhook has no sealed secret: rotate it".into())
            }
        };
        let timestamp = now_ms() / 1000;
        let attempt = head.attempts + 1;
        let request = client
            .post(&head.url)
            .timeout(Duration::from_secs(self.config.attempt_timeout_secs))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(HEADER_DELIVERY, &head.delivery_id)
            .header(HEADER_EVENT, &head.event)
            .header(HEADER_ATTEMPT, attempt.to_string())
            .header(HEADER_TIMESTAMP, timestamp.to_string())
            .header(
                HEADER_SIGNATURE,
                sign(&secret, timestamp, head.body.as_bytes()),
            )
            .body(head.body.clone());
        match request.send().await {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    Outcome {
                        delivered: true,
                        status: Some(status.as_u16()),
                        error: None,
                    }
                } else if status.is_redirection() {
                    Outcome::failed(
                        Some(status.as_u16()),
                        "the receiver answered a redirect, which is not followed".into(),
                    )
                } else {
                    Outcome::failed(
                        Some(status.as_u16()),
                        format!("the receiver answered {status}"),
                    )
                }
            }
            Err(e) => {
                let e = e.without_url();
                let why = if e.is_timeout() {
                    format!("no answer within {} s", self.config.attempt_timeout_secs)
                } else {
                    crate::http::error::ErrorChain(&e).to_string()
                };
                Outcome::failed(None, why)
            }
        }
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over `"<timestamp>.<body>"`, keyed with the secret's bytes.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("sha256={}", hex::encode(ctx.sign().as_ref()))
}

fn build_client(
    config: &Webhooks,
    policy: AddressPolicy,
    local_ca_pem: Option<&str>,
) -> Result<reqwest::Client, IntegrationError> {
    let failed = |what: &str, e: &dyn std::error::Error| {
        IntegrationError::invalid(
            "webhook_client",
            format!("{what}: {}", crate::http::error::ErrorChain(e)),
        )
    };
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(CheckedResolver(policy)))
        .user_agent(concat!("Roost-Webhooks/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(config.attempt_timeout_secs));
    if config.trust_local_ca {
        if let Some(pem) = local_ca_pem {
            let cert = reqwest::Certificate::from_pem(pem.as_bytes())
                .map_err(|e| failed("the local CA", &e))?;
            builder = builder.add_root_certificate(cert);
        }
    }
    if !config.ca_file.is_empty() {
        let pem = std::fs::read(&config.ca_file).map_err(|e| failed("[webhooks] ca_file", &e))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| failed("[webhooks] ca_file", &e))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| failed("the HTTP client", &e))
}

/// The oldest queued delivery of a hook, with what sending it needs.
#[derive(Debug, Clone)]
struct Head {
    id: i64,
    delivery_id: String,
    event: String,
    body: String,
    attempts: i64,
    created_at: i64,
    url: String,
    /// `webhooks.secret_sealed`, opened only to sign.
    sealed_secret: Option<Vec<u8>>,
}

struct HeadTime {
    hook_id: i64,
    next_attempt_at: i64,
}

/// Every unpaused hook's oldest queued delivery time, and (with `count`) how many deliveries
/// are queued.
fn heads(conn: &Connection, count: bool) -> Result<(Vec<HeadTime>, Option<i64>), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT w.id, d.next_attempt_at FROM webhooks w
           JOIN webhook_deliveries d ON d.id =
                (SELECT min(id) FROM webhook_deliveries WHERE webhook_id = w.id AND state = 'pending')
          WHERE w.paused_at IS NULL",
    )?;
    let heads = stmt
        .query_map([], |r| {
            Ok(HeadTime {
                hook_id: r.get(0)?,
                next_attempt_at: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    if !count {
        return Ok((heads, None));
    }
    let pending: i64 = conn
        .prepare_cached("SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'")?
        .query_row([], |r| r.get(0))?;
    Ok((heads, Some(pending)))
}

/// Hook `hook_id`'s oldest queued deliveries that are due, at most [`BATCH`], if the hook is
/// not paused.
fn due_batch(conn: &Connection, hook_id: i64) -> Result<Vec<Head>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.delivery_id, d.event, d.body, d.attempts, d.created_at, w.url,
                w.secret_sealed, d.next_attempt_at
           FROM webhooks w JOIN webhook_deliveries d ON d.webhook_id = w.id AND d.state = 'pending'
          WHERE w.id = ?1 AND w.paused_at IS NULL
          ORDER BY d.id LIMIT ?2",
    )?;
    let now = now_ms();
    let mut heads = Vec::new();
    let rows = stmt.query_map(params![hook_id, BATCH], |r| {
        Ok((
            Head {
                id: r.get(0)?,
                delivery_id: r.get(1)?,
                event: r.get(2)?,
                body: r.get(3)?,
                attempts: r.get(4)?,
                created_at: r.get(5)?,
                url: r.get(6)?,
                sealed_secret: r.get(7)?,
            },
            r.get::<_, i64>(8)?,
        ))
    })?;
    for row in rows {
        let (head, next_attempt_at) = row?;
        // In order: one that is waiting for its retry holds back those behind it.
        if next_attempt_at > now {
            break;
        }
        heads.push(head);
    }
    Ok(heads)
}

/// What one attempt came to.
#[derive(Debug, Clone)]
struct Outcome {
    delivered: bool,
    status: Option<u16>,
    error: Option<String>,
}

impl Outcome {
    fn failed(status: Option<u16>, error: String) -> Outcome {
        Outcome {
            delivered: false,
            status,
            error: Some(error.chars().take(MAX_ERROR_CHARS).collect()),
        }
    }
}

enum Recorded {
    Delivered,
    Retry,
    Paused,
}

/// Writes a batch's outcomes to the log: the delivered ones, then the failed one if any
/// (its retry scheduled, or the hook paused).
fn record(
    conn: &Connection,
    hook_id: i64,
    delivered: &[(i64, Option<u16>)],
    failed: Option<&(Head, Outcome)>,
    config: &Webhooks,
    now: i64,
) -> Result<Recorded, StoreError> {
    let mut mark = conn.prepare_cached(
        "UPDATE webhook_deliveries
            SET state = 'delivered', attempts = attempts + 1, last_attempt_at = ?2,
                last_status = ?3, last_error = NULL, delivered_at = ?2
          WHERE id = ?1",
    )?;
    for (id, status) in delivered {
        mark.execute(params![id, now, status])?;
    }
    if !delivered.is_empty() {
        conn.prepare_cached("UPDATE webhooks SET failures = 0 WHERE id = ?1 AND failures != 0")?
            .execute([hook_id])?;
    }
    let Some((head, outcome)) = failed else {
        return Ok(Recorded::Delivered);
    };
    let failures: Option<i64> = conn
        .prepare_cached(
            "UPDATE webhooks SET failures = failures + 1 WHERE id = ?1 RETURNING failures",
        )?
        .query_row([hook_id], |r| r.get(0))
        .optional()?;
    // The hook was deleted while the attempt ran: its rows went with it.
    let Some(failures) = failures else {
        return Ok(Recorded::Retry);
    };
    let pause = failures >= i64::from(config.max_attempts);
    let next = if pause {
        now
    } else {
        now + retry_delay_ms(config, failures)
    };
    conn.prepare_cached(
        "UPDATE webhook_deliveries
            SET attempts = attempts + 1, last_attempt_at = ?2, last_status = ?3,
                last_error = ?4, next_attempt_at = ?5
          WHERE id = ?1",
    )?
    .execute(params![head.id, now, outcome.status, outcome.error, next])?;
    if !pause {
        return Ok(Recorded::Retry);
    }
    let reason = format!(
        "{failures} attempts in a row failed; the last: {}",
        outcome.error.as_deref().unwrap_or("unknown")
    );
    conn.prepare_cached("UPDATE webhooks SET paused_at = ?2, paused_reason = ?3 WHERE id = ?1")?
        .execute(params![hook_id, now, reason])?;
    audit::record(
        conn,
        &audit::Event::new("webhook.paused")
            .failure()
            .actor(None, "webhooks")
            .target(format!("webhook:{hook_id}"))
            .detail(json!({ "failures": failures, "status": outcome.status }))
            .at_ms(now),
    )?;
    Ok(Recorded::Paused)
}

/// The wait before the next attempt after `failures` failures in a row: `first_retry_secs`
/// doubled each time, at most `max_retry_secs`, plus up to a quarter of it at random (so hooks
/// that failed together do not retry together).
pub fn retry_delay_ms(config: &Webhooks, failures: i64) -> i64 {
    let doublings = u32::try_from((failures - 1).clamp(0, 30)).unwrap_or(30);
    let base = config
        .first_retry_secs
        .saturating_mul(1u64 << doublings)
        .min(config.max_retry_secs)
        .saturating_mul(1000);
    let spread = base / 4;
    let jitter = if spread == 0 {
        0
    } else {
        u64::from_le_bytes(crate::auth::crypto::random_bytes::<8>()) % (spread + 1)
    };
    i64::try_from(base + jitter).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            sign("s3cret", 1_700_000_000, br#"{"a":1}"#),
            "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }

    #[test]
    fn retries_double_from_the_first_wait_with_at_most_a_quarter_of_jitter() {
        let config = Webhooks::default();
        for (failures, base) in [(1, 1000), (2, 2000), (3, 4000), (4, 8000), (20, 300_000)] {
            for _ in 0..50 {
                let d = retry_delay_ms(&config, failures);
                assert!((base..=base + base / 4).contains(&d), "{failures}: {d}");
            }
        }
    }
}
