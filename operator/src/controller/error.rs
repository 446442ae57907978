//! Errors of each reconcile stage, with a bounded `category()` for metrics and Events.
//!
//! Validation failures are not errors: they become `Accepted=False` and the object waits for
//! a change. Everything here is retried with per-object exponential backoff.

use super::build::BuildError;

/// A reconcile failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Building a child object failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// Reading an object the reconcile depends on failed.
    #[error("cannot read {what}: {source}")]
    Read {
        /// What was read, e.g. `Namespace team-a`.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Server-side apply (or delete) of a child failed.
    #[error("cannot apply {kind} {name}: {source}")]
    Apply {
        /// Kind of the child.
        kind: &'static str,
        /// Name of the child.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing status failed.
    #[error("cannot write status: {0}")]
    Status(#[source] kube::Error),
}

/// Bounded classification of a Kubernetes API error.
pub fn api_category(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(s) => match s.code {
            403 => "forbidden",
            404 => "not_found",
            409 => "conflict",
            422 => "invalid",
            429 => "throttled",
            500..=599 => "server",
            _ => "api",
        },
        _ => "transport",
    }
}

impl Error {
    /// `stage_kind` category, e.g. `apply_forbidden`, `status_conflict`, `build_owner`; a
    /// small fixed set, safe as a metric label and Event reason suffix.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Build(b) => b.category(),
            Self::Read { source, .. } => match api_category(source) {
                "forbidden" => "read_forbidden",
                "transport" => "read_transport",
                _ => "read_api",
            },
            Self::Apply { source, .. } => match api_category(source) {
                "forbidden" => "apply_forbidden",
                "not_found" => "apply_not_found",
                "conflict" => "apply_conflict",
                "invalid" => "apply_invalid",
                "throttled" => "apply_throttled",
                "server" => "apply_server",
                "transport" => "apply_transport",
                _ => "apply_api",
            },
            Self::Status(source) => match api_category(source) {
                "forbidden" => "status_forbidden",
                "conflict" => "status_conflict",
                "invalid" => "status_invalid",
                "transport" => "status_transport",
                _ => "status_api",
            },
        }
    }

    /// CamelCase Event reason for this error.
    pub fn event_reason(&self) -> &'static str {
        match self {
            Self::Build(_) => "BuildFailed",
            Self::Read { .. } => "ReadFailed",
            Self::Apply { .. } => "ApplyFailed",
            Self::Status(_) => "StatusFailed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: "m".into(),
            ..kube::core::Status::default()
        }))
    }

    #[test]
    fn categories() {
        let apply = |code| Error::Apply {
            kind: "DaemonSet",
            name: "x".into(),
            source: api(code),
        };
        assert_eq!(apply(403).category(), "apply_forbidden");
        assert_eq!(apply(422).category(), "apply_invalid");
        assert_eq!(apply(409).category(), "apply_conflict");
        assert_eq!(apply(503).category(), "apply_server");
        assert_eq!(Error::Status(api(409)).category(), "status_conflict");
        assert_eq!(
            Error::Read {
                what: "Namespace a".into(),
                source: api(403)
            }
            .category(),
            "read_forbidden"
        );
        assert_eq!(apply(403).event_reason(), "ApplyFailed");
        assert!(apply(403).to_string().contains("cannot apply DaemonSet x"));
    }
}
