//! The HTTP server: accept loop, routing, authentication, and the one place
//! where errors become HTTP statuses ([`ApiError::into_response`]).

use crate::config::{sha256, Scope, Settings};
use crate::metrics::Metrics;
use crate::{api, ui};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use ticks_engine::Store;
use tokio::net::TcpListener;

/// Response body: whole or streamed.
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

/// How long a client may take to send a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest NDJSON import body over HTTP (bigger files: `ticks import`).
pub(crate) const MAX_IMPORT_BYTES: usize = 512 * 1024 * 1024;

/// Bytes of unauthenticated bodies one connection may hold at once (an
/// HTTP/2 connection carries several requests): two of Meta's largest
/// webhooks.
const CONNECTION_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Most bytes hyper buffers per connection while reading a request.
const CONNECTION_READ_BUFFER: usize = 64 * 1024;

/// Shared state of the running server.
pub(crate) struct App {
    pub(crate) settings: Settings,
    /// Bytes of request bodies held before they are authenticated, across
    /// all connections (see [`read_unauthenticated_body`]).
    unauthenticated: Arc<tokio::sync::Semaphore>,
    store: OnceLock<Store>,
    ready: AtomicBool,
    pub(crate) metrics: Metrics,
    /// HTTP client of the logging proxy.
    pub(crate) proxy: reqwest::Client,
    /// The webhook relays, once started.
    pub(crate) relays: OnceLock<crate::relay::Relays>,
}

impl App {
    pub(crate) fn new(settings: Settings) -> App {
        App {
            unauthenticated: Arc::new(tokio::sync::Semaphore::new(
                settings.unauthenticated_body_bytes,
            )),
            proxy: crate::proxy::client(),
            relays: OnceLock::new(),
            settings,
            store: OnceLock::new(),
            ready: AtomicBool::new(false),
            metrics: Metrics::default(),
        }
    }

    /// Installs the opened store; the API answers 503 until then.
    pub(crate) fn set_store(&self, store: Store) {
        let _ = self.store.set(store);
    }

    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub(crate) fn store(&self) -> Result<&Store, ApiError> {
        self.store
            .get()
            .ok_or(ApiError::Unavailable("the store is still opening".into()))
    }

    pub(crate) fn store_if_open(&self) -> Option<&Store> {
        self.store.get()
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
            Err(ApiError::Forbidden(
                format!("token {name:?} lacks the {scope:?} scope").to_lowercase(),
            ))
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

/// Every way a request can fail. The first group is the caller's (4xx),
/// the rest are ours (5xx).
#[derive(Debug)]
pub(crate) enum ApiError {
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    Unauthorized,
    /// A webhook whose `X-Hub-Signature-256` is missing or wrong.
    BadSignature,
    Forbidden(String),
    NotFound(String),
    MethodNotAllowed,
    TooLarge(usize),
    Unavailable(String),
    /// The request is valid but conflicts with a rule (e.g. export before purge).
    Conflict {
        code: &'static str,
        message: String,
    },
    Internal(String),
}

impl ApiError {
    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// The only mapping from errors to HTTP statuses.
    pub(crate) fn into_response(self) -> Response<Body> {
        let (status, code, message, field) = match self {
            ApiError::BadRequest {
                code,
                message,
                field,
            } => (StatusCode::BAD_REQUEST, code, message, field),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required".into(),
                None,
            ),
            ApiError::BadSignature => (
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "X-Hub-Signature-256 is missing or is not the HMAC-SHA256 of the body with the app secret".into(),
                None,
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m, None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m, None),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this path".into(),
                None,
            ),
            ApiError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is larger than {limit} bytes"),
                None,
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m, None),
            ApiError::Conflict { code, message } => (StatusCode::CONFLICT, code, message, None),
            ApiError::Internal(m) => {
                tracing::error!("internal error: {m}");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", m, None)
            }
        };
        let mut err = serde_json::json!({"code": code, "message": message});
        if let Some(f) = field {
            err["field"] = serde_json::Value::String(f);
        }
        json_response(status, &serde_json::json!({ "error": err }))
    }
}

impl From<ticks_query::QueryError> for ApiError {
    fn from(e: ticks_query::QueryError) -> Self {
        match e {
            ticks_query::QueryError::InvalidParam { param, message } => ApiError::BadRequest {
                code: "invalid_param",
                message: format!("{param}: {message}"),
                field: Some(param),
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ticks_engine::Error> for ApiError {
    fn from(e: ticks_engine::Error) -> Self {
        match e {
            ticks_engine::Error::Closed => ApiError::Unavailable("the store is closed".into()),
            e @ ticks_engine::Error::Unavailable(_) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ticks_ingest::ParseError> for ApiError {
    fn from(e: ticks_ingest::ParseError) -> Self {
        match &e {
            ticks_ingest::ParseError::TooLarge { limit, .. } => ApiError::TooLarge(*limit),
            _ => ApiError::BadRequest {
                code: "invalid_input",
                field: e.field_path().map(String::from),
                message: e.to_string(),
            },
        }
    }
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = Response::new(full(bytes));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub(crate) fn text_response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Reads a whole request body, refusing more than `limit` bytes and clients
/// that take too long.
pub(crate) async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let limited = Limited::new(body, limit);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => Err(ApiError::bad(
            "timeout",
            "the request body took too long to arrive",
        )),
        Ok(Err(e)) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::TooLarge(limit))
            } else {
                Err(ApiError::bad("bad_body", format!("reading the body: {e}")))
            }
        }
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// The unauthenticated-body budget of one connection, put in each of its
/// requests' extensions by [`serve`].
#[derive(Clone)]
pub(crate) struct ConnectionBudget(Arc<tokio::sync::Semaphore>);

/// The budget a body read by [`read_unauthenticated_body`] holds until the
/// request is answered.
pub(crate) struct HeldBody {
    _server: Option<tokio::sync::OwnedSemaphorePermit>,
    _connection: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Reads a body that nothing has authenticated yet (a webhook before its
/// signature is checked). Its bytes count against the server's budget
/// (`unauthenticated_body_mib`) and the connection's while they are held;
/// a body that does not fit is refused with 503 (Meta retries) and its
/// bytes are not read, so a flood of unsigned bodies cannot grow the
/// process.
pub(crate) async fn read_unauthenticated_body(
    app: &App,
    req: Request<Incoming>,
    limit: usize,
) -> Result<(Bytes, HeldBody), ApiError> {
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    let connection = req.extensions().get::<ConnectionBudget>().cloned();
    let mut held = HeldBody {
        _server: None,
        _connection: None,
    };
    let full = || {
        ApiError::Unavailable(
            "too many request bodies are waiting for authentication; retry later".into(),
        )
    };
    let take = |n: usize, held: &mut HeldBody| -> Result<(), ApiError> {
        let n = u32::try_from(n).map_err(|_| ApiError::TooLarge(limit))?;
        if n == 0 {
            return Ok(());
        }
        let server = app
            .unauthenticated
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| full())?;
        match held._server.as_mut() {
            Some(p) => p.merge(server),
            None => held._server = Some(server),
        }
        if let Some(ConnectionBudget(c)) = &connection {
            let mine = c.clone().try_acquire_many_owned(n).map_err(|_| full())?;
            match held._connection.as_mut() {
                Some(p) => p.merge(mine),
                None => held._connection = Some(mine),
            }
        }
        Ok(())
    };
    // A declared length is reserved before a byte is read.
    let reserved = declared.unwrap_or(0);
    take(reserved, &mut held)?;
    let mut body = req.into_body();
    // Copied into one buffer as the frames arrive (sized from the declared
    // length), so the body is held once, not as frames and then again as
    // their concatenation.
    let mut all: Vec<u8> = Vec::with_capacity(reserved);
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|e| ApiError::bad("bad_body", format!("reading the body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                let before = all.len();
                let total = before + data.len();
                if total > limit {
                    return Err(ApiError::TooLarge(limit));
                }
                if total > reserved {
                    take(total - reserved.max(before), &mut held)?;
                }
                all.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Err(_) => {
            return Err(ApiError::bad(
                "timeout",
                "the request body took too long to arrive",
            ))
        }
        Ok(r) => r?,
    }
    let bytes = Bytes::from(all);
    Ok((bytes, held))
}

/// Runs blocking engine work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("a worker failed: {e}")))?
}

pub(crate) fn query_pairs(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

async fn route(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (req.method().clone(), segments.as_slice()) {
        (Method::GET, [""]) | (Method::GET, ["ui", ..]) => Ok(ui::page()),
        (Method::GET, ["assets", name]) => ui::asset(name),
        (Method::GET, ["healthz"]) => Ok(text_response(StatusCode::OK, "text/plain", "ok\n")),
        (Method::GET, ["readyz"]) => Ok(match app.store_if_open().and_then(Store::write_fault) {
            Some(fault) => text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("writes are failing: {fault}\n"),
            ),
            None if app.is_ready() => text_response(StatusCode::OK, "text/plain", "ready\n"),
            None => text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "catching up\n",
            ),
        }),
        (Method::GET, ["metrics"]) => Ok(text_response(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            app.metrics.render(
                app.store_if_open(),
                app.relays
                    .get()
                    .map_or(0, |r| r.backlog(app.store_if_open())),
            ),
        )),
        (Method::GET, ["v1", "openapi.json"]) => Ok(text_response(
            StatusCode::OK,
            "application/json",
            include_str!("../openapi.json"),
        )),
        (Method::GET, ["webhook"]) => api::webhook_verify(&app, &req),
        (Method::POST, ["webhook"]) => api::webhook_post(app, req).await,
        (Method::POST, ["v1", "sends"]) => api::post_sends(app, req).await,
        (Method::POST, ["v1", "import"]) => api::post_import(app, req).await,
        (Method::GET, ["v1", "logs"]) => api::get_logs(app, req).await,
        (Method::GET, ["v1", "logs", id]) => api::get_log(app, &req, id).await,
        (Method::DELETE, ["v1", "logs", id]) => api::delete_log(app, &req, id).await,
        (Method::POST, ["v1", "delete"]) => api::post_delete(app, req).await,
        (Method::GET, ["v1", "messages", wamid]) => api::get_timeline(app, &req, wamid).await,
        (Method::GET, ["v1", "stats"]) => api::get_stats(app, req).await,
        (Method::GET, ["v1", "report"]) => api::get_report(app, req).await,
        (Method::GET, ["v1", "codes"]) => Ok(api::get_codes()),
        (Method::GET, ["v1", "export"]) => api::get_export(app, req).await,
        (Method::GET, ["v1", "receipts"]) => api::get_receipts(app, &req).await,
        (Method::GET, ["v1", "purges"]) => api::get_purges(app, &req).await,
        (Method::GET, ["v1", "relay"]) => {
            app.authorize(req.headers(), Scope::Read)?;
            let list = app
                .relays
                .get()
                .map(|r| r.snapshot(app.store_if_open()))
                .unwrap_or_default();
            Ok(json_response(
                StatusCode::OK,
                &serde_json::json!({ "relays": list }),
            ))
        }
        (_, ["graph", rest @ ..]) if !rest.is_empty() => {
            let rest = rest.join("/");
            crate::proxy::forward(app, req, &rest).await
        }
        (Method::GET, ["v1", "searches"]) => api::list_searches(app, &req).await,
        (Method::POST, ["v1", "searches"]) => api::save_search(app, req).await,
        (Method::DELETE, ["v1", "searches", name]) => api::delete_search(app, &req, name).await,
        (_, ["webhook"]) | (_, ["v1", ..]) | (_, ["healthz" | "readyz" | "metrics"]) => {
            Err(ApiError::MethodNotAllowed)
        }
        _ => Err(ApiError::NotFound(format!("no route for {path}"))),
    }
}

fn route_label(path: &str) -> &'static str {
    let p = path.trim_matches('/');
    match p.split('/').next().unwrap_or("") {
        "webhook" => "webhook",
        "v1" => match p.split('/').nth(1).unwrap_or("") {
            "sends" => "sends",
            "import" => "import",
            "logs" => "logs",
            "messages" => "messages",
            "stats" => "stats",
            "report" => "report",
            "searches" => "searches",
            "delete" => "delete",
            "relay" => "relay",
            "export" => "export",
            _ => "other",
        },
        "" | "ui" | "assets" => "ui",
        "graph" => "proxy",
        _ => "other",
    }
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let start = Instant::now();
    let label = route_label(req.uri().path());
    // Each request runs on its own task: a panic in a handler becomes a 500
    // for that request instead of a dropped connection.
    let response = match tokio::spawn(route(app.clone(), req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::Internal(format!("the handler failed: {e}")).into_response(),
    };
    app.metrics
        .observe_request(label, response.status().as_u16(), start.elapsed());
    response
}

/// Serves until `shutdown` resolves, at most `max_connections` connections
/// at a time: past it, new connections wait in the kernel's accept queue
/// (which costs no descriptor) until one closes, so a storm of idle
/// connections cannot take the descriptors the store needs.
pub(crate) async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let mut warned = false;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                if !warned {
                    tracing::warn!(
                        max_connections,
                        "the connection limit is reached: new connections wait until one closes"
                    );
                    warned = true;
                }
                tokio::select! {
                    s = slots.clone().acquire_owned() => match s {
                        Ok(s) => s,
                        Err(_) => break,
                    },
                    _ = &mut shutdown => break,
                }
            }
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = app.clone();
        app.metrics.connection_opened();
        tokio::spawn(async move {
            let budget =
                ConnectionBudget(Arc::new(tokio::sync::Semaphore::new(CONNECTION_BODY_BYTES)));
            let metrics_app = app.clone();
            let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let app = app.clone();
                req.extensions_mut().insert(budget.clone());
                async move { Ok::<_, Infallible>(handle(app, req).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                // hyper's default lets each connection buffer about 400 KiB
                // of what it reads: 100 connections sending bodies then held
                // 40 MiB outside any budget. 64 KiB still fits any header.
                .max_buf_size(CONNECTION_READ_BUFFER);
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!("connection ended: {e}");
            }
            metrics_app.metrics.connection_closed();
            drop(slot);
        });
    }
}

/// A response body fed by a channel: a blocking producer (an export) sends
/// chunks while the client reads them, so memory stays flat.
pub(crate) struct ChannelBody {
    pub(crate) rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// A `Write` that sends what it is given to a [`ChannelBody`], in chunks.
pub(crate) struct ChannelWriter {
    pub(crate) tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    pub(crate) buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        // Blocks while the client is slow to read: back-pressure, not memory.
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}
