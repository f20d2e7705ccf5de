//! `ticks serve`: serve the API, the webhook endpoint and the web page.

use super::common::{open_store, Place};
use crate::{app, config, http, relay, retention};
use anyhow::{Context, Result};
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use ticks_query::Backend;

/// The arguments of `ticks serve`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "TICKS_LISTEN")]
    pub(crate) listen: Option<String>,
    /// Fill an empty store with generated realistic data.
    #[arg(long)]
    pub(crate) demo: bool,
    /// Meta app secret, to check X-Hub-Signature-256.
    #[arg(long, env = "TICKS_APP_SECRET", hide_env_values = true)]
    pub(crate) app_secret: Option<String>,
    /// Token for Meta's GET /webhook verification.
    #[arg(long, env = "TICKS_VERIFY_TOKEN", hide_env_values = true)]
    pub(crate) verify_token: Option<String>,
    /// API token as name:scopes:token (scopes: ingest,send,read,admin); repeatable.
    #[arg(long = "token", env = "TICKS_TOKENS", hide_env_values = true)]
    pub(crate) tokens: Vec<String>,
    /// Graph API base URL for the logging proxy.
    #[arg(long, env = "TICKS_GRAPH_BASE_URL")]
    pub(crate) graph_base_url: Option<String>,
    /// The Graph API token the logging proxy sends upstream.
    #[arg(long, env = "TICKS_GRAPH_TOKEN", hide_env_values = true)]
    pub(crate) graph_token: Option<String>,
    /// The logging proxy forwards the sender's own Authorization header
    /// to the Graph API (the sender then authenticates to Ticks with
    /// X-Ticks-Token).
    #[arg(long, env = "TICKS_PROXY_TRUST_CLIENT_TOKEN")]
    pub(crate) proxy_trust_client_token: bool,
    /// Most connections served at once (default: a quarter of the
    /// descriptor limit, at most 4096).
    #[arg(long, env = "TICKS_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,
    /// A checkpoint as soon as this many records came since the last
    /// (default 1,000,000), so an open after a crash replays at most that.
    #[arg(long, env = "TICKS_CHECKPOINT_RECORDS")]
    pub(crate) checkpoint_records: Option<u64>,
    /// Downstream URL to relay webhooks to; repeatable.
    #[arg(long = "relay-url", env = "TICKS_RELAY_URLS", value_delimiter = ',')]
    pub(crate) relay_urls: Vec<String>,
    /// Export, then purge, entries older than this many days (daily).
    #[arg(long, env = "TICKS_RETENTION_DAYS")]
    pub(crate) retention_days: Option<u32>,
    /// Where retention writes its exports.
    #[arg(long, env = "TICKS_RETENTION_EXPORT_DIR")]
    pub(crate) retention_export_dir: Option<PathBuf>,
    /// Where the log lives: `embedded` (the data directory) or `clickhouse`.
    #[arg(long, env = "TICKS_BACKEND")]
    pub(crate) backend: Option<String>,
    /// The ClickHouse servers' HTTP URLs, tried in turn (comma-separated).
    #[arg(
        long = "clickhouse-url",
        env = "TICKS_CLICKHOUSE_URL",
        value_delimiter = ','
    )]
    pub(crate) clickhouse_urls: Vec<String>,
}

/// `ticks serve`.
pub(crate) fn run(place: &Place, args: Args) -> Result<()> {
    let Args {
        listen,
        demo,
        app_secret,
        verify_token,
        tokens,
        graph_base_url,
        graph_token,
        proxy_trust_client_token,
        max_connections,
        checkpoint_records,
        relay_urls,
        retention_days,
        retention_export_dir,
        backend,
        clickhouse_urls,
    } = args;
    let settings = config::Settings::load(
        place.config.as_deref(),
        config::Overrides {
            data: place.data.clone(),
            listen,
            app_secret,
            verify_token,
            graph_base_url,
            graph_token,
            proxy_trust_client_token,
            max_connections,
            checkpoint_records,
            relay_urls,
            tokens,
            retention_days,
            retention_export_dir,
            backend,
            clickhouse_urls,
        },
    )?;
    match settings.backend.clone() {
        config::BackendChoice::Embedded => serve(settings, demo),
        config::BackendChoice::ClickHouse(ch) => serve_clickhouse(settings, &ch, demo),
    }
}

/// How often the checkpoint timer looks at how many records came since
/// the last checkpoint.
const CHECKPOINT_LOOK: Duration = Duration::from_secs(5);

/// Raises the soft limit on open descriptors to the hard limit (a server
/// holds one per connection, and sled and tantivy need theirs), and returns
/// the limit now in force, if any.
fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!("could not raise the open-file limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current
}

/// Connections served at once when the configuration does not say: a
/// quarter of the descriptor limit, so that connections can never take the
/// descriptors the store's files, the checkpoint and the relays need.
fn default_max_connections(descriptor_limit: Option<u64>) -> usize {
    descriptor_limit.map_or(4096, |n| (n / 4).clamp(16, 4096) as usize)
}

fn serve(settings: config::Settings, demo: bool) -> Result<()> {
    let data = settings.data.clone();
    let descriptors = raise_descriptor_limit();
    let max_connections = settings
        .max_connections
        .unwrap_or_else(|| default_max_connections(descriptors));
    if let Some(n) = descriptors {
        if max_connections as u64 > n / 2 {
            tracing::warn!(
                max_connections,
                descriptor_limit = n,
                "max_connections is over half the descriptor limit: a connection storm may starve the store of descriptors"
            );
        }
    }
    let store = open_store(&data, &settings)?;
    if settings.app_secret.is_none() {
        tracing::warn!("no app secret configured: webhook signatures are not checked (allowed on loopback only)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listening on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        // The command line finds the server here while it runs (and asks
        // it instead of the store it holds); gone when it stops.
        let _announced = super::remote::announce(&data, addr)?;
        // The server talks to the log through the backend boundary; the
        // embedded store is the backend here, and this function keeps the
        // `Store` itself only for what is the store's own (checkpoints,
        // the text index at start, close).
        let backend: Arc<dyn Backend> = Arc::new(store.clone());
        let relays = start_relays(&backend, &settings);
        let retention_settings = settings.retention.clone();
        let checkpoint_policy = (
            Duration::from_secs(u64::from(settings.checkpoint_minutes) * 60),
            settings.checkpoint_records,
        );
        if let (Some(waba), minutes @ 1..) =
            (settings.waba_id.clone(), settings.template_sync_minutes)
        {
            let source = crate::templates::SyncSource {
                base_url: settings.graph_base_url.clone(),
                token: settings.graph_token.clone(),
                waba,
                version: settings.graph_version.clone(),
                timeout: Duration::from_secs(30),
                attempts: 4,
            };
            crate::templates::spawn_periodic_sync(
                backend.clone(),
                source,
                Duration::from_secs(u64::from(minutes) * 60),
            );
        }
        if let Some(text) = &settings.rate_card {
            crate::rates::store_card(backend.as_ref(), crate::rates::DEFAULT, text)
                .map_err(|e| anyhow::anyhow!("rate_card: {e:?}"))?;
        }
        let mut alert_rules = settings.alert_rules.clone();
        if demo && is_empty(backend.as_ref())? {
            // The demo's alerts view shows rules and what fired, as a
            // team's would after a week.
            alert_rules.extend(demo_alert_rules()?);
        }
        let alert_service = load_alerts(&backend, &settings, &alert_rules)?;
        let app = Arc::new(app::App::new(settings));
        app.set_backend(backend.clone());
        let _ = app.alerts.set(alert_service.clone());
        crate::alert_service::start(alert_service, backend.clone());
        let _ = app.relays.set(relays);
        println!("ticks listening on http://{addr}");
        let _ = std::io::stdout().flush();
        {
            let app = app.clone();
            let store = store.clone();
            let backend = backend.clone();
            tokio::task::spawn_blocking(move || {
                if demo {
                    if let Err(e) = fill_demo(backend.as_ref()) {
                        tracing::error!("demo data: {e:#}");
                    }
                }
                if let Err(e) = store.flush_text() {
                    tracing::error!("full-text index: {e}");
                }
                app.set_ready();
            });
        }
        if let Some((days, dir)) = retention_settings {
            retention::spawn(backend.clone(), days, dir);
        }
        {
            // A checkpoint every `checkpoint_minutes`, or as soon as
            // `checkpoint_records` records came since the last, keeps the
            // next start short, after a crash too: an open replays only
            // what came after the checkpoint (an idle store writes nothing).
            let store = store.clone();
            let (every, records) = checkpoint_policy;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(CHECKPOINT_LOOK);
                let mut last = tokio::time::Instant::now();
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let s = store.clone();
                    let due_by_time = last.elapsed() >= every;
                    let done = tokio::task::spawn_blocking(move || {
                        if due_by_time || s.records_since_checkpoint() >= records {
                            s.checkpoint().map(|()| true)
                        } else {
                            Ok(false)
                        }
                    })
                    .await;
                    match done {
                        Ok(Ok(true)) => last = tokio::time::Instant::now(),
                        Ok(Ok(false)) => {}
                        Ok(Err(e)) => tracing::error!("checkpoint failed: {e}"),
                        Err(e) => tracing::error!("checkpoint task failed: {e}"),
                    }
                }
            });
        }
        http::serve(app, listener, max_connections, shutdown_signal()).await;
        anyhow::Ok(())
    });
    tracing::info!("shutting down: a checkpoint if records came since the last");
    store.close()?;
    result
}

/// `ticks serve` on ClickHouse: nothing of the log is kept here, so any
/// number of these processes can serve one cluster. The schema is created
/// or upgraded first; what the ClickHouse backend does not answer yet is a
/// 501 naming it. Every process loads the alert rules; one evaluates them.
fn serve_clickhouse(
    settings: config::Settings,
    ch: &ticks_query::clickhouse::ClickHouseConfig,
    demo: bool,
) -> Result<()> {
    let descriptors = raise_descriptor_limit();
    let max_connections = settings
        .max_connections
        .unwrap_or_else(|| default_max_connections(descriptors));
    let clickhouse = ticks_query::clickhouse::ClickHouse::open(ch)
        .map_err(|e| anyhow::anyhow!("ClickHouse at {}: {e}", ch.urls.join(", ")))?;
    let schema = clickhouse.schema().clone();
    tracing::info!(
        server_version = %schema.server_version,
        distributed_ddl = schema.distributed_ddl,
        writer_tag = clickhouse.writer_tag(),
        "ClickHouse backend ready"
    );
    if settings.app_secret.is_none() {
        tracing::warn!("no app secret configured: webhook signatures are not checked (allowed on loopback only)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    clickhouse.start_settling();
    let clickhouse = Arc::new(clickhouse);
    {
        // A purge that did not finish erasing (a crash, ClickHouse down
        // midway) finishes now, beside serving.
        let clickhouse = clickhouse.clone();
        std::thread::spawn(move || match clickhouse.resume_purges() {
            Ok(0) => {}
            Ok(n) => tracing::info!("finished erasing {n} purges"),
            Err(e) => tracing::error!("finishing unfinished purges: {e}"),
        });
    }
    let backend: Arc<dyn Backend> = clickhouse;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("listening on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let relays = start_relays(&backend, &settings);
        if let Some(text) = &settings.rate_card {
            crate::rates::store_card(backend.as_ref(), crate::rates::DEFAULT, text)
                .map_err(|e| anyhow::anyhow!("rate_card: {e:?}"))?;
        }
        // Every process loads the deployment's rules; the one that
        // evaluates them (see the backend's alerts) notifies.
        let mut alert_rules = settings.alert_rules.clone();
        let demo = demo && is_empty(backend.as_ref())?;
        if demo {
            alert_rules.extend(demo_alert_rules()?);
        }
        let alert_service = load_alerts(&backend, &settings, &alert_rules)?;
        let app = Arc::new(app::App::new(settings));
        app.set_backend(backend.clone());
        let _ = app.alerts.set(alert_service.clone());
        crate::alert_service::start(alert_service, backend.clone());
        let _ = app.relays.set(relays);
        if demo {
            // Ready once the demo's traffic is in, as on the embedded
            // store: every process of the deployment sees it then.
            let app = app.clone();
            let backend = backend.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = fill_demo(backend.as_ref()) {
                    tracing::error!("demo data: {e:#}");
                }
                app.set_ready();
            });
        } else {
            app.set_ready();
        }
        println!("ticks listening on http://{addr}");
        let _ = std::io::stdout().flush();
        http::serve(app, listener, max_connections, shutdown_signal()).await;
        anyhow::Ok(())
    });
    // The writer answers what is queued before it stops.
    drop(backend);
    result
}

/// The alert rules kept in the backend, with `rules` (the configuration's)
/// stored over them.
fn load_alerts(
    backend: &Arc<dyn Backend>,
    settings: &config::Settings,
    rules: &[ticks_query::AlertRule],
) -> Result<Arc<crate::alert_service::AlertService>> {
    Ok(Arc::new(crate::alert_service::AlertService::load(
        backend.as_ref(),
        rules,
        settings.alert_notify.clone(),
        settings.alert_secret.clone(),
    )?))
}

/// The webhook relay to each configured downstream URL, if any.
fn start_relays(backend: &Arc<dyn Backend>, settings: &config::Settings) -> relay::Relays {
    if settings.relay_urls.is_empty() {
        relay::Relays::none()
    } else {
        relay::start(
            backend.clone(),
            &settings.relay_urls,
            settings.app_secret.clone(),
        )
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Two rules a messaging team starts with, for the demo: Meta's per-user
/// marketing limit as a share of sends, and 429s counted, over a week.
fn demo_alert_rules() -> Result<Vec<ticks_query::AlertRule>> {
    let rules = serde_json::json!([
        {"name": "marketing-limit-131049", "filter": "error_code=131049",
         "measure": "rate", "of": "direction=outbound", "window": "7d", "threshold": 0.005, "min_volume": 100},
        {"name": "rate-limited-429", "filter": "response_code=429",
         "measure": "count", "window": "7d", "threshold": 20},
    ]);
    Ok(serde_json::from_value(rules)?)
}

/// Whether the backend holds no entry (a count, no page).
fn is_empty(backend: &dyn Backend) -> Result<bool> {
    let count = ticks_query::LogQuery {
        limit: 0,
        ..Default::default()
    };
    let page = backend
        .search(&count)
        .map_err(|e| anyhow::anyhow!("counting the entries: {e}"))?;
    Ok(page.total == 0)
}

/// Fills an empty backend with 30 days of generated traffic ending now:
/// the templates' definitions, then the traffic through the import.
fn fill_demo(backend: &dyn Backend) -> Result<()> {
    if !is_empty(backend)? {
        return Ok(());
    }
    let opts =
        ticks_ingest::generate::GeneratorOptions::new(20_000).ending_before(ticks_ingest::now_ms());
    // The definitions first: the demo's messages show the text people read.
    let page = serde_json::to_vec(&ticks_ingest::generate::template_definitions(&opts))?;
    let definitions = ticks_ingest::parse_template_page(&page)?;
    backend
        .add_templates(definitions.templates, opts.start_ms)
        .map_err(|e| anyhow::anyhow!("the demo's templates: {e}"))?;
    let mut data = Vec::new();
    for line in ticks_ingest::generate::Generator::new(opts) {
        data.extend_from_slice(&line);
        data.push(b'\n');
    }
    let report = backend
        .import(
            &mut BufReader::new(&data[..]),
            &ticks_ingest::ImportOptions::default(),
        )
        .map_err(|e| anyhow::anyhow!("the demo's traffic: {e}"))?;
    tracing::info!(
        lines = report.lines,
        stored = report.stored,
        "demo data generated"
    );
    Ok(())
}
