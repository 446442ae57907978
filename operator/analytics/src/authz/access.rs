//! [`Access`]: the decisions of the read API and the fleet view — who the caller is
//! (authentication), what it may do (cached authorization), which namespaces it may read.

use std::{
    collections::BTreeSet,
    sync::Arc,
    time::{Duration, Instant},
};

use fabricwatch_common::auth::{bearer_token, Authenticator};

use super::{
    AccessReviewer, Attributes, Caller, DecisionCache, Denied, Scope, GROUP, READ_RESOURCE,
    READ_VERB,
};

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
