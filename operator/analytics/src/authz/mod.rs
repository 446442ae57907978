//! Who may read (and act on) what analytics holds: the read API and the fleet view answer a
//! caller only about the namespaces whose MonitorTargets the caller may `get`.
//!
//! The model is Kubernetes' own, the way `kube-rbac-proxy` and the aggregated API servers do
//! it: the caller sends a bearer token, a `TokenReview` says who it is, and a
//! `SubjectAccessReview` asks whether that user (with its groups and extras) may `get`
//! `monitortargets.fabricwatch.io` in the namespace. A list answers with the namespaces the
//! caller may read (all of them after one cluster-wide allowance). No token: 401; a token but
//! no namespace readable: 403; the API server unreachable: 503.
//!
//! The decision logic ([`Access`]) is plain Rust over two ports, [`Authenticator`](fabricwatch_common::auth::Authenticator) (from
//! `fabricwatch_common::auth`) and [`AccessReviewer`]; the Kubernetes implementation of the
//! latter is [`SubjectAccessReviewer`].
//!
//! | module | holds |
//! | --- | --- |
//! | this one | the vocabulary: [`Attributes`], [`Caller`], [`Denied`], [`Scope`], the [`AccessReviewer`] port |
//! | `access` | [`Access`]: authentication, cached authorization, readable namespaces |
//! | `cache` | [`DecisionCache`] |
//! | `review` | [`SubjectAccessReviewer`] and the review it sends |

mod access;
mod cache;
mod review;

use std::{collections::BTreeSet, future::Future, pin::Pin};

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use fabricwatch_common::auth::{AuthError, Identity};

pub use access::{Access, DEFAULT_DECISION_ENTRIES, DEFAULT_DECISION_TTL};
pub use cache::DecisionCache;
pub use review::{subject_access_review, SubjectAccessReviewer};

/// API group of fabricwatch's resources.
pub const GROUP: &str = "fabricwatch.io";
/// The resource whose `get` permission grants reading a namespace's fleet data.
pub const READ_RESOURCE: &str = "monitortargets";
/// The verb that grants reading.
pub const READ_VERB: &str = "get";

/// One authorization question: may the caller `verb` `resource` (of [`GROUP`]) in
/// `namespace` (`None`: in every namespace), optionally only the object `name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// Kubernetes verb, e.g. `get`, `update`.
    pub verb: String,
    /// Plural resource name, e.g. `monitortargets`.
    pub resource: String,
    /// Namespace; `None` asks about all namespaces at once.
    pub namespace: Option<String>,
    /// Object name, when the question is about one object.
    pub name: Option<String>,
}

impl Attributes {
    /// The read permission ([`READ_VERB`] on [`READ_RESOURCE`]) in `namespace`.
    pub fn read(namespace: Option<&str>) -> Self {
        Self {
            verb: READ_VERB.into(),
            resource: READ_RESOURCE.into(),
            namespace: namespace.map(str::to_string),
            name: None,
        }
    }
}

/// A boxed future, so [`AccessReviewer`] is object-safe.
pub type ReviewFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, AuthError>> + Send + 'a>>;

/// Answers authorization questions about a user: `Ok(true)` allowed, `Ok(false)` denied,
/// `Err(AuthError::Unavailable)` when the authorizer cannot be asked.
pub trait AccessReviewer: Send + Sync {
    /// May `who` do `what`?
    fn allowed<'a>(&'a self, who: &'a Identity, what: &'a Attributes) -> ReviewFuture<'a>;
}

/// Who is asking, once authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Authentication is off (`--insecure-skip-auth`) or the request came through a trusted
    /// listener (`--ui-listen` on loopback): everything is readable.
    Trusted,
    /// A user the API server vouched for.
    User(Box<Identity>),
}

impl Caller {
    /// The name recorded for actions (acknowledgements): the username, or `local` for a
    /// trusted caller.
    pub fn name(&self) -> &str {
        match self {
            Caller::Trusted => "local",
            Caller::User(id) => &id.username,
        }
    }
}

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No valid token (HTTP 401).
    Unauthenticated(String),
    /// Authenticated, not allowed (HTTP 403).
    Forbidden(String),
    /// The API server could not be asked (HTTP 503).
    Unavailable(String),
}

impl Denied {
    /// HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Denied::Forbidden(_) => StatusCode::FORBIDDEN,
            Denied::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `reason` of the error body.
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::Unauthenticated(_) => "unauthenticated",
            Denied::Forbidden(_) => "forbidden",
            Denied::Unavailable(_) => "auth_unavailable",
        }
    }

    /// Human text.
    pub fn message(&self) -> &str {
        match self {
            Denied::Unauthenticated(m) | Denied::Forbidden(m) | Denied::Unavailable(m) => m,
        }
    }
}

impl From<AuthError> for Denied {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unavailable(_) => Denied::Unavailable(e.to_string()),
            _ => Denied::Unauthenticated(e.to_string()),
        }
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        crate::http::error_response(self.status(), self.reason(), self.message().to_string())
    }
}

/// The namespaces a caller may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace.
    All,
    /// Only these.
    Only(BTreeSet<String>),
}

impl Scope {
    /// May the caller read `namespace`?
    pub fn contains(&self, namespace: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(s) => s.contains(namespace),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            atomic::{AtomicUsize, Ordering},
            Arc,
        },
        time::{Duration, Instant},
    };

    use super::*;

    /// Token → identity table.
    fn tokens() -> fabricwatch_common::auth::StaticTokens {
        fabricwatch_common::auth::StaticTokens::new(
            ["admin", "alice", "nobody"].map(|t| (t, Identity::named(t))),
        )
        .unavailable_for("down")
    }

    /// `admin` reads everything, `alice` reads namespace `a`, `nobody` nothing; counts asks.
    #[derive(Default)]
    struct Rbac {
        asks: AtomicUsize,
        down: bool,
    }

    impl AccessReviewer for Rbac {
        fn allowed<'a>(&'a self, who: &'a Identity, what: &'a Attributes) -> ReviewFuture<'a> {
            Box::pin(async move {
                self.asks.fetch_add(1, Ordering::SeqCst);
                if self.down {
                    return Err(AuthError::Unavailable("authorizer down".into()));
                }
                Ok(match who.username.as_str() {
                    "admin" => true,
                    "alice" => what.namespace.as_deref() == Some("a") && what.verb == "get",
                    _ => false,
                })
            })
        }
    }

    fn access(rbac: Arc<Rbac>) -> Access {
        Access::checked(
            Arc::new(tokens()),
            rbac,
            DecisionCache::new(Duration::from_secs(60), 100),
        )
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn tokens_map_to_401_and_503() {
        let a = access(Arc::default());
        assert!(matches!(
            a.caller(None).await,
            Err(Denied::Unauthenticated(_))
        ));
        assert!(matches!(
            a.caller(Some("Basic x")).await,
            Err(Denied::Unauthenticated(_))
        ));
        let e = a.caller(Some("Bearer forged")).await.expect_err("rejected");
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        let e = a.caller(Some("Bearer down")).await.expect_err("down");
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        let c = a.caller(Some("Bearer alice")).await.expect("alice");
        assert_eq!(c.name(), "alice");
    }

    #[tokio::test]
    async fn lists_are_filtered_to_readable_namespaces() {
        let a = access(Arc::default());
        let alice = a.caller(Some("Bearer alice")).await.expect("alice");
        let scope = a.readable(&alice, set(&["a", "b"])).await.expect("a");
        assert_eq!(scope, Scope::Only(set(&["a"])));
        assert!(scope.contains("a") && !scope.contains("b"));
        let admin = a.caller(Some("Bearer admin")).await.expect("admin");
        assert_eq!(a.readable(&admin, set(&["a"])).await, Ok(Scope::All));
        let nobody = a.caller(Some("Bearer nobody")).await.expect("nobody");
        let e = a
            .readable(&nobody, set(&["a", "b"]))
            .await
            .expect_err("403");
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        // With no data at all, a caller without any permission is still refused.
        let e = a.readable(&nobody, set(&[])).await.expect_err("403");
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn single_objects_need_their_namespace() {
        let a = access(Arc::default());
        let alice = a.caller(Some("Bearer alice")).await.expect("alice");
        assert_eq!(a.require_read(&alice, "a").await, Ok(()));
        let e = a.require_read(&alice, "b").await.expect_err("b");
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(
            e.message()
                .contains("alice may not get monitortargets.fabricwatch.io in namespace b"),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn decisions_are_cached_and_failures_are_not() {
        let rbac = Arc::new(Rbac::default());
        let a = access(rbac.clone());
        let alice = a.caller(Some("Bearer alice")).await.expect("alice");
        for _ in 0..3 {
            a.readable(&alice, set(&["a", "b"])).await.expect("a");
        }
        // One cluster-wide ask, one per namespace; the repeats come from the cache.
        assert_eq!(rbac.asks.load(Ordering::SeqCst), 3);

        let down = Arc::new(Rbac {
            down: true,
            ..Default::default()
        });
        let a = access(down.clone());
        let alice = a.caller(Some("Bearer alice")).await.expect("alice");
        for _ in 0..2 {
            let e = a.require_read(&alice, "a").await.expect_err("503");
            assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        assert_eq!(
            down.asks.load(Ordering::SeqCst),
            2,
            "failures are asked again"
        );
    }

    #[test]
    fn cache_expires_and_stays_bounded() {
        let c = DecisionCache::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        let who = |u: &str| Identity {
            username: u.into(),
            ..Default::default()
        };
        let k1 = DecisionCache::key(&who("u1"), &Attributes::read(Some("a")));
        let k2 = DecisionCache::key(&who("u2"), &Attributes::read(Some("a")));
        let k3 = DecisionCache::key(&who("u1"), &Attributes::read(Some("b")));
        assert_ne!(k1, k2);
        assert_ne!(k1, k3);
        c.put(k1, true, t0);
        assert_eq!(c.get(&k1, t0 + Duration::from_secs(9)), Some(true));
        assert_eq!(c.get(&k1, t0 + Duration::from_secs(11)), None, "expired");
        c.put(k2, false, t0);
        c.put(k3, true, t0 + Duration::from_secs(1));
        assert!(c.len() <= 2, "bounded: {}", c.len());
        assert_eq!(c.get(&k3, t0 + Duration::from_secs(2)), Some(true));
        // Groups are part of the key: a user whose groups changed is asked again.
        let mut g = who("u1");
        g.groups = vec!["readers".into()];
        assert_ne!(DecisionCache::key(&g, &Attributes::read(Some("a"))), k1);
    }

    #[test]
    fn review_carries_user_groups_extras_and_attributes() {
        let mut who = Identity {
            username: "alice".into(),
            uid: Some("u-1".into()),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        };
        who.extra.insert("scopes".into(), vec!["x".into()]);
        let sar = subject_access_review(&who, &Attributes::read(Some("a")));
        let spec = sar.spec;
        assert_eq!(spec.user.as_deref(), Some("alice"));
        assert_eq!(spec.uid.as_deref(), Some("u-1"));
        assert_eq!(spec.groups, Some(vec!["system:authenticated".to_string()]));
        assert!(spec.extra.is_some_and(|e| e.contains_key("scopes")));
        let ra = spec.resource_attributes.expect("resource attributes");
        assert_eq!(ra.group.as_deref(), Some("fabricwatch.io"));
        assert_eq!(ra.resource.as_deref(), Some("monitortargets"));
        assert_eq!(ra.verb.as_deref(), Some("get"));
        assert_eq!(ra.namespace.as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn open_access_trusts_everyone() {
        let a = Access::open();
        let c = a.caller(None).await.expect("trusted");
        assert_eq!(c, Caller::Trusted);
        assert_eq!(a.readable(&c, set(&[])).await, Ok(Scope::All));
    }
}
