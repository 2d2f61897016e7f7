//! The endpoints. Answers are plain text, HTML or JSON; an unknown run is a 404 with a text,
//! a store failure a 500 that says only that (the details go to the log).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::mpsc;

use super::data::{ReadError, Reader};
use super::runner::{Shared, status};
use super::{page, same_token};
use crate::secrets::SecretString;

/// What every handler shares.
#[derive(Clone)]
pub(super) struct App {
    pub(super) reader: Reader,
    pub(super) shared: Shared,
    pub(super) requests: mpsc::Sender<()>,
    pub(super) token: Option<Arc<SecretString>>,
}

const TEXT: &str = "text/plain; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";
/// The exposition format Prometheus scrapes.
const METRICS: &str = "text/plain; version=0.0.4; charset=utf-8";

fn answer(code: StatusCode, kind: &'static str, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, kind)], body).into_response()
}

fn text(code: StatusCode, body: impl Into<String>) -> Response {
    answer(code, TEXT, body.into())
}

/// The answer for a failed read: 404 naming the run, or 500 without internals.
fn failed(e: ReadError) -> Response {
    match e {
        ReadError::NoSuchRun(id) => text(
            StatusCode::NOT_FOUND,
            format!("no run {} in the store\n", crate::report::printable(&id)),
        ),
        ReadError::Store(detail) => {
            tracing::error!("probe serve: reading the store: {detail}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the store could not be read; the details are in probe serve's log\n",
            )
        }
    }
}

/// The routes; `POST /runs` only with a token (without one it does not exist: 404).
pub(super) fn router(app: App) -> Router {
    let mut router = Router::new()
        .route("/", get(index))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/runs/{id}", get(run))
        .route("/compare", get(compare));
    if app.token.is_some() {
        router = router.route("/runs", post(start));
    }
    router
        .fallback(|| async { text(StatusCode::NOT_FOUND, "not found\n") })
        .with_state(app)
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn index(State(app): State<App>) -> Response {
    match app.reader.latest().await {
        Ok(list) => {
            let status = status(&app.shared).clone();
            answer(StatusCode::OK, HTML, page::index(&list, &status))
        }
        Err(e) => failed(e),
    }
}

/// `/runs/{id}` (HTML) and `/runs/{id}.json`: one path segment, split here, since a route
/// cannot capture part of a segment.
async fn run(State(app): State<App>, Path(id): Path<String>) -> Response {
    let (id, json) = match id.strip_suffix(".json") {
        Some(id) => (id.to_owned(), true),
        None => (id, false),
    };
    match app.reader.report(id).await {
        Ok(report) if json => match serde_json::to_string_pretty(&report.to_json()) {
            Ok(body) => answer(StatusCode::OK, JSON, body + "\n"),
            Err(e) => failed(ReadError::Store(e.to_string())),
        },
        Ok(report) => answer(StatusCode::OK, HTML, report.to_html()),
        Err(e) => failed(e),
    }
}

/// `?before=A&after=B`.
#[derive(serde::Deserialize)]
struct Pair {
    before: Option<String>,
    after: Option<String>,
}

/// `probe compare`'s text: a comparison is read side by side, which plain text does best.
async fn compare(State(app): State<App>, Query(pair): Query<Pair>) -> Response {
    let (Some(before), Some(after)) = (pair.before, pair.after) else {
        return text(
            StatusCode::BAD_REQUEST,
            "give both runs: /compare?before=RUN&after=RUN\n",
        );
    };
    match app.reader.compare(before, after).await {
        Ok(c) => text(StatusCode::OK, c.to_text()),
        Err(e) => failed(e),
    }
}

async fn metrics(State(app): State<App>) -> Response {
    match app.reader.latest_finished().await {
        Ok(report) => {
            let status = status(&app.shared).clone();
            answer(
                StatusCode::OK,
                METRICS,
                page::metrics(report.as_ref(), &status),
            )
        }
        Err(e) => failed(e),
    }
}

/// Starts a run now. 409 while one is going (or already asked for): a second run at once
/// would send every seed a second message that proves nothing the first does not.
async fn start(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some(token) = &app.token else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .and_then(|v| v.strip_prefix(b"Bearer "));
    if !presented.is_some_and(|p| same_token(p, token)) {
        let mut r = text(
            StatusCode::UNAUTHORIZED,
            "POST /runs needs Authorization: Bearer TOKEN, the token serve.token gives\n",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"probe\""),
        );
        return r;
    }
    if let Some(since) = status(&app.shared).running_since {
        let since = humantime::format_rfc3339_seconds(since);
        return text(
            StatusCode::CONFLICT,
            format!("a run is going since {since}; try again when it has ended\n"),
        );
    }
    match app.requests.try_send(()) {
        Ok(()) => text(StatusCode::ACCEPTED, "a run starts now\n"),
        Err(mpsc::error::TrySendError::Full(())) => text(
            StatusCode::CONFLICT,
            "a run was asked for already and is starting\n",
        ),
        Err(mpsc::error::TrySendError::Closed(())) => {
            text(StatusCode::SERVICE_UNAVAILABLE, "probe serve is stopping\n")
        }
    }
}
