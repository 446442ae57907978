//! Rendering the fleet view: the embedded templates and stylesheet, the template filters,
//! the page answers (a rendered page, a message page, a render failure) and [`Viewer`], the
//! extractor that answers a refused caller with a page instead of JSON.

use std::sync::OnceLock;

use axum::{
    extract::FromRequestParts,
    http::{request::Parts, StatusCode},
    response::{Html, IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use minijinja::{context, Environment, Value};
use serde::Serialize;

use crate::{authz::Denied, http::Api};

/// Seconds between automatic page refreshes.
pub const REFRESH_SECONDS: u32 = 15;

/// The templates, embedded: name → source.
pub const TEMPLATES: [(&str, &str); 7] = [
    ("base.html", include_str!("templates/base.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("target.html", include_str!("templates/target.html")),
    ("node.html", include_str!("templates/node.html")),
    ("alerts.html", include_str!("templates/alerts.html")),
    ("analyses.html", include_str!("templates/analyses.html")),
    ("message.html", include_str!("templates/message.html")),
];

/// The stylesheet, embedded.
pub const STYLE_CSS: &str = include_str!("static/style.css");

/// Bytes of every embedded asset (templates and stylesheet).
pub fn embedded_asset_bytes() -> usize {
    TEMPLATES.iter().map(|(_, s)| s.len()).sum::<usize>() + STYLE_CSS.len()
}

pub(super) fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            // The templates are part of the binary and covered by tests: a syntax error is a
            // build defect, reported on every page rather than as a panic.
            if let Err(e) = env.add_template(name, src) {
                tracing::error!("template {name}: {e}");
            }
        }
        env.add_filter("pct", |v: Option<f64>| {
            v.map_or("–".to_string(), |v| format!("{v:.2} %"))
        });
        env.add_filter("ms", |v: Option<f64>| {
            v.map_or("–".to_string(), |v| format!("{:.3} ms", v * 1000.0))
        });
        env.add_filter("num", |v: Option<f64>, digits: Option<usize>| {
            v.map_or("–".to_string(), |v| {
                format!("{v:.*}", digits.unwrap_or(1))
            })
        });
        env.add_filter("ago", |v: Option<String>| {
            match v
                .as_deref()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            {
                Some(t) => ago(t.with_timezone(&Utc), Utc::now()),
                None => "–".to_string(),
            }
        });
        env
    })
}

/// A serializable value for a template (the JSON projections as they are).
pub(super) fn ser<T: Serialize>(v: T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// "12 s ago", "5 min ago", "3 h ago", "2 d ago".
pub fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..=119 => format!("{s} s ago"),
        120..=7199 => format!("{} min ago", s / 60),
        7200..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// Renders template `name` with `ctx`.
///
/// # Errors
/// The template's error, as text.
pub fn render(name: &str, ctx: Value) -> Result<String, String> {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| format!("{e:#}"))
}

/// Answers `rendered` (the page `name`) with `status`, or a 500 naming the page when it
/// could not be rendered (the error is logged, not shown).
pub(super) fn respond(
    status: StatusCode,
    name: &str,
    rendered: Result<String, String>,
) -> Response {
    match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("rendering {name}: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("page {name} could not be rendered"),
            )
                .into_response()
        }
    }
}

/// Renders template `name` with `ctx` and answers it with `status`.
pub(super) fn page(status: StatusCode, name: &str, ctx: Value) -> Response {
    respond(status, name, render(name, ctx))
}

/// A short page saying `text` under `title`, with the sign-in form when `login`.
pub(super) fn message(status: StatusCode, title: &str, text: &str, login: bool) -> Response {
    page(
        status,
        "message.html",
        context! { title, text, login, refresh => 0 },
    )
}

/// A refusal answered as a page: 401 offers the sign-in form, 403 and 503 say why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub Denied);

impl From<Denied> for Refused {
    fn from(d: Denied) -> Self {
        Refused(d)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let d = self.0;
        let login = matches!(d, Denied::Unauthenticated(_));
        let title = match d {
            Denied::Unauthenticated(_) => "Sign in",
            Denied::Forbidden(_) => "Not allowed",
            Denied::Unavailable(_) => "Cannot check access",
        };
        message(d.status(), title, d.message(), login)
    }
}

/// A page's caller: `T` ([`Caller`](crate::authz::Caller) or
/// [`Reader`](crate::http::Reader), the read API's extractors) with its refusal answered as a
/// [`Refused`] page.
#[derive(Clone, Debug)]
pub struct Viewer<T>(pub T);

impl<T> FromRequestParts<Api> for Viewer<T>
where
    T: FromRequestParts<Api, Rejection = Denied> + Send,
{
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Refused> {
        Ok(Viewer(T::from_request_parts(parts, api).await?))
    }
}
