//! Sign-in and sign-out: `GET/POST /ui/login` stores a bearer token in the `HttpOnly;
//! SameSite=Strict` [`TOKEN_COOKIE`] once it authenticates, `POST /ui/logout` clears it.

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use serde::Deserialize;

use super::render::{message, Refused};
use crate::http::{Api, TOKEN_COOKIE};

pub(super) async fn login_form() -> Response {
    message(
        StatusCode::OK,
        "Sign in",
        "Paste a Kubernetes bearer token (e.g. from `kubectl create token NAME`). It is kept in an HttpOnly cookie for this site only.",
        true,
    )
}

/// The sign-in form's body.
#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    token: String,
}

/// Characters a token may have to be stored in a cookie unquoted (RFC 6265 cookie-octet,
/// which JWTs' base64url and dots satisfy).
pub(super) fn cookie_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 8192
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

pub(super) async fn login(State(api): State<Api>, Form(f): Form<LoginForm>) -> Response {
    let token = f.token.trim();
    if !cookie_safe(token) {
        return message(
            StatusCode::BAD_REQUEST,
            "Sign in",
            "That is not a bearer token.",
            true,
        );
    }
    if let Err(d) = api.access.caller(Some(&format!("Bearer {token}"))).await {
        return Refused(d).into_response();
    }
    let mut r = Redirect::to("/ui/").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

pub(super) async fn logout() -> Response {
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "fabricwatch_token=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}
