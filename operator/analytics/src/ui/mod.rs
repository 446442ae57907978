//! The fleet view: server-rendered HTML pages at `/ui/` over the data analytics holds, with
//! the same access decisions as the read API ([`crate::authz`]).
//!
//! | route | page |
//! | --- | --- |
//! | `GET /ui/` | overview: every readable MonitorTarget with health, node counts, suspects, worst loss, RTT p99, RDMA ports down, firing alerts, last AI finding |
//! | `GET /ui/targets/{ns}/{name}` | mesh heatmaps (loss, RTT p99), suspects, problems, RDMA ports, anomalies, nodes |
//! | `GET /ui/targets/{ns}/{name}/nodes/{node}` | the node's history charts (units on the axes), findings, peers |
//! | `GET /ui/alerts` | AlertRules: state, value, since, firing series |
//! | `GET /ui/analyses` | AIAnalyses: findings with severity, evidence, recommendation; cost today |
//! | `POST /ui/alerts/{ns}/{name}/silence` | sets (`hours`, optional `node`) or lifts (`lift`) the AlertRule's `spec.silence`; needs `update` on it |
//! | `POST /ui/alerts/{ns}/{name}/acknowledge` | acknowledges what fires now (`spec.acknowledge` with `at` = now, `by` = the caller) or lifts it (`lift`); needs `update` on it |
//! | `GET/POST /ui/login`, `POST /ui/logout` | stores / clears the bearer token in an `HttpOnly; SameSite=Strict` cookie |
//! | `GET /ui/style.css` | the one stylesheet |
//!
//! Templates ([minijinja], auto-escaped) and the stylesheet are compiled into the binary; no
//! script, font or image is fetched from anywhere. Pages refresh themselves with
//! `<meta http-equiv="refresh">` (no JavaScript needed), are laid out for 1280×800 and for
//! phone widths, and use plain links, buttons and tables, so the keyboard reaches everything.
//!
//! | module | holds |
//! | --- | --- |
//! | this one | the routes and the stylesheet's handler |
//! | `render` | templates, filters, [`render`], the page answers and [`Viewer`] (access refusals as pages) |
//! | `overview`, `target`, `alerts`, `analyses` | one view each: its handler and its `*_html` page |
//! | `login` | sign-in and sign-out (the token cookie) |
//! | [`silence`] | the silence and acknowledge actions and the AlertRule writer behind them |
//! | [`chart`], [`heatmap`] | the SVG line charts and mesh heatmaps |

mod alerts;
mod analyses;
pub mod chart;
pub mod heatmap;
mod login;
mod overview;
mod render;
pub mod silence;
mod target;

use axum::{
    http::header,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};

pub use alerts::alerts_html;
pub use analyses::analyses_html;
pub use overview::overview_html;
pub use render::{
    ago, embedded_asset_bytes, render, Refused, Viewer, REFRESH_SECONDS, STYLE_CSS, TEMPLATES,
};
pub use target::{node_html, target_html};

use crate::http::Api;

/// Analytics' routes of the fleet view (merged into [`crate::http`]'s routers).
pub fn routes() -> Router<Api> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(overview::overview))
        .route("/ui/style.css", get(style))
        .route("/ui/login", get(login::login_form).post(login::login))
        .route("/ui/logout", post(login::logout))
        .route("/ui/alerts", get(alerts::alerts))
        .route(
            "/ui/alerts/{ns}/{name}/silence",
            post(silence::silence_rule),
        )
        .route(
            "/ui/alerts/{ns}/{name}/acknowledge",
            post(silence::acknowledge_rule),
        )
        .route("/ui/analyses", get(analyses::analyses))
        .route("/ui/targets/{ns}/{name}", get(target::target))
        .route("/ui/targets/{ns}/{name}/nodes/{node}", get(target::node))
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLE_CSS,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
