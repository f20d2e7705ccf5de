//! The HTTP server: the accept loop with its connection limit, and each
//! request handed to the route table (`routes`) on a task of its own.

use crate::app::App;
use crate::error::ApiError;
use crate::request::ConnectionBudget;
use crate::respond::Body;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Bytes of unauthenticated bodies one connection may hold at once (an
/// HTTP/2 connection carries several requests): two of Meta's largest
/// webhooks.
const CONNECTION_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Most bytes hyper buffers per connection while reading a request.
const CONNECTION_READ_BUFFER: usize = 64 * 1024;

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let start = Instant::now();
    let found = crate::routes::find(req.method().as_str(), req.uri().path());
    let label = crate::routes::label(&found);
    // Each request runs on its own task: a panic in a handler becomes a 500
    // for that request instead of a dropped connection.
    let response = match tokio::spawn(crate::routes::dispatch(app.clone(), req, found)).await {
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
