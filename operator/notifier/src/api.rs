//! The notification API: `POST /api/v1/notifications` with a bearer token.
//!
//! Answers: 202 with a [`NotificationAck`] (also for a known id, with `duplicate: true`);
//! 400 for a body that is not a valid request; 401 without a valid token; 403 for a token
//! of a client not in the allowed list; 503 with `Retry-After` when the outbox is full or
//! cannot be saved, or the token cannot be reviewed. Error bodies are `{"error": "..."}`.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use fabricwatch_common::auth::{bearer_token, AuthError, Authenticator};
use fabricwatch_proto::notify::{NotificationAck, NotificationRequest, NOTIFY_PATH};

use crate::engine::{AcceptError, Engine};
use crate::outcome::StatusSink;
use crate::resolve::Resolver;
use crate::store::Store;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// `Retry-After` sent with 503 answers, in seconds.
const RETRY_AFTER_SECS: &str = "5";

/// What the API hands accepted requests to (the engine; a trait so the router is generic).
pub trait Acceptor: Send + Sync + 'static {
    /// Accepts one request.
    fn accept(
        &self,
        req: NotificationRequest,
    ) -> impl Future<Output = Result<NotificationAck, AcceptError>> + Send;
}

impl<S: Store, R: Resolver, St: StatusSink> Acceptor for Engine<S, R, St> {
    fn accept(
        &self,
        req: NotificationRequest,
    ) -> impl Future<Output = Result<NotificationAck, AcceptError>> + Send {
        Engine::accept(self, req)
    }
}

/// Who may send notifications.
#[derive(Clone)]
pub struct Access {
    /// Token checker.
    pub authenticator: Arc<dyn Authenticator>,
    /// Usernames allowed to send, e.g. `system:serviceaccount:fabricwatch:fabricwatch-analytics`.
    pub allowed: Arc<Vec<String>>,
}

struct ApiState<A> {
    acceptor: Arc<A>,
    access: Access,
}

impl<A> Clone for ApiState<A> {
    fn clone(&self) -> Self {
        Self {
            acceptor: self.acceptor.clone(),
            access: self.access.clone(),
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = Json(serde_json::json!({ "error": message.into() }));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        (status, [("retry-after", RETRY_AFTER_SECS)], body).into_response()
    } else {
        (status, body).into_response()
    }
}

/// The router serving [`NOTIFY_PATH`].
pub fn router<A: Acceptor>(acceptor: Arc<A>, access: Access) -> Router {
    Router::new()
        .route(NOTIFY_PATH, post(notify::<A>))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ApiState { acceptor, access })
}

async fn notify<A: Acceptor>(
    State(s): State<ApiState<A>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let identity = match bearer_token(header) {
        Ok(token) => s.access.authenticator.authenticate(token).await,
        Err(e) => Err(e),
    };
    let identity = match identity {
        Ok(i) => i,
        Err(AuthError::Unavailable(e)) => {
            tracing::warn!(error = %e, "token review unavailable");
            return error(StatusCode::SERVICE_UNAVAILABLE, "token review unavailable");
        }
        Err(e) => return error(StatusCode::UNAUTHORIZED, e.to_string()),
    };
    if !s.access.allowed.iter().any(|a| a == &identity.username) {
        tracing::warn!(user = %identity.username, "notification from a client that is not allowed");
        return error(
            StatusCode::FORBIDDEN,
            format!("{} may not send notifications", identity.username),
        );
    }
    let req: NotificationRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid notification request: {e}"),
            )
        }
    };
    match s.acceptor.accept(req).await {
        Ok(ack) => (StatusCode::ACCEPTED, Json(ack)).into_response(),
        Err(AcceptError::Invalid(e)) => error(StatusCode::BAD_REQUEST, e),
        Err(AcceptError::QueueFull) => error(StatusCode::SERVICE_UNAVAILABLE, "outbox full"),
        Err(AcceptError::Store(e)) => {
            tracing::error!(error = %e, "cannot save an accepted notification");
            error(StatusCode::SERVICE_UNAVAILABLE, "outbox unavailable")
        }
    }
}
