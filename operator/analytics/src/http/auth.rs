//! Who is asking, as axum extractors: the bearer-token checks of every route, done once here
//! with the authenticator and authorizer in the router's state ([`Api`]).
//!
//! | extractor | used by | refusal |
//! | --- | --- | --- |
//! | [`Agent`] | `POST /api/v1/reports` | [`IngestError`] (401/503), counted in the reports counter |
//! | [`Caller`] | every read route and fleet-view page | [`Denied`] (401/503) |
//! | [`Reader`] | the lists: a [`Caller`] and the namespaces it may read | [`Denied`] (401/403/503) |
//!
//! Agents authenticate with the `Authorization` header only ([`crate::policy`] decides what
//! they may report once the body is read); readers may also send the [`TOKEN_COOKIE`] the
//! fleet view sets.

use std::time::Instant;

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};
use fabricwatch_common::auth::{bearer_token, Identity};

use super::{read::scope, Api, IngestError};
use crate::authz::{Caller, Denied, Scope};

/// Cookie the fleet view stores a bearer token in (browsers send no `Authorization` header
/// on navigation). `HttpOnly; SameSite=Strict`, so scripts and other sites cannot use it.
pub const TOKEN_COOKIE: &str = "fabricwatch_token";

/// The bearer credential of a request: the `Authorization` header, else the
/// [`TOKEN_COOKIE`] cookie as `Bearer <value>`.
pub fn credential(headers: &header::HeaderMap) -> Option<String> {
    if let Some(h) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return Some(h.to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == TOKEN_COOKIE && !v.is_empty())
        .map(|(_, v)| format!("Bearer {v}"))
}

impl FromRequestParts<Api> for Caller {
    type Rejection = Denied;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Denied> {
        api.access
            .caller(credential(&parts.headers).as_deref())
            .await
    }
}

/// A [`Caller`] with the namespaces it may read among those holding data ([`scope`]): what
/// every list answers about.
#[derive(Clone, Debug)]
pub struct Reader {
    /// Who is asking.
    pub caller: Caller,
    /// What it may read.
    pub scope: Scope,
}

impl FromRequestParts<Api> for Reader {
    type Rejection = Denied;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, Denied> {
        let caller = Caller::from_request_parts(parts, api).await?;
        let scope = scope(&api.shared, &api.access, &caller).await?;
        Ok(Reader { caller, scope })
    }
}

/// The node agent sending a report, authenticated before its body is read, so
/// unauthenticated clients cost no parsing.
#[derive(Clone, Debug)]
pub struct Agent {
    /// Who the TokenReview says it is; `None` with `--insecure-skip-auth`.
    pub identity: Option<Identity>,
    /// When the request reached the handler chain, before authentication: the start of
    /// `fabricwatch_analytics_ingest_duration_seconds`, which covers authentication.
    pub received: Instant,
}

impl FromRequestParts<Api> for Agent {
    type Rejection = IngestError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, IngestError> {
        let received = Instant::now();
        let identity = match &api.shared.auth {
            None => None,
            Some(auth) => {
                let header = parts
                    .headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                let checked = match bearer_token(header) {
                    Ok(token) => auth.authenticate(token).await,
                    Err(e) => Err(e),
                };
                Some(checked.map_err(|e| IngestError::from(e).counted(&api.shared.metrics))?)
            }
        };
        Ok(Agent { identity, received })
    }
}
