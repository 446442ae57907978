//! HTTP edge: `POST /api/v1/reports` (agent ingest) and the read-only JSON API.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /api/v1/reports` | `PushResponse` (200), or `{"error", "reason"}` with 400/401/403/413/503 |
//! | `GET /api/v1/targets` | every target's `TargetView` |
//! | `GET /api/v1/targets/{ns}/{name}` | one `TargetView` (404 when unknown) |
//! | `GET /api/v1/targets/{ns}/{name}/nodes` | `NodeView`s: health, findings, anomaly, rolling stats, latest sample |
//! | `GET /api/v1/targets/{ns}/{name}/nodes/{node}/history/{series}` | the window of one series (`[{at, value}]`) |
//! | `GET /api/v1/alerts` | every AlertRule's last evaluation |
//! | `GET /api/v1/events?namespace=&name=&limit=` | latest events, newest first |
//! | `GET /api/v1/anomalies?namespace=&name=&limit=` | anomaly episodes, newest first: namespace, target, node, series, score, since, ended |
//!
//! Every `GET` answers only about namespaces the caller may read ([`crate::authz`]): a
//! bearer token (header, or the `fabricwatch_token` cookie the fleet view sets) reviewed with
//! TokenReview and SubjectAccessReview; 401 without a valid token, 403 without permission.
//! Lists are filtered to the readable namespaces. Ingest authenticates agents on its own
//! ([`crate::policy`]); `/metrics` and health are merged in unauthenticated by the caller.
//!
//! | module | holds |
//! | --- | --- |
//! | this one | [`Api`] (the routers' state) and the routers |
//! | `auth` | the extractors that check bearer tokens: [`Agent`], [`Caller`](crate::authz::Caller), [`Reader`] |
//! | `ingest` | `POST /api/v1/reports` as named steps, [`validate`] and the report bounds |
//! | `read` | the read API's handlers, [`scope`] and [`anomaly_entries`] |
//! | `error` | [`ErrorBody`], [`IngestError`] and the 404 |

mod auth;
mod error;
mod ingest;
mod read;

use std::sync::Arc;

use axum::{extract::FromRef, routing::post, Router};
use fabricwatch_proto::report::REPORT_PATH;

pub use auth::{credential, Agent, Reader, TOKEN_COOKIE};
pub use error::{error_response, not_found, ErrorBody, IngestError};
pub use ingest::{validate, MAX_COLLECTOR_ERRORS, MAX_COUNTERS, MAX_PEERS, MAX_PORTS};
pub use read::{anomaly_entries, data_namespaces, read_router, scope, AnomalyEntry};

use crate::{authz::Access, state::Shared};

/// State of analytics' routes: the process state and the access decisions of this listener.
#[derive(Clone)]
pub struct Api {
    /// Process state.
    pub shared: Arc<Shared>,
    /// Who may read what.
    pub access: Arc<Access>,
    /// AIAnalyses (their findings), when a Kubernetes API is there to watch them.
    pub analyses: Option<kube::runtime::reflector::Store<fabricwatch_crds::AIAnalysis>>,
    /// AlertRules (their per-channel delivery results), when a Kubernetes API is there.
    pub rules: Option<kube::runtime::reflector::Store<fabricwatch_crds::AlertRule>>,
    /// Writes AlertRules' `spec.silence` for the fleet view's silence action.
    pub silencer: Option<Arc<dyn crate::ui::silence::RuleSilencer>>,
}

impl Api {
    /// State of a listener deciding with `access`, without AIAnalyses.
    pub fn new(shared: Arc<Shared>, access: Arc<Access>) -> Self {
        Self {
            shared,
            access,
            analyses: None,
            rules: None,
            silencer: None,
        }
    }

    /// Lets the fleet view's silence action write AlertRules through `silencer`.
    pub fn with_silencer(
        mut self,
        silencer: Option<Arc<dyn crate::ui::silence::RuleSilencer>>,
    ) -> Self {
        self.silencer = silencer;
        self
    }

    /// Shows the per-channel delivery results of the AlertRules of `store` in the fleet view.
    pub fn with_rules(
        mut self,
        store: Option<kube::runtime::reflector::Store<fabricwatch_crds::AlertRule>>,
    ) -> Self {
        self.rules = store;
        self
    }

    /// Shows the AIAnalyses of `store` in the fleet view.
    pub fn with_analyses(
        mut self,
        store: Option<kube::runtime::reflector::Store<fabricwatch_crds::AIAnalysis>>,
    ) -> Self {
        self.analyses = store;
        self
    }

    /// Ingest, the read API and the fleet view.
    pub fn router(self) -> Router {
        Router::new()
            .route(REPORT_PATH, post(ingest::ingest))
            .merge(read_router())
            .merge(crate::ui::routes())
            .with_state(self)
    }

    /// The read API and the fleet view for a trusted listener (`--ui-listen` on loopback):
    /// every caller reads everything; no ingest.
    pub fn trusted_router(self) -> Router {
        read_router().merge(crate::ui::routes()).with_state(Api {
            access: Arc::new(Access::open()),
            ..self
        })
    }
}

impl FromRef<Api> for Arc<Shared> {
    fn from_ref(api: &Api) -> Self {
        api.shared.clone()
    }
}

/// The router of analytics' own API (merge it with `fabricwatch_common::serve::ops_router`):
/// ingest plus the read API and fleet view, the latter answering as `access` decides.
pub fn router(shared: Arc<Shared>, access: Arc<Access>) -> Router {
    Api::new(shared, access).router()
}
