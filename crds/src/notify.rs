//! `spec.notify` of AlertRule and AIAnalysis: where notifications go.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{check_duration, Duration, SecretKeyRef, SecretRef};
use crate::validation::Errors;

/// Most channels per object.
pub const MAX_CHANNELS: usize = 16;

/// Where and how notifications are delivered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotifySpec {
    /// Channels to deliver to; every notification goes to all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub channels: Vec<Channel>,
    /// Labels that group alerts into one notification (like Alertmanager's `group_by`), e.g.
    /// `[alertname, target]`. Known labels: alertname, namespace, target, node, device, port,
    /// peer, severity. Empty: every alert is notified on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 63)))]
    pub group_by: Vec<String>,
    /// How long to wait for more alerts of the same group before the first notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<Duration>,
}

/// One named notification channel. Exactly one of `slack`, `telegram`, `email`, `webhook`,
/// `alertmanager` must be set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [
    {"required": ["slack"]},
    {"required": ["telegram"]},
    {"required": ["email"]},
    {"required": ["webhook"]},
    {"required": ["alertmanager"]},
]))]
pub struct Channel {
    /// Name of the channel, unique in the list; it keys `status.notifications`.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// A Slack incoming webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackChannel>,
    /// A Telegram bot sending to one chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramChannel>,
    /// Email over SMTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailChannel>,
    /// A generic JSON webhook, optionally signed with HMAC-SHA256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookChannel>,
    /// An Alertmanager (API v2 `POST /api/v2/alerts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertmanagerChannel>,
}

impl Channel {
    /// The kind of the configured channel (`slack`, `telegram`, ...), or `None` when not
    /// exactly one is set.
    pub fn kind(&self) -> Option<&'static str> {
        let set: Vec<&'static str> = [
            ("slack", self.slack.is_some()),
            ("telegram", self.telegram.is_some()),
            ("email", self.email.is_some()),
            ("webhook", self.webhook.is_some()),
            ("alertmanager", self.alertmanager.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        match set.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Every Secret reference of this channel as `(field path suffix, secret name)`.
    pub fn secret_names(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        if let Some(s) = &self.slack {
            out.push((
                "slack.webhookUrlSecretRef",
                s.webhook_url_secret_ref.name.as_str(),
            ));
        }
        if let Some(t) = &self.telegram {
            out.push((
                "telegram.botTokenSecretRef",
                t.bot_token_secret_ref.name.as_str(),
            ));
        }
        if let Some(e) = &self.email {
            if let Some(c) = &e.credentials_secret_ref {
                out.push(("email.credentialsSecretRef", c.name.as_str()));
            }
        }
        if let Some(w) = &self.webhook {
            out.push(("webhook.urlSecretRef", w.url_secret_ref.name.as_str()));
            if let Some(h) = &w.hmac_secret_ref {
                out.push(("webhook.hmacSecretRef", h.name.as_str()));
            }
        }
        if let Some(a) = &self.alertmanager {
            if let Some(u) = &a.url_secret_ref {
                out.push(("alertmanager.urlSecretRef", u.name.as_str()));
            }
        }
        out
    }
}

/// Slack incoming webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SlackChannel {
    /// Secret key holding the webhook URL (`https://hooks.slack.com/services/...`).
    pub webhook_url_secret_ref: SecretKeyRef,
}

/// Telegram Bot API `sendMessage`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelegramChannel {
    /// Secret key holding the bot token (`123456:ABC...`).
    pub bot_token_secret_ref: SecretKeyRef,
    /// Chat id (a number, negative for groups) or `@channelusername`.
    #[schemars(
        length(min = 1, max = 64),
        regex(pattern = r"^(-?[0-9]+|@[A-Za-z0-9_]{4,})$")
    )]
    pub chat_id: String,
}

/// Transport security of an SMTP connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (usually port 587); fails if not offered.
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption (only for a relay on a trusted network).
    None,
}

/// Email over SMTP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailChannel {
    /// Recipient addresses.
    #[schemars(length(min = 1, max = 16), inner(length(min = 3, max = 254)))]
    pub to: Vec<String>,
    /// Sender address (`From:`).
    #[schemars(length(min = 3, max = 254))]
    pub from: String,
    /// SMTP server host name or IP.
    #[schemars(length(min = 1, max = 253))]
    pub smtp_host: String,
    /// SMTP server port.
    #[serde(default = "default_smtp_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub smtp_port: u16,
    /// Transport security.
    #[serde(default)]
    pub tls: SmtpTls,
    /// Secret with keys `username` and `password` for SMTP AUTH; none: no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretRef>,
}

fn default_smtp_port() -> u16 {
    587
}

/// Generic webhook: `POST` of the notification as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookChannel {
    /// Secret key holding the URL (URLs often carry tokens, hence a Secret).
    pub url_secret_ref: SecretKeyRef,
    /// Secret key holding an HMAC key; when set, each request carries
    /// `X-Fabricwatch-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret_ref: Option<SecretKeyRef>,
}

/// Alertmanager API v2. Exactly one of `url` and `urlSecretRef`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertmanagerChannel {
    /// Base URL, e.g. `http://alertmanager.monitoring.svc:9093`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://"))]
    pub url: Option<String>,
    /// Secret key holding the base URL (when it carries credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret_ref: Option<SecretKeyRef>,
}

impl NotifySpec {
    /// Every Secret the channels refer to, as `(field path, secret name)`, with paths under
    /// `path` (e.g. `spec.notify`).
    pub fn secret_refs(&self, path: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            for (field, name) in c.secret_names() {
                out.push((format!("{path}.channels[{i}].{field}"), name.to_string()));
            }
        }
        out
    }

    /// Checks what the schema cannot: one kind per channel, unique names, durations.
    pub(crate) fn validate_into(&self, errors: &mut Errors, path: &str) {
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.channels.iter().enumerate() {
            let p = format!("{path}.channels[{i}]");
            if !seen.insert(c.name.as_str()) {
                errors.push(
                    format!("{p}.name"),
                    format!("duplicate channel name {:?}", c.name),
                );
            }
            if c.kind().is_none() {
                errors.push(
                    p.clone(),
                    "set exactly one of slack, telegram, email, webhook, alertmanager",
                );
            }
            if let Some(a) = &c.alertmanager {
                if a.url.is_some() == a.url_secret_ref.is_some() {
                    errors.push(
                        format!("{p}.alertmanager"),
                        "set exactly one of url and urlSecretRef",
                    );
                }
            }
            if let Some(e) = &c.email {
                for (j, to) in e.to.iter().enumerate() {
                    if !looks_like_email(to) {
                        errors.push(
                            format!("{p}.email.to[{j}]"),
                            format!("{to:?} is not an email address"),
                        );
                    }
                }
                if !looks_like_email(&e.from) {
                    errors.push(
                        format!("{p}.email.from"),
                        format!("{:?} is not an email address", e.from),
                    );
                }
                if e.smtp_port == 0 {
                    errors.push(format!("{p}.email.smtpPort"), "must be 1..65535");
                }
            }
        }
        if let Some(w) = &self.group_wait {
            check_duration(
                errors,
                &format!("{path}.groupWait"),
                w,
                std::time::Duration::ZERO,
            );
        }
    }
}

/// `local@domain` with a non-empty local part and a dotted or single-label domain; deliberately
/// loose (RFC 5321 addresses are the SMTP server's business), it catches typos like a missing `@`.
fn looks_like_email(s: &str) -> bool {
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
        }
        None => false,
    }
}
