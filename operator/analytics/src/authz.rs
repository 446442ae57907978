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
//! The decision logic ([`Access`]) is plain Rust over two ports, [`Authenticator`] (from
//! `fabricwatch_common::auth`) and [`AccessReviewer`]; the Kubernetes implementation of the
//! latter is [`SubjectAccessReviewer`].

use std::{
    collections::{BTreeSet, HashMap},
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use fabricwatch_common::auth::{bearer_token, AuthError, Authenticator, Identity};
use sha2::{Digest, Sha256};

use crate::http::ErrorBody;

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
        let status = self.status();
        let mut r = (
            status,
            Json(ErrorBody {
                error: self.message().to_string(),
                reason: self.reason().into(),
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
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

/// Bounded cache of authorization decisions, keyed by a SHA-256 of user, groups, extras and
/// the question; entries live `ttl` (allowed and denied alike: a revoked RoleBinding takes
/// effect within `ttl`). Failures to ask are never cached. When `max_entries` are held,
/// expired entries go, then everything.
#[derive(Debug)]
pub struct DecisionCache {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<[u8; 32], (Instant, bool)>>,
}

impl DecisionCache {
    /// A cache keeping decisions `ttl`, at most `max_entries` of them.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries: max_entries.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cache key of `who` asking `what`.
    pub fn key(who: &Identity, what: &Attributes) -> [u8; 32] {
        let mut h = Sha256::new();
        // Length-prefixed fields, so no two different questions hash the same input.
        let mut field = |s: &str| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        };
        field(&who.username);
        field(who.uid.as_deref().unwrap_or(""));
        let mut groups = who.groups.clone();
        groups.sort();
        for g in &groups {
            field(g);
        }
        field("|");
        for (k, vs) in &who.extra {
            field(k);
            for v in vs {
                field(v);
            }
        }
        field("|");
        field(&what.verb);
        field(&what.resource);
        field(what.namespace.as_deref().unwrap_or("*"));
        field(what.name.as_deref().unwrap_or("*"));
        h.finalize().into()
    }

    /// The decision for `key` if it is younger than the TTL at `now`.
    pub fn get(&self, key: &[u8; 32], now: Instant) -> Option<bool> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(expires, _)| *expires > now)
            .map(|(_, allowed)| *allowed)
    }

    /// Remembers `allowed` for `key` from `now`.
    pub fn put(&self, key: [u8; 32], allowed: bool, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(key, (now + self.ttl, allowed));
    }

    /// Entries held (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// No entries held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

enum Mode {
    Open,
    Checked {
        authn: Arc<dyn Authenticator>,
        authz: Arc<dyn AccessReviewer>,
    },
}

/// The access decisions of analytics' read API and fleet view.
pub struct Access {
    mode: Mode,
    cache: DecisionCache,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Open => "open",
            Mode::Checked { .. } => "checked",
        };
        f.debug_struct("Access")
            .field("mode", &mode)
            .field("cached", &self.cache.len())
            .finish()
    }
}

/// Default lifetime of a cached decision: short, so RBAC changes apply quickly, long enough
/// that a page refresh every 10 s and its handful of API calls cost one review per namespace.
pub const DEFAULT_DECISION_TTL: Duration = Duration::from_secs(10);
/// Default bound of the decision cache.
pub const DEFAULT_DECISION_ENTRIES: usize = 10_000;

impl Access {
    /// Every caller is [`Caller::Trusted`]: for `--insecure-skip-auth` local runs and tests.
    pub fn open() -> Self {
        Self {
            mode: Mode::Open,
            cache: DecisionCache::new(Duration::ZERO, 1),
        }
    }

    /// Callers authenticate with a bearer token checked by `authn`; their permissions are
    /// asked of `authz` and cached in `cache`.
    pub fn checked(
        authn: Arc<dyn Authenticator>,
        authz: Arc<dyn AccessReviewer>,
        cache: DecisionCache,
    ) -> Self {
        Self {
            mode: Mode::Checked { authn, authz },
            cache,
        }
    }

    /// `true` when every caller is trusted.
    pub fn is_open(&self) -> bool {
        matches!(self.mode, Mode::Open)
    }

    /// Who sent a request with this `Authorization` header value.
    ///
    /// # Errors
    /// [`Denied::Unauthenticated`] without a valid bearer token, [`Denied::Unavailable`]
    /// when the token cannot be reviewed.
    pub async fn caller(&self, authorization: Option<&str>) -> Result<Caller, Denied> {
        match &self.mode {
            Mode::Open => Ok(Caller::Trusted),
            Mode::Checked { authn, .. } => {
                let token = bearer_token(authorization)?;
                Ok(Caller::User(Box::new(authn.authenticate(token).await?)))
            }
        }
    }

    /// May `caller` do `what`? Cached per [`DecisionCache`].
    ///
    /// # Errors
    /// [`Denied::Unavailable`] when the authorizer cannot be asked.
    pub async fn may(&self, caller: &Caller, what: &Attributes) -> Result<bool, Denied> {
        let (Mode::Checked { authz, .. }, Caller::User(who)) = (&self.mode, caller) else {
            return Ok(true);
        };
        let key = DecisionCache::key(who, what);
        if let Some(hit) = self.cache.get(&key, Instant::now()) {
            return Ok(hit);
        }
        let allowed = authz.allowed(who, what).await?;
        self.cache.put(key, allowed, Instant::now());
        Ok(allowed)
    }

    /// Succeeds when `caller` may do `what`.
    ///
    /// # Errors
    /// [`Denied::Forbidden`] naming the missing permission, or [`Denied::Unavailable`].
    pub async fn require(&self, caller: &Caller, what: &Attributes) -> Result<(), Denied> {
        if self.may(caller, what).await? {
            return Ok(());
        }
        Err(Denied::Forbidden(format!(
            "{} may not {} {}.{}{}{}",
            caller.name(),
            what.verb,
            what.resource,
            GROUP,
            what.name
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default(),
            match &what.namespace {
                Some(ns) => format!(" in namespace {ns}"),
                None => " in all namespaces".into(),
            }
        )))
    }

    /// Succeeds when `caller` may read `namespace`.
    ///
    /// # Errors
    /// As [`Access::require`].
    pub async fn require_read(&self, caller: &Caller, namespace: &str) -> Result<(), Denied> {
        self.require(caller, &Attributes::read(Some(namespace)))
            .await
    }

    /// The namespaces among `candidates` (those that hold data) `caller` may read; all of
    /// them after a cluster-wide allowance.
    ///
    /// # Errors
    /// [`Denied::Forbidden`] when the caller may read none of them (nor all namespaces): a
    /// list would otherwise answer "nothing here" to anyone. [`Denied::Unavailable`] when the
    /// authorizer cannot be asked.
    pub async fn readable(
        &self,
        caller: &Caller,
        candidates: BTreeSet<String>,
    ) -> Result<Scope, Denied> {
        if self.may(caller, &Attributes::read(None)).await? {
            return Ok(Scope::All);
        }
        let asks = candidates.into_iter().map(|ns| async move {
            let ok = self.may(caller, &Attributes::read(Some(&ns))).await;
            ok.map(|ok| ok.then_some(ns))
        });
        let mut readable = BTreeSet::new();
        for r in futures::future::join_all(asks).await {
            if let Some(ns) = r? {
                readable.insert(ns);
            }
        }
        if readable.is_empty() {
            return Err(Denied::Forbidden(format!(
                "{} may not {READ_VERB} {READ_RESOURCE}.{GROUP} in any namespace analytics holds data of",
                caller.name()
            )));
        }
        Ok(Scope::Only(readable))
    }
}

/// [`AccessReviewer`] backed by `SubjectAccessReview` (`authorization.k8s.io/v1`, Kubernetes
/// ≥ 1.6): the API server's own authorizer chain (RBAC, webhooks) decides.
pub struct SubjectAccessReviewer {
    api: kube::Api<k8s_openapi::api::authorization::v1::SubjectAccessReview>,
}

impl SubjectAccessReviewer {
    /// Reviews with `client` (its ServiceAccount needs `create` on
    /// `subjectaccessreviews.authorization.k8s.io`).
    pub fn new(client: kube::Client) -> Self {
        Self {
            api: kube::Api::all(client),
        }
    }
}

/// The SubjectAccessReview asking whether `who` may do `what`.
pub fn subject_access_review(
    who: &Identity,
    what: &Attributes,
) -> k8s_openapi::api::authorization::v1::SubjectAccessReview {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(who.username.clone()),
            uid: who.uid.clone(),
            groups: Some(who.groups.clone()),
            extra: (!who.extra.is_empty()).then(|| who.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.into()),
                resource: Some(what.resource.clone()),
                verb: Some(what.verb.clone()),
                namespace: what.namespace.clone(),
                name: what.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

impl AccessReviewer for SubjectAccessReviewer {
    fn allowed<'a>(&'a self, who: &'a Identity, what: &'a Attributes) -> ReviewFuture<'a> {
        Box::pin(async move {
            let answer = self
                .api
                .create(&Default::default(), &subject_access_review(who, what))
                .await
                .map_err(|e| AuthError::Unavailable(format!("SubjectAccessReview: {e}")))?;
            let status = answer.status.unwrap_or_default();
            Ok(status.allowed && status.denied != Some(true))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use fabricwatch_common::auth::AuthFuture;

    use super::*;

    /// Token → identity table.
    struct Tokens;

    impl Authenticator for Tokens {
        fn authenticate<'a>(&'a self, token: &'a str) -> AuthFuture<'a> {
            Box::pin(async move {
                match token {
                    "down" => Err(AuthError::Unavailable("apiserver down".into())),
                    "admin" | "alice" | "nobody" => Ok(Identity {
                        username: token.into(),
                        ..Default::default()
                    }),
                    _ => Err(AuthError::Rejected("unknown token".into())),
                }
            })
        }
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
            Arc::new(Tokens),
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
