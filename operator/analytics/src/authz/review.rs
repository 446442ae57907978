//! The Kubernetes [`AccessReviewer`]: `SubjectAccessReview`, so the API server's own
//! authorizer chain decides.

use fabricwatch_common::auth::{AuthError, Identity};

use super::{AccessReviewer, Attributes, ReviewFuture, GROUP};

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
