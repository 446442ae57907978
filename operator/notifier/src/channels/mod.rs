//! Channel senders: one module per receiver protocol. Each has a pure payload builder
//! (unit-tested) and a `send` that makes one attempt; [`crate::deliver`] retries.

pub mod alertmanager;
pub mod email;
pub mod slack;
pub mod telegram;
pub mod webhook;

use std::time::Duration;

use crate::batch::Batch;
use crate::channel::Target;
use crate::deliver::{retry_after_header, SendError};
use crate::secret::Scrubber;

/// Shared settings of all senders.
#[derive(Clone, Debug)]
pub struct SendContext {
    /// HTTP client (rustls; per-request timeout set from `timeout`).
    pub http: reqwest::Client,
    /// Telegram Bot API base URL, `https://api.telegram.org` in production.
    pub telegram_api: String,
    /// Link to this installation shown in webhook payloads (`externalURL`); may be empty.
    pub external_url: String,
    /// Per-attempt timeout (connect + send + answer).
    pub timeout: Duration,
}

impl SendContext {
    /// A context with a fresh rustls HTTP client.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(
        telegram_api: impl Into<String>,
        external_url: impl Into<String>,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("fabricwatch-notifier/", env!("CARGO_PKG_VERSION")))
            // Webhook URLs are secrets: never follow a redirect to somewhere else with them.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            telegram_api: telegram_api.into(),
            external_url: external_url.into(),
            timeout,
        })
    }
}

/// Makes one delivery attempt of `batch` to `target`.
///
/// # Errors
/// A classified, scrubbed [`SendError`].
pub async fn send_once(ctx: &SendContext, target: &Target, batch: &Batch) -> Result<(), SendError> {
    let scrub = target.scrubber();
    match target {
        Target::Slack { webhook_url } => slack::send(ctx, webhook_url, batch, &scrub).await,
        Target::Telegram { bot_token, chat_id } => {
            telegram::send(ctx, bot_token, chat_id, batch, &scrub).await
        }
        Target::Email {
            to,
            from,
            smtp_host,
            smtp_port,
            tls,
            credentials,
        } => {
            let server = email::SmtpServer {
                host: smtp_host,
                port: *smtp_port,
                tls: *tls,
                credentials: credentials.as_ref(),
                timeout: ctx.timeout,
            };
            email::send(&server, from, to, batch, &scrub).await
        }
        Target::Webhook { url, hmac_key } => {
            webhook::send(ctx, url, hmac_key.as_ref(), batch, &scrub).await
        }
        Target::Alertmanager { url } => alertmanager::send(ctx, url, batch, &scrub).await,
    }
}

/// An HTTP answer: status and the start of the body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: reqwest::StatusCode,
    pub body: String,
    /// The `Retry-After` header, parsed.
    pub retry_after: Option<Duration>,
}

/// Most bytes of an answer body read.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// POSTs `body` as JSON with extra `headers`; a non-2xx answer is returned as `Ok` when
/// `accept` says so (Telegram inspects its 400s), else turned into a [`SendError`].
pub(crate) async fn post_json(
    ctx: &SendContext,
    url: &str,
    body: Vec<u8>,
    headers: &[(&str, String)],
    scrub: &Scrubber,
    accept: impl Fn(reqwest::StatusCode) -> bool,
) -> Result<Answer, SendError> {
    let mut req = ctx
        .http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| SendError::from_reqwest(e, scrub))?;
    let status = resp.status();
    let retry_after = retry_after_header(resp.headers());
    // A receiver may answer with a body of any size; the rest is never read.
    let (bytes, _) = fabricwatch_common::http_body::read_limited(resp, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| SendError::from_reqwest(e, scrub))?;
    let body = String::from_utf8_lossy(&bytes).into_owned();
    if status.is_success() || accept(status) {
        Ok(Answer {
            status,
            body,
            retry_after,
        })
    } else {
        Err(SendError::from_status(status, retry_after, &body, scrub))
    }
}

/// Joins a base URL and a path without doubling or dropping the `/`.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}
