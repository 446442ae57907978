//! The error answers of analytics' HTTP API: the one JSON body every non-2xx answer carries,
//! the refusals of `POST /api/v1/reports` ([`IngestError`]) and the read API's 404.
//!
//! A refused report is counted in `fabricwatch_analytics_reports_total{result}` with the
//! error's [`IngestError::reason`], the same word the body's `reason` carries, so a client's
//! error and the operator's dashboard name the same cause.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use fabricwatch_common::auth::AuthError;
use fabricwatch_proto::{report::REPORT_SCHEMA_VERSION, ObjectRef};
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

/// Error body of every non-2xx answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable message.
    pub error: String,
    /// Machine-readable reason, also the `result` label of the reports counter.
    pub reason: String,
}

/// `status` with an [`ErrorBody`]; a 401 also carries `WWW-Authenticate: Bearer` (RFC 6750
/// §3), telling the client which credential to send.
pub fn error_response(status: StatusCode, reason: &str, error: String) -> Response {
    let mut r = (
        status,
        Json(ErrorBody {
            error,
            reason: reason.into(),
        }),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    r
}

/// The read API's 404: `"{what} not found"`, reason `not_found`.
pub fn not_found(what: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody {
            error: format!("{what} not found"),
            reason: "not_found".into(),
        }),
    )
        .into_response()
}

/// Why `POST /api/v1/reports` refused a report. The answer is the [`status`](Self::status)
/// with an [`ErrorBody`] of the [`Display`](std::fmt::Display) text and the
/// [`reason`](Self::reason).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// No valid bearer token: missing, malformed or rejected by TokenReview (401).
    #[error("{0}")]
    Unauthenticated(#[source] AuthError),
    /// TokenReview could not be asked (503; the agent retries).
    #[error("{0}")]
    AuthUnavailable(#[source] AuthError),
    /// The body is longer than the limit, in bytes (413).
    #[error("report body exceeds {0} bytes")]
    TooLarge(usize),
    /// The body could not be read: the connection broke (400); the reader's error.
    #[error("could not read body: {0}")]
    Unreadable(String),
    /// The body is not a report (400); the parser's error.
    #[error("invalid report JSON: {0}")]
    InvalidJson(String),
    /// The report's `schemaVersion` is not the one this analytics speaks (400).
    #[error("unsupported schemaVersion {0}: this analytics accepts [{REPORT_SCHEMA_VERSION}]")]
    UnsupportedSchema(u64),
    /// The report is well-formed but its content is out of bounds (400); what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The agent may not report this (node, target) (403); why.
    #[error("{0}")]
    Forbidden(String),
    /// The report names a MonitorTarget analytics does not know (403).
    #[error("MonitorTarget {0} does not exist")]
    UnknownTarget(ObjectRef),
}

impl From<AuthError> for IngestError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable(_) => IngestError::AuthUnavailable(e),
            _ => IngestError::Unauthenticated(e),
        }
    }
}

impl IngestError {
    /// HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            IngestError::AuthUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::Unreadable(_)
            | IngestError::InvalidJson(_)
            | IngestError::UnsupportedSchema(_)
            | IngestError::Invalid(_) => StatusCode::BAD_REQUEST,
            IngestError::Forbidden(_) | IngestError::UnknownTarget(_) => StatusCode::FORBIDDEN,
        }
    }

    /// `reason` of the error body and `result` label of the reports counter.
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Unauthenticated(_) => "unauthenticated",
            IngestError::AuthUnavailable(_) => "auth_unavailable",
            IngestError::TooLarge(_) => "too_large",
            IngestError::Unreadable(_) | IngestError::InvalidJson(_) => "malformed",
            IngestError::UnsupportedSchema(_) => "unsupported_schema",
            IngestError::Invalid(_) => "invalid",
            IngestError::Forbidden(_) | IngestError::UnknownTarget(_) => "forbidden",
        }
    }

    /// Counts the refusal in the reports counter under its reason and logs it (debug: a
    /// misconfigured agent retries every interval), then hands it on to be answered.
    pub fn counted(self, metrics: &Metrics) -> Self {
        let (reason, status) = (self.reason(), self.status());
        metrics.reports.with_label_values(&[reason]).inc();
        tracing::debug!(reason, %status, "report refused: {self}");
        self
    }
}

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        error_response(self.status(), self.reason(), self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Status, reason and text of every refusal, as agents and dashboards see them.
    #[test]
    fn refusals_keep_their_status_reason_and_text() {
        let target = ObjectRef {
            namespace: "fw".into(),
            name: "fabric".into(),
        };
        let cases = [
            (
                IngestError::from(AuthError::Missing),
                401,
                "unauthenticated",
                "missing Authorization header: send 'Authorization: Bearer <token>'".to_string(),
            ),
            (
                IngestError::from(AuthError::Unavailable("down".into())),
                503,
                "auth_unavailable",
                "token review unavailable: down".into(),
            ),
            (
                IngestError::TooLarge(1024),
                413,
                "too_large",
                "report body exceeds 1024 bytes".into(),
            ),
            (
                IngestError::Unreadable("reset".into()),
                400,
                "malformed",
                "could not read body: reset".into(),
            ),
            (
                IngestError::InvalidJson("eof".into()),
                400,
                "malformed",
                "invalid report JSON: eof".into(),
            ),
            (
                IngestError::UnsupportedSchema(9),
                400,
                "unsupported_schema",
                format!(
                    "unsupported schemaVersion 9: this analytics accepts [{REPORT_SCHEMA_VERSION}]"
                ),
            ),
            (
                IngestError::Invalid("node must be 1-253 characters".into()),
                400,
                "invalid",
                "node must be 1-253 characters".into(),
            ),
            (
                IngestError::Forbidden("not this node".into()),
                403,
                "forbidden",
                "not this node".into(),
            ),
            (
                IngestError::UnknownTarget(target),
                403,
                "forbidden",
                "MonitorTarget fw/fabric does not exist".into(),
            ),
        ];
        for (e, status, reason, text) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.reason(), reason, "{e:?}");
            assert_eq!(e.to_string(), text, "{e:?}");
            let r = e.into_response();
            assert_eq!(
                r.headers().contains_key(header::WWW_AUTHENTICATE),
                status == 401
            );
        }
    }
}
