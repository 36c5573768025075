//! The service's local HTTP API (axum). Reads are open to whoever can reach the address (by
//! default this machine only); writes need `Authorization: Bearer <token>`. Every answer that is
//! not data is JSON `{"error": "..."}` saying what was wrong and how to fix it.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use prometheus_client::registry::Registry;
use serde::Deserialize;

use super::Service;
use super::config::StreamSpec;
use super::streams::Refused;

pub struct App {
    pub service: Arc<Service>,
    pub metrics: Registry,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/streams", get(list).post(add))
        .route("/streams/{name}", delete(remove))
        .route("/model", get(model).post(swap))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such endpoint: see `emoedge serve --help`".into()) })
        .with_state(app)
}

/// An answer that is not data: its status and what to do.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        let status = match refused {
            Refused::Invalid(_) => StatusCode::BAD_REQUEST,
            Refused::Exists(_) | Refused::Stopping(_) => StatusCode::CONFLICT,
            Refused::Unknown(_) => StatusCode::NOT_FOUND,
            Refused::Full(_) => StatusCode::TOO_MANY_REQUESTS,
            Refused::Start { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, refused.to_string())
    }
}

/// Writes need the token; without one configured, writes are refused saying how to set it.
/// A stopping service takes no more changes.
fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    if app.service.stopping() {
        return Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, "the service is stopping".into()));
    }
    let Some(token) = app.service.token() else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            format!("this service has no API token: set ${} or token_file in its config", super::config::TOKEN_ENV),
        ));
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if same(given.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError(StatusCode::UNAUTHORIZED, "wrong API token".into())),
        None => Err(ApiError(StatusCode::UNAUTHORIZED, "writes need `Authorization: Bearer <token>`".into())),
    }
}

/// Compares in time that depends on the lengths only, not on where the texts differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A JSON body of type `T`, or a 400 that says what is wrong with it.
fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("the body is not the JSON expected: {e}")))
}

async fn list(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.service.stream_views()).into_response()
}

async fn add(State(app): State<Arc<App>>, headers: HeaderMap, bytes: Bytes) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let spec: StreamSpec = body(&bytes)?;
    if spec.source.is_some() {
        // Text from the network never becomes a pipeline description.
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "a `source` pipeline description is taken from the config file only: add the stream there and send SIGHUP, or give a `uri`".into(),
        ));
    }
    let name = spec.name.clone();
    app.service.streams().add(spec)?;
    Ok((StatusCode::CREATED, axum::Json(serde_json::json!({ "added": name }))).into_response())
}

async fn remove(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    app.service.streams().remove(&name)?;
    Ok((StatusCode::ACCEPTED, axum::Json(serde_json::json!({ "removing": name }))).into_response())
}

async fn model(State(app): State<Arc<App>>) -> Response {
    axum::Json(app.service.model.view()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwapRequest {
    /// A bundle folder on this device.
    bundle: std::path::PathBuf,
}

async fn swap(State(app): State<Arc<App>>, headers: HeaderMap, bytes: Bytes) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    let request: SwapRequest = body(&bytes)?;
    // Opening a model takes a while: not on the thread that answers the other requests.
    let service = Arc::clone(&app.service);
    let swapped = tokio::task::spawn_blocking(move || service.swap_model(&request.bundle))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("the swap failed: {e}")))?;
    match swapped {
        Ok(view) => Ok(axum::Json(view).into_response()),
        Err(e) => Err(ApiError(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}; the model in use stays"))),
    }
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.service.health() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => ApiError(StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.service.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => ApiError(StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    match super::metrics::encode(&app.metrics) {
        Ok(text) => {
            ([(header::CONTENT_TYPE, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)], text).into_response()
        }
        Err(_) => {
            ApiError(StatusCode::INTERNAL_SERVER_ERROR, "the metrics could not be encoded".into()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_are_equal_only_when_every_byte_is() {
        assert!(same(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same(b"0123456789abcdef", b"0123456789abcdeF"));
        assert!(!same(b"0123456789abcdef", b"0123456789abcde"));
        assert!(!same(b"", b"x"));
    }
}
