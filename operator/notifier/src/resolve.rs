//! Reading a source object's channels and their Secrets, behind a trait so that the engine
//! runs against Kubernetes ([`crate::kube_edge`]) or a fixed table (tests).

use std::collections::HashMap;
use std::future::Future;

use crate::channel::{ChannelSpec, NotifyConfig, SmtpCredentials, Target, UrlSource};
use crate::secret::SecretValue;
use fabricwatch_proto::notify::SourceKind;
use fabricwatch_proto::ObjectRef;

/// Why a source or Secret could not be read. Messages name objects and keys, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The object or key does not exist (or the notifier may not read it): final.
    #[error("{0}")]
    NotFound(String),
    /// The API server could not be reached: try again later.
    #[error("{0}")]
    Unavailable(String),
}

/// Source of channel configuration and Secret values.
pub trait Resolver: Send + Sync + 'static {
    /// The notify configuration of the source object.
    fn config(
        &self,
        kind: SourceKind,
        source: &ObjectRef,
    ) -> impl Future<Output = Result<NotifyConfig, ResolveError>> + Send;

    /// One key of a Secret.
    fn secret(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> impl Future<Output = Result<SecretValue, ResolveError>> + Send;
}

/// Reads the Secrets of `spec` (in `namespace`) and returns the sendable target.
///
/// # Errors
/// The first Secret that cannot be read.
pub async fn resolve_target<R: Resolver>(
    resolver: &R,
    namespace: &str,
    spec: &ChannelSpec,
) -> Result<Target, ResolveError> {
    Ok(match spec {
        ChannelSpec::Slack { webhook_url } => Target::Slack {
            webhook_url: resolver
                .secret(namespace, &webhook_url.name, &webhook_url.key)
                .await?,
        },
        ChannelSpec::Telegram { bot_token, chat_id } => Target::Telegram {
            bot_token: resolver
                .secret(namespace, &bot_token.name, &bot_token.key)
                .await?,
            chat_id: chat_id.clone(),
        },
        ChannelSpec::Email {
            to,
            from,
            smtp_host,
            smtp_port,
            tls,
            credentials_secret,
        } => {
            let credentials = match credentials_secret {
                Some(name) => Some(SmtpCredentials {
                    username: resolver
                        .secret(namespace, name, "username")
                        .await?
                        .expose()
                        .to_owned(),
                    password: resolver.secret(namespace, name, "password").await?,
                }),
                None => None,
            };
            Target::Email {
                to: to.clone(),
                from: from.clone(),
                smtp_host: smtp_host.clone(),
                smtp_port: *smtp_port,
                tls: *tls,
                credentials,
            }
        }
        ChannelSpec::Webhook { url, hmac_key } => Target::Webhook {
            url: resolver.secret(namespace, &url.name, &url.key).await?,
            hmac_key: match hmac_key {
                Some(k) => Some(resolver.secret(namespace, &k.name, &k.key).await?),
                None => None,
            },
        },
        ChannelSpec::Alertmanager { url } => Target::Alertmanager {
            url: match url {
                UrlSource::Inline(u) => SecretValue::new(u.clone()),
                UrlSource::Secret(k) => resolver.secret(namespace, &k.name, &k.key).await?,
            },
        },
    })
}

/// A fixed table of configs and Secrets, for tests and local runs without Kubernetes.
#[derive(Clone, Debug, Default)]
pub struct StaticResolver {
    /// Configs by `(kind, namespace/name)`.
    pub configs: HashMap<(SourceKind, ObjectRef), NotifyConfig>,
    /// Secret values by `(namespace, name, key)`.
    pub secrets: HashMap<(String, String, String), String>,
}

impl Resolver for StaticResolver {
    async fn config(
        &self,
        kind: SourceKind,
        source: &ObjectRef,
    ) -> Result<NotifyConfig, ResolveError> {
        self.configs
            .get(&(kind, source.clone()))
            .cloned()
            .ok_or_else(|| ResolveError::NotFound(format!("{kind:?} {source} not found")))
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<SecretValue, ResolveError> {
        self.secrets
            .get(&(namespace.to_owned(), name.to_owned(), key.to_owned()))
            .map(|v| SecretValue::new(v.clone()))
            .ok_or_else(|| {
                ResolveError::NotFound(format!("Secret {namespace}/{name} has no key {key:?}"))
            })
    }
}
