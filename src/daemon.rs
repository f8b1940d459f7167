//! The daemon's lifecycle: provision, open the store, bind, announce readiness, serve, drain.
//!
//! [`run`] is the one entry point shared by `roost serve` and the tests. It owns the root of
//! the shutdown signal: every listener, connection and background task below it selects on
//! the token it is given, and the whole drain is bounded by `shutdown_grace_secs`. Signal
//! handling for SIGTERM/SIGINT belongs to the caller; SIGHUP (reload) is handled here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, AppState, Shared};
use crate::config::Config;
use crate::edge::listener::OpenConnections;
use crate::edge::listener::{self, ConnLimits, Listener};
use crate::edge::per_ip::{self, PerIpLimit};
use crate::edge::policy::EdgePolicy;
use crate::edge::trust::CaCertificate;
use crate::edge::{local_ca, tls};
use crate::limits::{self, Limiter};
use crate::livekit::{self, LiveKit};
use crate::metrics::Metrics;
use crate::ops::lock::DataDirLock;
use crate::ops::pi::SysRoot;
use crate::ops::vitals::{self, Vitals};
use crate::ops::{notify, provision};
use crate::store::{Store, StoreOptions};

/// Connections the internal listener serves at once, apart from the public budget, so
/// monitoring still works when the public listeners are saturated.
const INTERNAL_MAX_CONNECTIONS: usize = 64;
/// The plain-HTTP listener only redirects and serves `/ca.crt`; it gets its own small budget
/// (never more than `max_connections`) so it cannot starve HTTPS clients.
const PLAIN_HTTP_MAX_CONNECTIONS: usize = 256;
/// How often local-CA mode checks whether the server certificate needs re-issuing.
const RENEWAL_CHECK_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// The addresses actually bound (ports may differ from the configuration when it asks for 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub https: SocketAddr,
    pub http: Option<SocketAddr>,
    pub internal: SocketAddr,
}

/// Runs the daemon until `shutdown` is cancelled, then drains and returns.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = Arc::new(config);
    // The allocator settings (`ops::memory::configure`) were made by `cli::serve`, before the
    // runtime's threads existed.
    notify::status("provisioning");
    let provisioned = provision::provision(&config).context("preparing the data directory")?;
    for path in &provisioned.created {
        tracing::info!(path = %path.display(), "created");
    }
    if let Some(ca) = &provisioned.ca {
        tracing::info!(fingerprint = %ca.ca_fingerprint_sha256, server_cert = ?ca.server, "local CA ready");
    }
    // Held until this function returns: one daemon per data dir, and no restore under it.
    let data_dir = config.data_dir().to_path_buf();
    let _lock = tokio::task::spawn_blocking(move || DataDirLock::acquire(&data_dir))
        .await
        .context("taking the data-dir lock")??;

    let resolver = tls::CertResolver::new(load_certificate(&config)?);
    let acceptor = TlsAcceptor::from(tls::server_config(resolver.clone()));

    notify::status("opening database");
    let metrics = Arc::new(Metrics::new());
    let batch_sizes = metrics.db_write_batch_size.clone();
    let store = Store::open(
        &config.db_path(),
        StoreOptions {
            read_connections: config.storage.read_connections,
            max_write_batch: config.storage.max_write_batch,
            backups_dir: config.backups_dir(),
            batch_observer: Some(Arc::new(move |n| batch_sizes.observe(n as f64))),
            // The session cache's tables, and API keys for the gateway's revocation.
            watched_tables: crate::gateway::WATCHED_TABLES,
        },
    )
    .with_context(|| format!("opening the database {}", config.db_path().display()))?;
    tracing::info!(schema_version = store.schema_version(), "database ready");

    let auth = match crate::auth::AuthState::start(&config, &store, &metrics).await {
        Ok(a) => a,
        Err(e) => {
            let _ = store.close().await;
            return Err(e.context("preparing authentication"));
        }
    };

    let result = serve(
        config.clone(),
        store.clone(),
        metrics,
        auth,
        resolver,
        acceptor,
        shutdown,
    )
    .await;
    // Whatever happened above, flush the writer and checkpoint the WAL before returning.
    if let Err(e) = store.close().await {
        tracing::warn!(error = %e, "closing the database");
    }
    tracing::info!("stopped");
    result
}

async fn serve(
    config: Arc<Config>,
    store: Store,
    metrics: Arc<Metrics>,
    auth: Arc<crate::auth::AuthState>,
    resolver: Arc<tls::CertResolver>,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let bind = |what: &str, addr: SocketAddr| {
        listener::bind(addr).with_context(|| format!("cannot listen on {addr} ({what})"))
    };
    let https_tcp = bind("server.https_addr", config.https_addr())?;
    let http_tcp = config
        .http_addr()
        .map(|a| bind("server.http_addr", a))
        .transpose()?;
    let internal_tcp = bind("server.internal_addr", config.internal_addr())?;
    let bound = Bound {
        https: https_tcp.local_addr()?,
        http: http_tcp.as_ref().map(|l| l.local_addr()).transpose()?,
        internal: internal_tcp.local_addr()?,
    };

    let machine_ips = local_ca::machine_ips();
    let public_policy = EdgePolicy::public(&config, bound.https.port(), &machine_ips);
    let internal_policy = EdgePolicy::internal(&public_policy);
    let ca = if config.local_ca_mode() {
        let path = local_ca::LocalCaFiles::in_dir(&config.tls_dir()).ca_cert;
        CaCertificate::local(
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
    } else {
        CaCertificate::none()
    };
    let open = (
        OpenConnections::default(),
        OpenConnections::default(),
        OpenConnections::default(),
    );
    let mut counted = vec![("https", open.0.clone())];
    if http_tcp.is_some() {
        counted.push(("http", open.1.clone()));
    }
    counted.push(("internal", open.2.clone()));
    let dir = config.data_dir().to_path_buf();
    let first = tokio::task::spawn_blocking(move || Vitals::measure(&dir, &SysRoot::default()))
        .await
        .context("measuring the machine's health")?;
    let vitals = Arc::new(Vitals::new(
        &config,
        &metrics,
        counted,
        SysRoot::default(),
        first,
    ));
    // Webhook secrets are stored sealed; any an older version stored in the clear are sealed
    // now, before the worker sends or a handler reads them.
    let sealer = Arc::new(
        crate::integrations::sealing::Sealer::load(&config)
            .context("loading the webhook secrets key")?,
    );
    let s = sealer.clone();
    let sealed = store
        .write(move |conn| crate::integrations::sealing::seal_clear_secrets(conn, &s))
        .await
        .context("sealing webhook secrets stored in the clear")?;
    if sealed > 0 {
        tracing::info!(
            webhooks = sealed,
            "sealed webhook secrets stored in the clear"
        );
    }
    let integrations = Arc::new(crate::integrations::Integrations::new(
        store.clone(),
        &config.webhooks,
        sealer,
        ca.pem(),
        &metrics,
    ));
    let (alerts, alerter) = limits::alerts::alerter(
        &config.alerts,
        config.hostname(),
        &metrics,
        Some(integrations.alert_hook()),
    );
    auth.report_failures_to(alerts.clone());
    let limiter = Arc::new(Limiter::new(
        &config.rate_limits,
        limits::MonotonicClock::new(),
        &metrics,
        alerts.clone(),
    ));
    let runtime_directory = std::env::var("RUNTIME_DIRECTORY").ok();
    let livekit = LiveKit::new(
        config.clone(),
        &metrics,
        livekit::runtime_dir(&config, runtime_directory.as_deref()),
        shutdown.clone(),
    );
    let gateway =
        crate::gateway::Gateway::start(&config, store.clone(), &metrics, shutdown.clone())
            .await
            .context("preparing the realtime gateway")?;
    let (files_config, measured) = (config.clone(), vitals.clone());
    let files = Arc::new(
        tokio::task::spawn_blocking(move || {
            crate::files::Files::open(&files_config, move || measured.disk_low())
        })
        .await
        .context("preparing the attachment store")?
        .context("preparing the attachment store")?,
    );
    let retention_clock = auth.clock.clone();
    let events = {
        let (gateway, integrations) = (gateway.clone(), integrations.clone());
        let notices = gateway.clone();
        crate::chat::EventSink::new(
            move |events| {
                // Webhook deliveries the events queued, in their transaction, are sent by the
                // worker this wakes.
                if !events.is_empty() {
                    integrations.wake();
                }
                gateway.publish(events);
            },
            move |batch| notices.notify(batch),
        )
    };
    let chat_metrics = crate::chat::ChatMetrics::register(&metrics);
    let state = AppState::new(Shared {
        config: config.clone(),
        store: store.clone(),
        metrics,
        edge: public_policy,
        ca,
        vitals: vitals.clone(),
        auth,
        limiter: limiter.clone(),
        alerts,
        livekit: livekit.clone(),
        gateway: gateway.clone(),
        files: files.clone(),
        backup_runs: Arc::new(crate::ops::backup_runs::BackupRuns::new(shutdown.clone())),
        integrations: integrations.clone(),
        events,
        chat_metrics,
    });
    let internal_state = AppState::new(Shared {
        edge: internal_policy,
        ..Shared::clone(&state)
    });

    let limits = ConnLimits {
        tls_handshake: Duration::from_secs(config.limits.tls_handshake_timeout_secs),
        header_read: Duration::from_secs(config.limits.header_read_timeout_secs),
        idle: Duration::from_secs(config.limits.idle_timeout_secs),
    };
    // At a listener's cap, new clients wait in the kernel's backlog rather than being dropped.
    // Each accept loop holds one permit while it waits in accept(), so budgets are per listener.
    let https_permits = Arc::new(Semaphore::new(config.server.max_connections));
    let mut listeners = vec![Listener {
        name: "https",
        tcp: https_tcp,
        tls: Some(acceptor),
        router: api::router(state.clone()),
        limits,
        permits: https_permits,
        open: open.0,
        per_ip: Some(PerIpLimit::new(
            config.server.max_connections_per_ip,
            config.trusted_proxies(),
            per_ip::on_link_prefixes(&machine_ips),
        )),
    }];
    if let Some(tcp) = http_tcp {
        listeners.push(Listener {
            name: "http",
            tcp,
            tls: None,
            router: api::redirect_router(state.clone()),
            limits,
            permits: Arc::new(Semaphore::new(
                config
                    .server
                    .max_connections
                    .min(PLAIN_HTTP_MAX_CONNECTIONS),
            )),
            open: open.1,
            per_ip: Some(PerIpLimit::new(
                config.server.max_connections_per_ip,
                config.trusted_proxies(),
                per_ip::on_link_prefixes(&machine_ips),
            )),
        });
    }
    listeners.push(Listener {
        name: "internal",
        tcp: internal_tcp,
        tls: None,
        router: api::internal_router(internal_state),
        limits,
        permits: Arc::new(Semaphore::new(INTERNAL_MAX_CONNECTIONS)),
        open: open.2,
        // Loopback only: every client is this machine.
        per_ip: None,
    });

    let connections = TaskTracker::new();
    let background = TaskTracker::new();
    let stop_accepting = shutdown.child_token();
    for l in listeners {
        background.spawn(l.serve(stop_accepting.clone(), connections.clone()));
    }
    background.spawn(reload_on_sighup(
        config.clone(),
        resolver.clone(),
        limiter.clone(),
        livekit.clone(),
        shutdown.clone(),
    ));
    background.spawn(limiter.run_pruner(shutdown.clone()));
    if let Some(alerter) = alerter {
        background.spawn(alerter.run(shutdown.clone()));
    }
    // Not on `background`: stopping LiveKit may take its whole drain grace, waited for below.
    let supervisor = tokio::spawn(livekit::supervisor::run(livekit.clone(), bound.internal));
    let pid_file = PidFile::write(&config);
    if config.local_ca_mode() {
        background.spawn(renew_certificates(
            config.clone(),
            resolver,
            shutdown.clone(),
        ));
    }
    background.spawn(vitals::monitor(vitals, shutdown.clone()));
    background.spawn(crate::ops::memory::trim_periodically(shutdown.clone()));
    background.spawn(gateway.clone().run_gap_repair());
    background.spawn(gateway.clone().run_revalidation(state.auth.clone()));
    background.spawn(gateway.clone().run_call_events(livekit.clone()));
    background.spawn(crate::chat::call_log::run(
        store.clone(),
        state.events.clone(),
        livekit.clone(),
        config.clone(),
        shutdown.clone(),
    ));
    // Deliveries queued before a restart (or a `kill -9`) are sent from here on.
    background.spawn(integrations.clone().run(shutdown.clone()));
    background.spawn(crate::integrations::calls::run(
        integrations,
        livekit.clone(),
        shutdown.clone(),
    ));
    background.spawn(crate::chat::retention::run(
        store.clone(),
        files,
        config.clone(),
        retention_clock,
        shutdown.clone(),
    ));
    if let Some(interval) = notify::watchdog_interval() {
        background.spawn(pet_watchdog(store.clone(), interval, shutdown.clone()));
    }

    tracing::info!(
        https = %bound.https,
        http = %bound.http.map(|a| a.to_string()).unwrap_or_else(|| "disabled".into()),
        internal = %bound.internal,
        "listening"
    );
    notify::ready(&format!("serving https on {}", bound.https));

    shutdown.cancelled().await;
    notify::stopping();
    let grace = config.shutdown_grace();
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: finishing in-flight requests"
    );
    background.close();
    connections.close();
    // Gateway sessions (upgraded, so no longer HTTP connections) close with 1001 on the
    // same signal; both drains share the grace period.
    if tokio::time::timeout(grace, async {
        connections.wait().await;
        gateway.wait_sessions().await;
    })
    .await
    .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "shutdown grace period over; closing the remaining connections"
        );
    }
    // Background tasks all select on `shutdown`; they end promptly.
    let _ = tokio::time::timeout(Duration::from_secs(2), background.wait()).await;
    // Proxied call signalling ends on the shutdown signal; LiveKit has been stopping since it
    // fired (SIGTERM, drain grace, SIGTERM, SIGKILL), so this waits at most the rest of that.
    let _ = tokio::time::timeout(Duration::from_secs(2), livekit.wait_proxy_sessions()).await;
    let livekit_stop = Duration::from_secs(config.livekit.drain_grace_secs)
        + 2 * livekit::supervisor::FORCE_WAIT
        + Duration::from_secs(2);
    if tokio::time::timeout(livekit_stop, supervisor)
        .await
        .is_err()
    {
        tracing::error!("the livekit supervisor did not finish stopping in time");
    }
    drop(pid_file);
    Ok(())
}

/// Where the running daemon records its pid, for `roost livekit rotate-keys` to signal it.
pub fn pid_file(config: &Config) -> std::path::PathBuf {
    config.data_dir().join("roost.pid")
}

/// The pid file, removed again when the daemon stops.
struct PidFile(Option<std::path::PathBuf>);

impl PidFile {
    fn write(config: &Config) -> PidFile {
        let path = pid_file(config);
        match std::fs::write(&path, format!("{}\n", std::process::id())) {
            Ok(()) => PidFile(Some(path)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the pid file; `roost livekit rotate-keys` will not find the daemon");
                PidFile(None)
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The certificate to serve: the local CA's server certificate or the operator's files.
fn load_certificate(config: &Config) -> anyhow::Result<Arc<rustls::sign::CertifiedKey>> {
    let (cert, key) = if config.local_ca_mode() {
        let files = local_ca::LocalCaFiles::in_dir(&config.tls_dir());
        (files.server_cert, files.server_key)
    } else {
        (
            config.tls.cert_file.clone().into(),
            config.tls.key_file.clone().into(),
        )
    };
    Ok(tls::load_certified_key(&cert, &key)?)
}

/// SIGHUP: re-read certificates (re-issuing from the local CA if due) and the configuration
/// file's `[rate_limits]`; LiveKit re-reads its keys (restarting only if they changed) and looks
/// for a missing binary. Open connections keep their session; new handshakes get the new
/// certificate. A bad certificate keeps the old one; a configuration with any problem keeps
/// the old limits and logs every problem. Other configuration changes need a restart.
async fn reload_on_sighup(
    config: Arc<Config>,
    resolver: Arc<tls::CertResolver>,
    limiter: Arc<Limiter>,
    livekit: Arc<LiveKit>,
    shutdown: CancellationToken,
) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; certificate reload disabled");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {}
            _ = shutdown.cancelled() => return,
        }
        notify::status("reloading");
        livekit.request_reload();
        let reloaded = (|| -> anyhow::Result<()> {
            if config.local_ca_mode() {
                provision::ensure_certificates(&config)?;
            }
            resolver.replace(load_certificate(&config)?);
            Ok(())
        })();
        match reloaded {
            Ok(()) => tracing::info!("certificates reloaded"),
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "certificate reload failed; still serving the previous certificate"
            ),
        }
        reload_rate_limits(&config, &limiter);
        notify::status("serving");
    }
}

/// Re-reads the configuration the daemon started from (same file, same profile, environment
/// overrides included) and applies its `[rate_limits]`.
fn reload_rate_limits(config: &Config, limiter: &Limiter) {
    match crate::config::load(&config.load_options()) {
        Ok(new) => {
            let changed = limiter.reconfigure(&new.rate_limits);
            tracing::info!(changed = changed.join(","), "rate limits reloaded");
        }
        Err(problems) => {
            for p in &problems.0 {
                tracing::error!(problem = %p, "configuration reload: problem");
            }
            tracing::error!(
                problems = problems.0.len(),
                "configuration reload failed; keeping the previous rate limits"
            );
        }
    }
}

/// Local-CA mode: re-issue the server certificate well before it expires.
async fn renew_certificates(
    config: Arc<Config>,
    resolver: Arc<tls::CertResolver>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(RENEWAL_CHECK_INTERVAL);
    tick.tick().await; // the first tick is immediate; startup already checked
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match provision::ensure_certificates(&config) {
            Ok(outcome) if !matches!(outcome.server, local_ca::Issued::Unchanged) => {
                match load_certificate(&config) {
                    Ok(key) => {
                        resolver.replace(key);
                        tracing::info!(server_cert = ?outcome.server, "server certificate re-issued");
                    }
                    Err(e) => tracing::error!(
                        error = format!("{e:#}"),
                        "loading the re-issued certificate"
                    ),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "checking the server certificate"),
        }
    }
}

/// Pets the systemd watchdog only while the runtime and the database writer both answer: a
/// hung writer stops the pings and systemd restarts the service.
async fn pet_watchdog(store: Store, interval: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match tokio::time::timeout(interval, store.ping_writer()).await {
            Ok(Ok(())) => notify::watchdog(),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "database writer failed; not petting the watchdog")
            }
            Err(_) => tracing::error!("database writer is not answering; not petting the watchdog"),
        }
    }
}
