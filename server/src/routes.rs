//! The route table: every route of the server with its method, path, who
//! may call it and its metrics label. The router, the metrics labels and
//! the test that holds `openapi.json` to the routes all read this one
//! table, and the token check of a route happens here, from its `access`,
//! before its handler runs.

use crate::app::App;
use crate::config::Scope;
use crate::error::ApiError;
use crate::respond::{json_response, text_response, Body};
use crate::{alerts, api, proxy, rates, templates, ui};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::sync::Arc;

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone: health, metrics, the page, the code table.
    Public,
    /// Meta, proved by `X-Hub-Signature-256` (checked by the handler, over
    /// the body).
    Signature,
    /// Meta's handshake, proved by the verify token.
    VerifyToken,
    /// A bearer token with this scope (`admin` implies every scope).
    Token(Scope),
    /// The logging proxy: a `send` token as the bearer or in
    /// `X-Ticks-Token` (checked by the proxy, which must tell the two apart).
    Proxy,
}

/// What answers a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handler {
    Page,
    Asset,
    Favicon,
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    WebhookVerify,
    WebhookPost,
    PostSends,
    PostImport,
    GetLogs,
    GetLog,
    GetContact,
    PostTemplates,
    GetTemplates,
    GetTemplate,
    PostRateCard,
    GetRateCards,
    GetAlerts,
    PostAlert,
    DeleteAlert,
    GetAlertHistory,
    DeleteLog,
    PostDelete,
    GetTimeline,
    GetStats,
    GetStore,
    GetReport,
    GetCodes,
    GetFields,
    GetExport,
    GetReceipts,
    GetPurges,
    GetRelay,
    ListSearches,
    SaveSearch,
    DeleteSearch,
    Proxy,
}

/// One route.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Route {
    /// `GET`, `POST`, `DELETE`, or `*` for any.
    pub(crate) method: &'static str,
    /// `/v1/logs/{id}`: `{name}` is one path segment, `{name..}` the rest
    /// of the path (one segment or more).
    pub(crate) path: &'static str,
    pub(crate) access: Access,
    /// The `route` label of `ticks_http_requests_total`.
    pub(crate) label: &'static str,
    /// Whether `openapi.json` documents it (the page's own files are not);
    /// read by the test that holds the document to this table.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) documented: bool,
    handler: Handler,
}

const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    label: &'static str,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        access,
        label,
        documented: true,
        handler,
    }
}

const fn page(path: &'static str, handler: Handler) -> Route {
    Route {
        method: "GET",
        path,
        access: Access::Public,
        label: "ui",
        documented: false,
        handler,
    }
}

use Access::{Public, Signature, Token, VerifyToken};
use Scope::{Admin, Ingest, Read};

/// Every route, in the order they are matched.
pub(crate) const ROUTES: &[Route] = &[
    page("/", Handler::Page),
    page("/ui/{view..}", Handler::Page),
    page("/assets/{name}", Handler::Asset),
    page("/favicon.ico", Handler::Favicon),
    route("GET", "/healthz", Public, "other", Handler::Healthz),
    route("GET", "/readyz", Public, "other", Handler::Readyz),
    route("GET", "/metrics", Public, "other", Handler::Metrics),
    route("GET", "/v1/openapi.json", Public, "other", Handler::OpenApi),
    route("GET", "/v1/codes", Public, "other", Handler::GetCodes),
    route("GET", "/v1/fields", Public, "other", Handler::GetFields),
    route(
        "GET",
        "/webhook",
        VerifyToken,
        "webhook",
        Handler::WebhookVerify,
    ),
    route(
        "POST",
        "/webhook",
        Signature,
        "webhook",
        Handler::WebhookPost,
    ),
    route(
        "POST",
        "/v1/sends",
        Token(Ingest),
        "sends",
        Handler::PostSends,
    ),
    route(
        "POST",
        "/v1/import",
        Token(Ingest),
        "import",
        Handler::PostImport,
    ),
    route("GET", "/v1/logs", Token(Read), "logs", Handler::GetLogs),
    route("GET", "/v1/logs/{id}", Token(Read), "logs", Handler::GetLog),
    route(
        "GET",
        "/v1/contacts/{id}",
        Token(Read),
        "contacts",
        Handler::GetContact,
    ),
    route(
        "POST",
        "/v1/templates",
        Token(Ingest),
        "templates",
        Handler::PostTemplates,
    ),
    route(
        "GET",
        "/v1/templates",
        Token(Read),
        "templates",
        Handler::GetTemplates,
    ),
    route(
        "GET",
        "/v1/templates/{name}/{language}",
        Token(Read),
        "templates",
        Handler::GetTemplate,
    ),
    route(
        "POST",
        "/v1/rate-card",
        Token(Admin),
        "rate_card",
        Handler::PostRateCard,
    ),
    route(
        "GET",
        "/v1/rate-card",
        Token(Read),
        "rate_card",
        Handler::GetRateCards,
    ),
    route(
        "GET",
        "/v1/alerts",
        Token(Admin),
        "alerts",
        Handler::GetAlerts,
    ),
    route(
        "POST",
        "/v1/alerts",
        Token(Admin),
        "alerts",
        Handler::PostAlert,
    ),
    route(
        "DELETE",
        "/v1/alerts/{name}",
        Token(Admin),
        "alerts",
        Handler::DeleteAlert,
    ),
    route(
        "GET",
        "/v1/alerts/history",
        Token(Read),
        "alerts",
        Handler::GetAlertHistory,
    ),
    route(
        "DELETE",
        "/v1/logs/{id}",
        Token(Admin),
        "logs",
        Handler::DeleteLog,
    ),
    route(
        "POST",
        "/v1/delete",
        Token(Admin),
        "delete",
        Handler::PostDelete,
    ),
    route(
        "GET",
        "/v1/messages/{wamid}",
        Token(Read),
        "messages",
        Handler::GetTimeline,
    ),
    route("GET", "/v1/stats", Token(Read), "stats", Handler::GetStats),
    route("GET", "/v1/store", Token(Read), "stats", Handler::GetStore),
    route(
        "GET",
        "/v1/report",
        Token(Read),
        "report",
        Handler::GetReport,
    ),
    route(
        "GET",
        "/v1/export",
        Token(Read),
        "export",
        Handler::GetExport,
    ),
    route(
        "GET",
        "/v1/receipts",
        Token(Read),
        "other",
        Handler::GetReceipts,
    ),
    route(
        "GET",
        "/v1/purges",
        Token(Admin),
        "other",
        Handler::GetPurges,
    ),
    route("GET", "/v1/relay", Token(Read), "relay", Handler::GetRelay),
    route(
        "GET",
        "/v1/searches",
        Token(Read),
        "searches",
        Handler::ListSearches,
    ),
    route(
        "POST",
        "/v1/searches",
        Token(Admin),
        "searches",
        Handler::SaveSearch,
    ),
    route(
        "DELETE",
        "/v1/searches/{name}",
        Token(Admin),
        "searches",
        Handler::DeleteSearch,
    ),
    route(
        "*",
        "/graph/{path..}",
        Access::Proxy,
        "proxy",
        Handler::Proxy,
    ),
];

/// The path parameters of `path` when it fits `pattern`, in order.
fn fit(pattern: &str, path: &str) -> Option<Vec<String>> {
    let want: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let got: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut params = Vec::new();
    for (i, w) in want.iter().enumerate() {
        if w.starts_with('{') && w.ends_with("..}") {
            let rest = got.get(i..).filter(|r| !r.is_empty() && !r[0].is_empty())?;
            params.push(rest.join("/"));
            return Some(params);
        }
        let g = got.get(i)?;
        if w.starts_with('{') {
            if g.is_empty() {
                return None;
            }
            params.push((*g).to_string());
        } else if w != g {
            return None;
        }
    }
    (want.len() == got.len()).then_some(params)
}

/// The route for a method and path, with its path parameters; `Err` says
/// whether the path exists under another method (405) or not at all (404).
pub(crate) fn find(method: &str, path: &str) -> Found {
    let mut path_known = false;
    for r in ROUTES {
        if let Some(params) = fit(r.path, path) {
            if r.method == "*" || r.method == method {
                return Ok((r, params));
            }
            path_known = true;
        }
    }
    let first = path.trim_matches('/').split('/').next().unwrap_or("");
    if path_known || matches!(first, "v1" | "webhook" | "healthz" | "readyz" | "metrics") {
        Err(ApiError::MethodNotAllowed)
    } else {
        Err(ApiError::NotFound(format!("no route for {path}")))
    }
}

/// A request's route with its path parameters, as [`find`] answers.
pub(crate) type Found = Result<(&'static Route, Vec<String>), ApiError>;

/// The metrics label of a found route.
pub(crate) fn label(found: &Found) -> &'static str {
    found.as_ref().map_or("other", |(r, _)| r.label)
}

/// Checks the found route's access and runs its handler (the route is
/// found once per request, for the metrics label and for this).
pub(crate) async fn dispatch(
    app: Arc<App>,
    req: Request<Incoming>,
    found: Found,
) -> Result<Response<Body>, ApiError> {
    let (route, params) = found?;
    let actor = match route.access {
        Access::Token(scope) => app.authorize(req.headers(), scope)?,
        _ => String::new(),
    };
    let param = |i: usize| params.get(i).map_or("", String::as_str);
    match route.handler {
        Handler::Page => Ok(ui::page()),
        Handler::Asset => ui::asset(param(0)),
        Handler::Favicon => Ok(ui::favicon()),
        Handler::Healthz => Ok(text_response(StatusCode::OK, "text/plain", "ok\n")),
        Handler::Readyz => Ok(readyz(&app)),
        Handler::Metrics => Ok(text_response(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            app.metrics.render(
                app.store_if_open(),
                app.relays
                    .get()
                    .map_or(0, |r| r.backlog(app.store_if_open())),
            ) + &app.alerts.get().map(|a| a.metrics()).unwrap_or_default(),
        )),
        Handler::OpenApi => Ok(text_response(
            StatusCode::OK,
            "application/json",
            crate::openapi::document(),
        )),
        Handler::GetCodes => Ok(api::get_codes()),
        Handler::GetFields => Ok(api::get_fields()),
        Handler::WebhookVerify => api::webhook_verify(&app, &req),
        Handler::WebhookPost => api::webhook_post(app, req).await,
        Handler::PostSends => api::post_sends(app, req).await,
        Handler::PostImport => api::post_import(app, req).await,
        Handler::GetLogs => api::get_logs(app, req).await,
        Handler::GetLog => api::get_log(app, param(0)).await,
        Handler::GetContact => api::get_contact(app, param(0)).await,
        Handler::PostTemplates => templates::post_templates(app, req).await,
        Handler::GetTemplates => templates::get_templates(app).await,
        Handler::GetTemplate => templates::get_template(app, param(0), param(1)).await,
        Handler::PostRateCard => rates::post_rate_card(app, req).await,
        Handler::GetRateCards => rates::get_rate_cards(app).await,
        Handler::GetAlerts => alerts::get_alerts(app).await,
        Handler::PostAlert => alerts::post_alert(app, req).await,
        Handler::DeleteAlert => alerts::delete_alert(app, param(0)).await,
        Handler::GetAlertHistory => alerts::get_history(app).await,
        Handler::DeleteLog => api::delete_log(app, &req, param(0), actor).await,
        Handler::PostDelete => api::post_delete(app, req, actor).await,
        Handler::GetTimeline => api::get_timeline(app, param(0)).await,
        Handler::GetStats => api::get_stats(app, req).await,
        Handler::GetStore => api::get_store(app).await,
        Handler::GetReport => api::get_report(app, req).await,
        Handler::GetExport => api::get_export(app, req).await,
        Handler::GetReceipts => api::get_receipts(app).await,
        Handler::GetPurges => api::get_purges(app).await,
        Handler::GetRelay => Ok(relay_positions(&app)),
        Handler::ListSearches => api::list_searches(app).await,
        Handler::SaveSearch => api::save_search(app, req).await,
        Handler::DeleteSearch => api::delete_search(app, param(0)).await,
        Handler::Proxy => {
            let rest = param(0).to_string();
            proxy::forward(app, req, &rest).await
        }
    }
}

/// `/readyz`: 200 once the store has caught up and while writes succeed.
fn readyz(app: &App) -> Response<Body> {
    match app.store_if_open().and_then(|b| b.write_fault()) {
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
    }
}

/// `/v1/relay`: each downstream's position, errors and failures.
fn relay_positions(app: &App) -> Response<Body> {
    let list = app
        .relays
        .get()
        .map(|r| r.snapshot(app.store_if_open()))
        .unwrap_or_default();
    json_response(StatusCode::OK, &serde_json::json!({ "relays": list }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fit_their_patterns_and_give_their_parameters() {
        assert_eq!(fit("/", "/"), Some(vec![]));
        assert_eq!(fit("/v1/logs", "/v1/logs"), Some(vec![]));
        assert_eq!(fit("/v1/logs", "/v1/logs/3"), None);
        assert_eq!(fit("/v1/logs/{id}", "/v1/logs/3"), Some(vec!["3".into()]));
        assert_eq!(fit("/v1/logs/{id}", "/v1/logs/"), None);
        assert_eq!(
            fit("/graph/{path..}", "/graph/v21.0/1/messages"),
            Some(vec!["v21.0/1/messages".into()])
        );
        assert_eq!(fit("/graph/{path..}", "/graph"), None);
        assert_eq!(
            fit("/ui/{view..}", "/ui/report"),
            Some(vec!["report".into()])
        );
    }

    #[test]
    fn a_known_path_under_another_method_is_405_and_an_unknown_one_404() {
        assert!(matches!(
            find("PUT", "/v1/logs"),
            Err(ApiError::MethodNotAllowed)
        ));
        assert!(matches!(
            find("GET", "/v1/nothing"),
            Err(ApiError::MethodNotAllowed)
        ));
        assert!(matches!(
            find("GET", "/nothing"),
            Err(ApiError::NotFound(_))
        ));
        assert_eq!(label(&find("GET", "/v1/logs/4")), "logs");
        assert_eq!(label(&find("POST", "/graph/v21.0/1/messages")), "proxy");
        assert_eq!(label(&find("GET", "/nothing")), "other");
    }

    /// `openapi.json` documents every route of the table, with the scope the
    /// table gives it, and no route the table does not have.
    #[test]
    fn the_openapi_document_matches_the_route_table() {
        let doc: serde_json::Value =
            serde_json::from_str(crate::openapi::document()).expect("openapi.json parses");
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented = std::collections::BTreeSet::new();
        for r in ROUTES.iter().filter(|r| r.documented) {
            let path = r.path.replace("..}", "}");
            let methods: Vec<String> = match r.method {
                "*" => vec!["get".into(), "post".into()],
                m => vec![m.to_lowercase()],
            };
            for m in methods {
                let op = &paths
                    .get(&path)
                    .unwrap_or_else(|| panic!("{path} is not in openapi.json"))[&m];
                assert!(op.is_object(), "{m} {path} is not in openapi.json");
                let scopes: Vec<&str> = op["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["bearer"].as_array())
                    .flatten()
                    .filter_map(|s| s.as_str())
                    .collect();
                let expected: Vec<&str> = match r.access {
                    Access::Token(s) => vec![s.name()],
                    Access::Proxy => vec!["send"],
                    _ => vec![],
                };
                assert_eq!(scopes, expected, "{m} {path}: scopes");
                documented.insert((path.clone(), m));
            }
        }
        for (path, item) in paths {
            for m in item.as_object().expect("path item").keys() {
                assert!(
                    documented.contains(&(path.clone(), m.clone())),
                    "openapi.json documents {m} {path}, which no route serves"
                );
            }
        }
    }
}
