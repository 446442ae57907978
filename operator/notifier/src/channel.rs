//! Channels: as configured (by Secret reference) and as resolved (with secret values).
//!
//! [`ChannelSpec`] mirrors one entry of an object's `spec.notify.channels` without any
//! Kubernetes types; [`crate::source`] maps the CRD types onto it. [`Target`] is the same
//! channel after its Secrets were read, ready to send to.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::{Scrubber, SecretValue};

/// Reference to one key of a Secret in the source object's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretKey {
    /// Secret name.
    pub name: String,
    /// Key in the Secret's `data`.
    pub key: String,
}

/// SMTP transport security.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (RFC 3207); fails when the server does not offer it.
    #[default]
    StartTls,
    /// TLS from the first byte ("implicit TLS", RFC 8314), usually port 465.
    Tls,
    /// No encryption: only for a relay on a trusted network.
    None,
}

/// Where an Alertmanager's base URL comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UrlSource {
    /// Written in the object.
    Inline(String),
    /// Read from a Secret (the URL carries credentials).
    Secret(SecretKey),
}

/// Channel kind, the `channel` label of the notifier's metrics (five values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Slack incoming webhook.
    Slack,
    /// Telegram Bot API.
    Telegram,
    /// SMTP.
    Email,
    /// Generic JSON webhook.
    Webhook,
    /// Alertmanager API v2.
    Alertmanager,
}

impl ChannelKind {
    /// Lower-case name (`slack`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Telegram => "telegram",
            Self::Email => "email",
            Self::Webhook => "webhook",
            Self::Alertmanager => "alertmanager",
        }
    }

    /// All kinds, for pre-registering metric series.
    pub const ALL: [ChannelKind; 5] = [
        Self::Slack,
        Self::Telegram,
        Self::Email,
        Self::Webhook,
        Self::Alertmanager,
    ];
}

/// One configured channel, secrets by reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChannelSpec {
    /// Slack incoming webhook; the Secret holds the webhook URL.
    Slack {
        /// The URL.
        webhook_url: SecretKey,
    },
    /// Telegram `sendMessage`.
    Telegram {
        /// The bot token (`123456:ABC...`).
        bot_token: SecretKey,
        /// Chat id (number) or `@channelusername`.
        chat_id: String,
    },
    /// Email over SMTP.
    Email {
        /// Recipients.
        to: Vec<String>,
        /// Sender.
        from: String,
        /// SMTP host.
        smtp_host: String,
        /// SMTP port.
        smtp_port: u16,
        /// Transport security.
        tls: SmtpTls,
        /// Secret with keys `username` and `password`; `None`: no SMTP AUTH.
        credentials_secret: Option<String>,
    },
    /// Alertmanager-compatible webhook.
    Webhook {
        /// The URL.
        url: SecretKey,
        /// HMAC-SHA256 key for the signature header.
        hmac_key: Option<SecretKey>,
    },
    /// Alertmanager API v2.
    Alertmanager {
        /// Base URL (without `/api/v2/alerts`).
        url: UrlSource,
    },
}

impl ChannelSpec {
    /// The kind.
    pub fn kind(&self) -> ChannelKind {
        match self {
            Self::Slack { .. } => ChannelKind::Slack,
            Self::Telegram { .. } => ChannelKind::Telegram,
            Self::Email { .. } => ChannelKind::Email,
            Self::Webhook { .. } => ChannelKind::Webhook,
            Self::Alertmanager { .. } => ChannelKind::Alertmanager,
        }
    }
}

/// A named channel of a source object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedChannel {
    /// Name, unique within the object; keys `status.notifications`.
    pub name: String,
    /// What and where.
    pub spec: ChannelSpec,
}

/// Everything the notifier needs from a source object's spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Channels; every notification goes to all of them.
    pub channels: Vec<NamedChannel>,
    /// Labels that group alerts into one message; empty: one message per alert.
    pub group_by: Vec<String>,
    /// How long a new group waits for more alerts before it is sent.
    pub group_wait: Duration,
    /// An alert (same fingerprint and status) is not re-sent to a channel within 90 % of
    /// this time (see [`crate::policy`]).
    pub repeat_interval: Duration,
    /// Least time between two firing notifications of the same alert to a channel.
    /// Zero: no cooldown.
    pub cooldown: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            group_by: Vec::new(),
            group_wait: DEFAULT_GROUP_WAIT,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            cooldown: Duration::ZERO,
        }
    }
}

/// Group wait when the object sets none (Alertmanager's default `group_wait` is 30 s; a
/// shorter one suits alerts that analytics already held for their `for` duration).
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(10);
/// Repeat interval when the object sets none (Alertmanager's default `repeat_interval`).
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// Credentials for SMTP AUTH.
#[derive(Clone, Debug)]
pub struct SmtpCredentials {
    /// User name (not treated as secret, but never logged either).
    pub username: String,
    /// Password.
    pub password: SecretValue,
}

/// A channel with its secrets read, ready to send to.
#[derive(Clone, Debug)]
pub enum Target {
    /// Slack incoming webhook.
    Slack {
        /// Webhook URL.
        webhook_url: SecretValue,
    },
    /// Telegram bot.
    Telegram {
        /// Bot token.
        bot_token: SecretValue,
        /// Chat id or `@channelusername`.
        chat_id: String,
    },
    /// SMTP.
    Email {
        /// Recipients.
        to: Vec<String>,
        /// Sender.
        from: String,
        /// Host.
        smtp_host: String,
        /// Port.
        smtp_port: u16,
        /// Security.
        tls: SmtpTls,
        /// AUTH credentials.
        credentials: Option<SmtpCredentials>,
    },
    /// Webhook.
    Webhook {
        /// URL.
        url: SecretValue,
        /// HMAC key.
        hmac_key: Option<SecretValue>,
    },
    /// Alertmanager.
    Alertmanager {
        /// Base URL (treated as secret whatever its source).
        url: SecretValue,
    },
}

impl Target {
    /// The kind.
    pub fn kind(&self) -> ChannelKind {
        match self {
            Self::Slack { .. } => ChannelKind::Slack,
            Self::Telegram { .. } => ChannelKind::Telegram,
            Self::Email { .. } => ChannelKind::Email,
            Self::Webhook { .. } => ChannelKind::Webhook,
            Self::Alertmanager { .. } => ChannelKind::Alertmanager,
        }
    }

    /// A scrubber for every secret value of this target.
    pub fn scrubber(&self) -> Scrubber {
        match self {
            Self::Slack { webhook_url } => Scrubber::new([webhook_url]),
            Self::Telegram { bot_token, .. } => Scrubber::new([bot_token]),
            Self::Email { credentials, .. } => {
                Scrubber::new(credentials.iter().map(|c| &c.password))
            }
            Self::Webhook { url, hmac_key } => {
                Scrubber::new(std::iter::once(url).chain(hmac_key.iter()))
            }
            Self::Alertmanager { url } => Scrubber::new([url]),
        }
    }
}
