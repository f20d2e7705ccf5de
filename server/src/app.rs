//! The running server's shared state, and who a request's token says the
//! caller is.

use crate::config::{sha256, Scope, Settings};
use crate::error::ApiError;
use crate::metrics::Metrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use subtle::ConstantTimeEq;
use ticks_query::Backend;

/// The HTTP client of the logging proxy.
fn proxy_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Shared state of the running server.
pub(crate) struct App {
    pub(crate) settings: Settings,
    /// Bytes of request bodies held before they are authenticated, across
    /// all connections (see [`read_unauthenticated_body`]).
    pub(crate) unauthenticated: Arc<tokio::sync::Semaphore>,
    /// Where the log lives, once it is open.
    store: OnceLock<Arc<dyn Backend>>,
    ready: AtomicBool,
    pub(crate) metrics: Metrics,
    /// HTTP client of the logging proxy.
    pub(crate) proxy: reqwest::Client,
    /// The webhook relays, once started.
    pub(crate) relays: OnceLock<crate::relay::Relays>,
    /// The alert rules and their notifier, once loaded.
    pub(crate) alerts: OnceLock<Arc<crate::alert_service::AlertService>>,
}

impl App {
    pub(crate) fn new(settings: Settings) -> App {
        App {
            unauthenticated: Arc::new(tokio::sync::Semaphore::new(
                settings.unauthenticated_body_bytes,
            )),
            proxy: proxy_client(),
            relays: OnceLock::new(),
            alerts: OnceLock::new(),
            settings,
            store: OnceLock::new(),
            ready: AtomicBool::new(false),
            metrics: Metrics::default(),
        }
    }

    /// Installs the opened store; the API answers 503 until then.
    pub(crate) fn set_backend(&self, backend: Arc<dyn Backend>) {
        let _ = self.store.set(backend);
    }

    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub(crate) fn store(&self) -> Result<Arc<dyn Backend>, ApiError> {
        self.store
            .get()
            .cloned()
            .ok_or(ApiError::Unavailable("the store is still opening".into()))
    }

    pub(crate) fn store_if_open(&self) -> Option<&dyn Backend> {
        self.store.get().map(|b| &**b)
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Checks the bearer token for a scope; returns who it is. With no
    /// tokens configured (loopback only) everyone is `local`.
    pub(crate) fn authorize(
        &self,
        req_headers: &hyper::HeaderMap,
        scope: Scope,
    ) -> Result<String, ApiError> {
        self.authorize_token(bearer_token(req_headers), scope)
    }

    /// Checks a presented token (however it was carried) for a scope.
    pub(crate) fn authorize_token(
        &self,
        presented: Option<&str>,
        scope: Scope,
    ) -> Result<String, ApiError> {
        if self.settings.tokens.is_empty() {
            return Ok("local".into());
        }
        let presented = presented.ok_or(ApiError::Unauthorized)?;
        let digest = sha256(presented.trim().as_bytes());
        // Compare against every token, always, in constant time.
        let mut found: Option<&(String, [u8; 32], Vec<Scope>)> = None;
        for t in &self.settings.tokens {
            if bool::from(t.1.ct_eq(&digest)) {
                found = Some(t);
            }
        }
        let (name, _, scopes) = found.ok_or(ApiError::Unauthorized)?;
        if scopes.contains(&scope) || scopes.contains(&Scope::Admin) {
            Ok(name.clone())
        } else {
            Err(ApiError::Forbidden(format!(
                "token {name:?} lacks the {} scope",
                scope.name()
            )))
        }
    }
}

/// The token of an `Authorization: Bearer ...` header. The scheme is
/// matched without regard to case (RFC 7235 section 2.1).
pub(crate) fn bearer_token(headers: &hyper::HeaderMap) -> Option<&str> {
    let value = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}
