//! Bearer-token authentication of fabricwatch's own components (agents → analytics,
//! analytics → notifier) with Kubernetes projected ServiceAccount tokens.
//!
//! The [`Authenticator`] trait and [`Identity`] are plain Rust; the Kubernetes implementation,
//! [`TokenReviewAuthenticator`], asks the API server with a `TokenReview`
//! (`authentication.k8s.io/v1`, available since Kubernetes 1.6, audiences since 1.13) and is
//! behind the `tokenreview` feature so binaries that only *send* tokens do not link kube.

use std::{future::Future, pin::Pin};

/// Extra key the API server sets on bound ServiceAccount tokens: the pod the token was
/// issued to (KEP-1205 bound service account tokens).
pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
/// Extra key: the pod's UID.
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
/// Extra key: the node the pod runs on (Kubernetes ≥ 1.30).
pub const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";

/// Who presented a valid token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Username, e.g. `system:serviceaccount:fabricwatch:fabricwatch-agent`.
    pub username: String,
    /// User UID, when the API server gave one.
    pub uid: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// `(namespace, name)` when the user is a ServiceAccount.
    pub service_account: Option<(String, String)>,
    /// Pod the token is bound to, when bound.
    pub pod_name: Option<String>,
    /// UID of that pod.
    pub pod_uid: Option<String>,
    /// Node of that pod (Kubernetes ≥ 1.30).
    pub node_name: Option<String>,
    /// Every extra attribute the API server returned (the keys above included), passed on
    /// unchanged in SubjectAccessReviews: authorizers may decide on them (e.g. scopes).
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl Identity {
    /// The identity of `username` with nothing else known; a ServiceAccount username also
    /// fills [`Identity::service_account`].
    pub fn named(username: &str) -> Identity {
        Identity {
            service_account: Identity::parse_service_account(username),
            username: username.into(),
            ..Default::default()
        }
    }

    /// Splits a ServiceAccount username `system:serviceaccount:<namespace>:<name>`.
    pub fn parse_service_account(username: &str) -> Option<(String, String)> {
        let rest = username.strip_prefix("system:serviceaccount:")?;
        let (ns, name) = rest.split_once(':')?;
        (!ns.is_empty() && !name.is_empty() && !name.contains(':'))
            .then(|| (ns.to_string(), name.to_string()))
    }
}

/// Why a request is not authenticated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header (HTTP 401).
    #[error("missing Authorization header: send 'Authorization: Bearer <token>'")]
    Missing,
    /// The header is not `Bearer <token>` (HTTP 401).
    #[error("malformed Authorization header: expected 'Bearer <token>'")]
    Malformed,
    /// The API server says the token is invalid, expired or for another audience (HTTP 401).
    #[error("token rejected: {0}")]
    Rejected(String),
    /// The API server could not be asked (HTTP 503; the client should retry).
    #[error("token review unavailable: {0}")]
    Unavailable(String),
}

/// A boxed future, so [`Authenticator`] is object-safe.
pub type AuthFuture<'a> = Pin<Box<dyn Future<Output = Result<Identity, AuthError>> + Send + 'a>>;

/// Checks a bearer token and says who presented it.
pub trait Authenticator: Send + Sync {
    /// Authenticates `token` (without the `Bearer ` prefix).
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a>;
}

/// A fixed table of tokens and who presents them, for running without Kubernetes (and for
/// tests): a token in the table is that identity, a token marked unavailable answers as if
/// TokenReview could not be asked, any other is rejected.
#[derive(Clone, Debug, Default)]
pub struct StaticTokens {
    table: std::collections::HashMap<String, Identity>,
    unavailable: std::collections::HashSet<String>,
}

impl StaticTokens {
    /// The table of `(token, identity)` pairs.
    pub fn new<T: Into<String>>(pairs: impl IntoIterator<Item = (T, Identity)>) -> StaticTokens {
        StaticTokens {
            table: pairs.into_iter().map(|(t, i)| (t.into(), i)).collect(),
            unavailable: Default::default(),
        }
    }

    /// Makes `token` answer [`AuthError::Unavailable`].
    pub fn unavailable_for(mut self, token: &str) -> StaticTokens {
        self.unavailable.insert(token.into());
        self
    }
}

impl Authenticator for StaticTokens {
    fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
        Box::pin(async move {
            if self.unavailable.contains(token) {
                return Err(AuthError::Unavailable("token review unavailable".into()));
            }
            self.table
                .get(token)
                .cloned()
                .ok_or_else(|| AuthError::Rejected("unknown token".into()))
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive, as
/// RFC 7235 §2.1 says); errors say what is wrong without echoing the value.
pub fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let h = header.ok_or(AuthError::Missing)?.trim();
    let (scheme, token) = h.split_once(' ').ok_or(AuthError::Malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.contains(char::is_whitespace)
    {
        return Err(AuthError::Malformed);
    }
    Ok(token)
}

#[cfg(feature = "tokenreview")]
pub use tokenreview::TokenReviewAuthenticator;

#[cfg(feature = "tokenreview")]
mod tokenreview {
    use std::{
        collections::HashMap,
        sync::Mutex,
        time::{Duration, Instant},
    };

    use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
    use kube::api::{Api, PostParams};
    use sha2::{Digest, Sha256};

    use super::*;

    type CacheEntry = (Instant, Result<Identity, AuthError>);

    /// [`Authenticator`] backed by `TokenReview`, with a small cache keyed by the token's
    /// SHA-256 (the token itself is never stored): valid results for `ttl`, rejections for
    /// `negative_ttl` (so a misbehaving client cannot turn each request into an API call), and
    /// API failures not at all. At most `max_entries` are held; when full, expired entries go,
    /// then everything.
    pub struct TokenReviewAuthenticator {
        api: Api<TokenReview>,
        audiences: Vec<String>,
        ttl: Duration,
        negative_ttl: Duration,
        max_entries: usize,
        cache: Mutex<HashMap<[u8; 32], CacheEntry>>,
    }

    impl TokenReviewAuthenticator {
        /// Reviews tokens with `client`, requiring one of `audiences` (empty: the API server's
        /// default audience). Defaults: 2 min positive TTL (kube-apiserver's own default for
        /// `--authentication-token-webhook-cache-ttl`), 5 s negative TTL, 10 000 entries.
        pub fn new(client: kube::Client, audiences: Vec<String>) -> Self {
            Self {
                api: Api::all(client),
                audiences,
                ttl: Duration::from_secs(120),
                negative_ttl: Duration::from_secs(5),
                max_entries: 10_000,
                cache: Mutex::new(HashMap::new()),
            }
        }

        /// Changes the cache lifetimes.
        pub fn with_ttl(mut self, ttl: Duration, negative_ttl: Duration) -> Self {
            self.ttl = ttl;
            self.negative_ttl = negative_ttl;
            self
        }

        fn cached(&self, key: &[u8; 32]) -> Option<Result<Identity, AuthError>> {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(key)
                .filter(|(exp, _)| *exp > Instant::now())
                .map(|(_, r)| r.clone())
        }

        fn remember(&self, key: [u8; 32], result: &Result<Identity, AuthError>) {
            let ttl = match result {
                Ok(_) => self.ttl,
                Err(AuthError::Unavailable(_)) => return,
                Err(_) => self.negative_ttl,
            };
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= self.max_entries {
                let now = Instant::now();
                cache.retain(|_, (exp, _)| *exp > now);
                if cache.len() >= self.max_entries {
                    cache.clear();
                }
            }
            cache.insert(key, (Instant::now() + ttl, result.clone()));
        }

        async fn review(&self, token: &str) -> Result<Identity, AuthError> {
            let review = TokenReview {
                spec: TokenReviewSpec {
                    token: Some(token.to_string()),
                    audiences: (!self.audiences.is_empty()).then(|| self.audiences.clone()),
                },
                ..Default::default()
            };
            let answer = self
                .api
                .create(&PostParams::default(), &review)
                .await
                .map_err(|e| AuthError::Unavailable(e.to_string()))?;
            identity_of(answer.status.unwrap_or_default(), &self.audiences)
        }
    }

    /// Interprets a TokenReview status: authenticated, and (when audiences were asked for)
    /// valid for one of them.
    pub(super) fn identity_of(
        status: TokenReviewStatus,
        audiences: &[String],
    ) -> Result<Identity, AuthError> {
        if status.authenticated != Some(true) {
            let why = status
                .error
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "not authenticated".into());
            return Err(AuthError::Rejected(why));
        }
        if !audiences.is_empty() {
            let got = status.audiences.unwrap_or_default();
            if !got.iter().any(|a| audiences.contains(a)) {
                return Err(AuthError::Rejected(format!(
                    "token is not valid for audience {audiences:?}"
                )));
            }
        }
        let user = status.user.unwrap_or_default();
        let username = user.username.unwrap_or_default();
        let extra = user.extra.unwrap_or_default();
        let first = |k: &str| extra.get(k).and_then(|v| v.first()).cloned();
        Ok(Identity {
            service_account: Identity::parse_service_account(&username),
            username,
            uid: user.uid,
            groups: user.groups.unwrap_or_default(),
            pod_name: first(EXTRA_POD_NAME),
            pod_uid: first(EXTRA_POD_UID),
            node_name: first(EXTRA_NODE_NAME),
            extra,
        })
    }

    impl Authenticator for TokenReviewAuthenticator {
        fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
            Box::pin(async move {
                let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                if let Some(hit) = self.cached(&key) {
                    return hit;
                }
                let result = self.review(token).await;
                self.remember(key, &result);
                result
            })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use k8s_openapi::api::authentication::v1::UserInfo;
        use std::collections::BTreeMap;

        fn status(auth: bool, aud: &[&str]) -> TokenReviewStatus {
            TokenReviewStatus {
                authenticated: Some(auth),
                audiences: Some(aud.iter().map(|s| s.to_string()).collect()),
                error: (!auth).then(|| "token has expired".into()),
                user: Some(UserInfo {
                    username: Some("system:serviceaccount:fw:fabricwatch-agent".into()),
                    extra: Some(BTreeMap::from([(
                        EXTRA_POD_NAME.to_string(),
                        vec!["agent-x1".to_string()],
                    )])),
                    ..Default::default()
                }),
            }
        }

        #[test]
        fn status_is_interpreted_with_audience_and_extras() {
            let aud = vec!["fabricwatch-analytics".to_string()];
            let id = identity_of(status(true, &["fabricwatch-analytics"]), &aud).expect("valid");
            assert_eq!(
                id.service_account,
                Some(("fw".into(), "fabricwatch-agent".into()))
            );
            assert_eq!(id.pod_name.as_deref(), Some("agent-x1"));
            assert!(
                matches!(identity_of(status(true, &["other"]), &aud), Err(AuthError::Rejected(m)) if m.contains("audience"))
            );
            assert_eq!(
                identity_of(status(false, &[]), &aud),
                Err(AuthError::Rejected("token has expired".into()))
            );
            assert!(
                identity_of(status(true, &[]), &[]).is_ok(),
                "no audience asked, none checked"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token(Some("Bearer abc.def")), Ok("abc.def"));
        assert_eq!(bearer_token(Some("bearer   abc ")), Ok("abc"));
        assert_eq!(bearer_token(None), Err(AuthError::Missing));
        assert_eq!(bearer_token(Some("Basic abc")), Err(AuthError::Malformed));
        assert_eq!(bearer_token(Some("Bearer")), Err(AuthError::Malformed));
        assert_eq!(bearer_token(Some("Bearer a b")), Err(AuthError::Malformed));
    }

    #[test]
    fn service_account_usernames() {
        assert_eq!(
            Identity::parse_service_account("system:serviceaccount:ns:sa"),
            Some(("ns".into(), "sa".into()))
        );
        assert_eq!(
            Identity::parse_service_account("system:serviceaccount:ns"),
            None
        );
        assert_eq!(Identity::parse_service_account("admin"), None);
        assert_eq!(
            Identity::parse_service_account("system:serviceaccount::sa"),
            None
        );
    }
}
