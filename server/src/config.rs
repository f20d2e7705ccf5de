//! Configuration: a TOML file, then `TICKS_*` environment variables, then
//! flags, each overriding the one before; validated before anything starts.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scope {
    /// Post send results and imports.
    Ingest,
    /// Send through the logging proxy (`/graph/...`): it writes the audit
    /// log and spends the business's Graph API quota, so it is a scope of
    /// its own.
    Send,
    /// Read logs, stats, exports.
    Read,
    /// Delete, purge, settings (saved searches); implies every other scope.
    Admin,
}

impl Scope {
    /// The scope as configured and documented.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Send => "send",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Scope> {
        match s.trim() {
            "ingest" => Some(Scope::Ingest),
            "send" => Some(Scope::Send),
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// A configured API token. Only the SHA-256 of the token is kept.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct TokenConfig {
    /// Who it belongs to, for logs and purge records.
    pub(crate) name: String,
    /// Hex SHA-256 of the token (`ticks token` prints one).
    #[serde(default)]
    pub(crate) sha256: Option<String>,
    /// The token in clear (hashed at load; prefer `sha256` in files).
    #[serde(default)]
    pub(crate) token: Option<String>,
    /// Its scopes.
    pub(crate) scopes: Vec<Scope>,
}

/// The configuration file's shape; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    data: Option<PathBuf>,
    listen: Option<String>,
    app_secret: Option<String>,
    verify_token: Option<String>,
    graph_base_url: Option<String>,
    /// The Graph API token the logging proxy sends upstream.
    graph_token: Option<String>,
    /// Forward the sender's own `Authorization` to the Graph API (the sender
    /// then authenticates to Ticks with `X-Ticks-Token`).
    #[serde(default)]
    proxy_trust_client_token: bool,
    #[serde(default)]
    relay_urls: Vec<String>,
    #[serde(default)]
    tokens: Vec<TokenConfig>,
    max_body_mib: Option<usize>,
    /// Most connections served at once (default: a quarter of the
    /// descriptor limit, at most 4096).
    max_connections: Option<usize>,
    /// Most memory held by request bodies not yet authenticated (webhooks
    /// before their signature is checked), in MiB, across all connections.
    unauthenticated_body_mib: Option<usize>,
    /// Entries older than this many days are exported, then purged, daily.
    retention_days: Option<u32>,
    /// Where retention writes its exports.
    retention_export_dir: Option<PathBuf>,
    /// Minutes between checkpoints of a store that changed (default 10).
    checkpoint_minutes: Option<u32>,
    /// A checkpoint as soon as this many records came since the last
    /// (default 1,000,000), so a crash replays at most that many.
    checkpoint_records: Option<u64>,
    /// Hours after a message within which a reply that quotes nothing is
    /// attributed to it (default 24; 0 turns inference off).
    attribution_window_hours: Option<u32>,
    /// The WhatsApp Business Account whose templates `ticks templates sync`
    /// and the periodic sync read.
    waba_id: Option<String>,
    /// Minutes between template syncs from the Graph API while serving
    /// (off when absent or 0; needs `waba_id`).
    template_sync_minutes: Option<u32>,
    /// The Graph API version in template sync URLs (default `v23.0`).
    graph_version: Option<String>,
    /// A rate card file (CSV or TOML, see `GET /v1/report?sections=cost`),
    /// stored as the `default` card at start.
    rate_card: Option<PathBuf>,
    /// The key alert notifications are signed with (`X-Ticks-Signature-256`).
    alert_secret: Option<String>,
    /// Where the built-in alerts (a template paused or turned RED, a
    /// number's quality or messaging limit changed) are notified.
    #[serde(default)]
    alert_notify: Vec<String>,
    /// Alert rules (`[[alert]]` tables, the fields of `POST /v1/alerts`),
    /// stored at start over stored rules of the same name.
    #[serde(default)]
    alert: Vec<ticks_query::AlertRule>,
    /// Where the log lives: `embedded` (default: sled in `data`) or
    /// `clickhouse`.
    backend: Option<String>,
    /// The ClickHouse servers' HTTP URLs (one, or a list tried in turn).
    clickhouse_url: Option<OneOrMany>,
    /// The ClickHouse database (default `ticks`).
    clickhouse_database: Option<String>,
    /// The `remote_servers` cluster to spread the tables over.
    clickhouse_cluster: Option<String>,
    /// The ClickHouse account.
    clickhouse_user: Option<String>,
    /// Its password.
    clickhouse_password: Option<String>,
    /// Seconds a changed entry waits before the settler settles it
    /// (default 10, at least 1; see `ClickHouseConfig::settle_lag`).
    clickhouse_settle_lag_seconds: Option<u64>,
    /// Whether the tables are replicated (`Replicated*MergeTree` through
    /// ZooKeeper; the URLs are the replicas).
    clickhouse_replicated: Option<bool>,
    /// Replicas that confirm an insert before it is acknowledged, on
    /// replicated tables (default 2; 0 or 1: no quorum).
    clickhouse_insert_quorum: Option<u32>,
    /// No longer read (queries read settled entries since schema version
    /// 5); accepted so that a configuration that sets it still loads.
    clickhouse_prefilter_max_rows: Option<u64>,
}

/// A string or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Where the log lives.
#[derive(Clone, Debug)]
pub(crate) enum BackendChoice {
    /// sled, tantivy and roaring bitmaps in the data directory.
    Embedded,
    /// A ClickHouse server or cluster.
    ClickHouse(ticks_query::clickhouse::ClickHouseConfig),
}

/// Values given on the command line or in the environment (clap reads both).
#[derive(Debug, Default, Clone)]
pub(crate) struct Overrides {
    pub(crate) data: Option<PathBuf>,
    pub(crate) listen: Option<String>,
    pub(crate) app_secret: Option<String>,
    pub(crate) verify_token: Option<String>,
    pub(crate) graph_base_url: Option<String>,
    pub(crate) graph_token: Option<String>,
    pub(crate) proxy_trust_client_token: bool,
    pub(crate) relay_urls: Vec<String>,
    pub(crate) tokens: Vec<String>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) checkpoint_records: Option<u64>,
    pub(crate) retention_days: Option<u32>,
    pub(crate) retention_export_dir: Option<PathBuf>,
    pub(crate) backend: Option<String>,
    pub(crate) clickhouse_urls: Vec<String>,
}

/// Validated settings.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) data: PathBuf,
    pub(crate) listen: SocketAddr,
    pub(crate) app_secret: Option<String>,
    pub(crate) verify_token: Option<String>,
    pub(crate) graph_base_url: String,
    /// What the logging proxy sends upstream as `Authorization`.
    pub(crate) graph_token: Option<String>,
    /// See [`FileConfig::proxy_trust_client_token`].
    pub(crate) proxy_trust_client_token: bool,
    pub(crate) relay_urls: Vec<String>,
    /// (name, sha256 of token, scopes)
    pub(crate) tokens: Vec<(String, [u8; 32], Vec<Scope>)>,
    pub(crate) max_body_bytes: usize,
    /// Connections served at once; `None`: derived from the descriptor
    /// limit at start (see `main`).
    pub(crate) max_connections: Option<usize>,
    /// Bytes of unauthenticated request bodies held at once, in total.
    pub(crate) unauthenticated_body_bytes: usize,
    /// Minutes between checkpoints of a store that changed.
    pub(crate) checkpoint_minutes: u32,
    /// Records since the last checkpoint that make one due at once.
    pub(crate) checkpoint_records: u64,
    /// Hours within which an unquoted reply is attributed (0: never).
    pub(crate) attribution_window_hours: u32,
    /// See [`FileConfig::waba_id`].
    pub(crate) waba_id: Option<String>,
    /// See [`FileConfig::template_sync_minutes`]; 0 is off.
    pub(crate) template_sync_minutes: u32,
    /// See [`FileConfig::graph_version`].
    pub(crate) graph_version: String,
    /// The text of the configured rate card, checked (see
    /// [`FileConfig::rate_card`]).
    pub(crate) rate_card: Option<String>,
    /// See [`FileConfig::alert_secret`].
    pub(crate) alert_secret: Option<String>,
    /// See [`FileConfig::alert_notify`].
    pub(crate) alert_notify: Vec<String>,
    /// See [`FileConfig::alert`]; each checked.
    pub(crate) alert_rules: Vec<ticks_query::AlertRule>,
    /// Maximum age in days, with the folder retention exports to.
    pub(crate) retention: Option<(u32, PathBuf)>,
    /// Where the log lives.
    pub(crate) backend: BackendChoice,
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let v = hex::decode(s.trim()).ok()?;
    v.try_into().ok()
}

/// Parses `name:scope1,scope2:token` from a flag or `TICKS_TOKENS` (`;`-separated).
fn parse_token_flag(s: &str) -> Result<(String, [u8; 32], Vec<Scope>)> {
    let mut parts = s.splitn(3, ':');
    let (Some(name), Some(scopes), Some(token)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("token {s:?}: expected name:scopes:token, e.g. crm:ingest,read:s3cret");
    };
    let scopes = scopes
        .split(',')
        .map(|x| {
            Scope::parse(x).with_context(|| {
                format!("token {name}: unknown scope {x:?} (ingest, send, read, admin)")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if token.len() < 16 {
        bail!("token {name}: a token must be at least 16 characters");
    }
    Ok((name.to_string(), sha256(token.as_bytes()), scopes))
}

/// The `clickhouse_*` settings but the URLs, as the file gives them.
struct ClickHouseSettings {
    database: Option<String>,
    cluster: Option<String>,
    user: Option<String>,
    password: Option<String>,
    settle_lag_seconds: Option<u64>,
    replicated: Option<bool>,
    insert_quorum: Option<u32>,
}

/// The backend the settings name, validated.
fn backend_choice(
    backend: Option<String>,
    urls: Vec<String>,
    ch: ClickHouseSettings,
) -> Result<BackendChoice> {
    let ClickHouseSettings {
        database,
        cluster,
        user,
        password,
        settle_lag_seconds,
        replicated,
        insert_quorum,
    } = ch;
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    match backend.as_deref().unwrap_or("embedded") {
        "embedded" => {
            if !urls.is_empty() {
                bail!("clickhouse_url is set but backend is not \"clickhouse\": set backend = \"clickhouse\" to keep the log there");
            }
            Ok(BackendChoice::Embedded)
        }
        "clickhouse" => {
            if urls.is_empty() {
                bail!("backend = \"clickhouse\" needs clickhouse_url (e.g. \"http://127.0.0.1:8123\")");
            }
            for u in &urls {
                if !u.starts_with("http://") && !u.starts_with("https://") {
                    bail!("clickhouse_url: {u:?} must start with http:// or https://");
                }
            }
            let mut config = ticks_query::clickhouse::ClickHouseConfig::new(urls);
            if let Some(db) = database {
                if !plain(&db) {
                    bail!("clickhouse_database: {db:?} must be a plain name (letters, digits, _)");
                }
                config.database = db;
            }
            if let Some(c) = &cluster {
                if !plain(c) {
                    bail!("clickhouse_cluster: {c:?} must be a plain name (letters, digits, _)");
                }
            }
            config.cluster = cluster;
            config.user = user;
            config.password = password;
            if let Some(seconds) = settle_lag_seconds {
                if seconds == 0 {
                    bail!("clickhouse_settle_lag_seconds: must be at least 1 (an insert commits after the server stamps its change)");
                }
                config.settle_lag = std::time::Duration::from_secs(seconds);
            }
            config.replicated = replicated.unwrap_or(false);
            if let Some(quorum) = insert_quorum {
                if !config.replicated {
                    bail!("clickhouse_insert_quorum is set but clickhouse_replicated is not: a quorum is counted in replicas of replicated tables");
                }
                config.insert_quorum = quorum;
            }
            Ok(BackendChoice::ClickHouse(config))
        }
        other => bail!("backend: {other:?} is not one of \"embedded\", \"clickhouse\""),
    }
}

impl Settings {
    /// Loads the file (if any), applies overrides, validates.
    pub(crate) fn load(file: Option<&Path>, over: Overrides) -> Result<Settings> {
        let file_cfg: FileConfig = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("{}: invalid configuration", path.display()))?
            }
            None => FileConfig::default(),
        };
        let listen_text = over
            .listen
            .or(file_cfg.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_string());
        let listen: SocketAddr = listen_text.parse().with_context(|| {
            format!("listen: {listen_text:?} is not an address like 127.0.0.1:8080")
        })?;
        let mut tokens = Vec::new();
        for t in file_cfg.tokens {
            let hash = match (&t.sha256, &t.token) {
                (Some(h), _) => parse_hex32(h)
                    .with_context(|| format!("tokens.{}: sha256 must be 64 hex digits", t.name))?,
                (None, Some(tok)) => sha256(tok.as_bytes()),
                (None, None) => bail!("tokens.{}: give sha256 (or token)", t.name),
            };
            if t.scopes.is_empty() {
                bail!("tokens.{}: at least one scope is needed", t.name);
            }
            tokens.push((t.name, hash, t.scopes));
        }
        for t in &over.tokens {
            for one in t.split(';').filter(|x| !x.trim().is_empty()) {
                tokens.push(parse_token_flag(one.trim())?);
            }
        }
        if tokens.is_empty() && !listen.ip().is_loopback() {
            bail!("listen: {listen} is not a loopback address, and no API token is configured: add tokens before exposing Ticks");
        }
        let app_secret = over
            .app_secret
            .or(file_cfg.app_secret)
            .filter(|s| !s.is_empty());
        if app_secret.is_none() && !listen.ip().is_loopback() {
            bail!("listen: {listen} is not a loopback address, and no app_secret is configured: anyone could post webhooks; set app_secret (TICKS_APP_SECRET) to check Meta's X-Hub-Signature-256");
        }
        let graph_base_url = over
            .graph_base_url
            .or(file_cfg.graph_base_url)
            .unwrap_or_else(|| "https://graph.facebook.com".to_string());
        if !graph_base_url.starts_with("http://") && !graph_base_url.starts_with("https://") {
            bail!("graph_base_url: {graph_base_url:?} must start with http:// or https://");
        }
        let mut relay_urls = file_cfg.relay_urls;
        relay_urls.extend(over.relay_urls);
        for u in &relay_urls {
            if !u.starts_with("http://") && !u.starts_with("https://") {
                bail!("relay_urls: {u:?} must start with http:// or https://");
            }
        }
        let max_body_mib = file_cfg.max_body_mib.unwrap_or(8);
        if !(3..=256).contains(&max_body_mib) {
            bail!("max_body_mib: must be between 3 (Meta sends up to 3 MB) and 256, got {max_body_mib}");
        }
        let max_connections = over.max_connections.or(file_cfg.max_connections);
        if max_connections == Some(0) {
            bail!("max_connections: must be at least 1");
        }
        let unauthenticated_body_mib = file_cfg.unauthenticated_body_mib.unwrap_or(64);
        if !(4..=4096).contains(&unauthenticated_body_mib) {
            bail!("unauthenticated_body_mib: must be between 4 (one of Meta's webhooks) and 4096, got {unauthenticated_body_mib}");
        }
        let checkpoint_minutes = file_cfg.checkpoint_minutes.unwrap_or(10);
        if checkpoint_minutes == 0 {
            bail!("checkpoint_minutes: must be at least 1");
        }
        let checkpoint_records = over
            .checkpoint_records
            .or(file_cfg.checkpoint_records)
            .unwrap_or(1_000_000);
        if checkpoint_records == 0 {
            bail!("checkpoint_records: must be at least 1");
        }
        let template_sync_minutes = file_cfg.template_sync_minutes.unwrap_or(0);
        if template_sync_minutes > 0 && file_cfg.waba_id.is_none() {
            bail!("template_sync_minutes: set waba_id too (whose templates to read)");
        }
        let attribution_window_hours = file_cfg.attribution_window_hours.unwrap_or(24);
        if attribution_window_hours > 24 * 90 {
            bail!(
                "attribution_window_hours: at most 2160 (90 days), got {attribution_window_hours}"
            );
        }
        for rule in &file_cfg.alert {
            rule.validate()
                .map_err(|e| anyhow::anyhow!("alert {:?}: {e}", rule.name))?;
        }
        let alert_rules = file_cfg.alert.clone();
        let rate_card = match &file_cfg.rate_card {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("rate_card: {}", path.display()))?;
                ticks_query::RateCard::parse("default", &text)
                    .map_err(|e| anyhow::anyhow!("rate_card: {}: {e}", path.display()))?;
                Some(text)
            }
            None => None,
        };
        let retention = match (
            over.retention_days.or(file_cfg.retention_days),
            over.retention_export_dir.or(file_cfg.retention_export_dir),
        ) {
            (None, _) => None,
            (Some(0), _) => bail!("retention_days: must be at least 1"),
            (Some(_), None) => bail!(
                "retention_days is set but retention_export_dir is not: retention exports entries before it purges them"
            ),
            (Some(days), Some(dir)) => Some((days, dir)),
        };
        let backend = backend_choice(
            over.backend.or(file_cfg.backend),
            if over.clickhouse_urls.is_empty() {
                match file_cfg.clickhouse_url {
                    Some(OneOrMany::One(u)) => vec![u],
                    Some(OneOrMany::Many(v)) => v,
                    None => Vec::new(),
                }
            } else {
                over.clickhouse_urls
            },
            ClickHouseSettings {
                database: file_cfg.clickhouse_database,
                cluster: file_cfg.clickhouse_cluster,
                user: file_cfg.clickhouse_user,
                password: file_cfg
                    .clickhouse_password
                    .or_else(|| std::env::var("TICKS_CLICKHOUSE_PASSWORD").ok()),
                settle_lag_seconds: file_cfg.clickhouse_settle_lag_seconds,
                replicated: file_cfg.clickhouse_replicated,
                insert_quorum: file_cfg.clickhouse_insert_quorum,
            },
        )?;
        if file_cfg.clickhouse_prefilter_max_rows.is_some() {
            tracing::warn!("clickhouse_prefilter_max_rows is no longer used: queries read settled entries (see README, ClickHouse)");
        }
        Ok(Settings {
            backend,
            retention,
            data: over
                .data
                .or(file_cfg.data)
                .unwrap_or_else(|| PathBuf::from("ticks-data")),
            listen,
            app_secret,
            verify_token: over
                .verify_token
                .or(file_cfg.verify_token)
                .filter(|s| !s.is_empty()),
            graph_base_url: graph_base_url.trim_end_matches('/').to_string(),
            graph_token: over
                .graph_token
                .or(file_cfg.graph_token)
                .filter(|s| !s.is_empty()),
            proxy_trust_client_token: over.proxy_trust_client_token
                || file_cfg.proxy_trust_client_token,
            max_connections,
            unauthenticated_body_bytes: unauthenticated_body_mib * 1024 * 1024,
            checkpoint_minutes,
            checkpoint_records,
            attribution_window_hours,
            waba_id: file_cfg.waba_id.filter(|w| !w.trim().is_empty()),
            template_sync_minutes,
            graph_version: file_cfg.graph_version.unwrap_or_else(|| "v23.0".into()),
            rate_card,
            alert_secret: file_cfg.alert_secret.filter(|s| !s.is_empty()),
            alert_notify: file_cfg.alert_notify.clone(),
            alert_rules,
            relay_urls,
            tokens,
            max_body_bytes: max_body_mib * 1024 * 1024,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile_dir();
        let path = dir.join("ticks.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\ndata = \"/tmp/x\"\n").expect("write");
        let s = Settings::load(
            Some(&path),
            Overrides {
                listen: Some("127.0.0.1:9100".into()),
                ..Default::default()
            },
        )
        .expect("valid");
        assert_eq!(s.listen.port(), 9100);
        assert_eq!(s.data, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn exposing_without_tokens_is_refused() {
        let err = Settings::load(
            None,
            Overrides {
                listen: Some("0.0.0.0:8080".into()),
                ..Default::default()
            },
        )
        .expect_err("refused");
        assert!(err.to_string().contains("no API token"));
        let ok = Settings::load(
            None,
            Overrides {
                listen: Some("0.0.0.0:8080".into()),
                tokens: vec!["crm:ingest,read:0123456789abcdef".into()],
                app_secret: Some("meta-app-secret".into()),
                ..Default::default()
            },
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn exposing_without_an_app_secret_is_refused() {
        let err = Settings::load(
            None,
            Overrides {
                listen: Some("0.0.0.0:8080".into()),
                tokens: vec!["crm:ingest,read:0123456789abcdef".into()],
                ..Default::default()
            },
        )
        .expect_err("refused");
        assert!(err.to_string().contains("no app_secret"), "{err}");
        // On loopback the signature stays optional (a local test setup).
        assert!(Settings::load(None, Overrides::default()).is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile_dir();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "colour = 1\n").expect("write");
        let err = format!(
            "{:#}",
            Settings::load(Some(&path), Overrides::default()).expect_err("refused")
        );
        assert!(err.contains("colour"), "{err}");
        let err = Settings::load(
            None,
            Overrides {
                tokens: vec!["crm:write:0123456789abcdef".into()],
                ..Default::default()
            },
        )
        .expect_err("refused");
        assert!(err.to_string().contains("unknown scope"), "{err}");
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ticks-config-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }
}
