//! API discovery: whether the fabricwatch.io CRDs are served (checked once at start-up), and
//! which optional monitoring.coreos.com kinds exist (re-checked while running, as they may
//! be installed or removed at any time).

use anyhow::Context as _;
use kube::Client;

/// The kinds the controller serves, by plural.
const PLURALS: [&str; 3] = ["monitortargets", "alertrules", "aianalyses"];

/// Fails with an actionable message when the fabricwatch.io CRDs are not installed.
///
/// # Errors
/// When the API group is missing or incomplete, or discovery fails.
pub async fn check_crds(client: &Client) -> anyhow::Result<()> {
    let hint = "install them with `kubectl apply -f crds/` (or the Helm chart's CRDs) and restart";
    let list = match client
        .list_api_group_resources(fabricwatch_crds::API_VERSION)
        .await
    {
        Ok(l) => l,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            anyhow::bail!(
                "the {} API is not installed: {hint}",
                fabricwatch_crds::API_VERSION
            )
        }
        Err(e) => return Err(e).context("API discovery of fabricwatch.io failed"),
    };
    let missing: Vec<&str> = PLURALS
        .iter()
        .copied()
        .filter(|p| !list.resources.iter().any(|r| r.name == *p))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the {} API lacks {}: {hint}",
            fabricwatch_crds::API_VERSION,
            missing.join(", ")
        );
    }
    Ok(())
}

/// Which monitoring.coreos.com/v1 kinds exist: `(podmonitors, prometheusrules)`.
pub(super) async fn discover_monitoring(client: &Client) -> Result<(bool, bool), kube::Error> {
    match client
        .list_api_group_resources("monitoring.coreos.com/v1")
        .await
    {
        Ok(l) => Ok((
            l.resources.iter().any(|r| r.name == "podmonitors"),
            l.resources.iter().any(|r| r.name == "prometheusrules"),
        )),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok((false, false)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{http::StatusCode, routing::get, Json, Router};

    /// A real HTTP server on 127.0.0.1 that answers API discovery of fabricwatch.io with
    /// `status` and `body`, and a kube client pointed at it.
    async fn discovery_server(status: StatusCode, body: serde_json::Value) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let app = Router::new().route(
            "/apis/fabricwatch.io/v1alpha1",
            get(move || {
                let body = body.clone();
                async move { (status, Json(body)) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = format!("http://{addr}").parse().expect("url");
        Client::try_from(kube::Config::new(url)).expect("client")
    }

    fn resource_list(names: &[&str]) -> serde_json::Value {
        let resources: Vec<_> = names
            .iter()
            .map(|n| serde_json::json!({"name": n, "singularName": "", "namespaced": true, "kind": "X", "verbs": ["get"]}))
            .collect();
        serde_json::json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "fabricwatch.io/v1alpha1", "resources": resources})
    }

    #[tokio::test]
    async fn missing_crds_give_an_actionable_error() {
        let not_found = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "the server could not find the requested resource"});
        let client = discovery_server(StatusCode::NOT_FOUND, not_found).await;
        let e = check_crds(&client).await.expect_err("no API").to_string();
        assert!(
            e.contains("fabricwatch.io/v1alpha1 API is not installed"),
            "{e}"
        );
        assert!(e.contains("kubectl apply -f crds/"), "{e}");

        let client = discovery_server(
            StatusCode::OK,
            resource_list(&["monitortargets", "alertrules"]),
        )
        .await;
        let e = check_crds(&client).await.expect_err("partial").to_string();
        assert!(e.contains("lacks aianalyses"), "{e}");

        let client = discovery_server(
            StatusCode::OK,
            resource_list(&[
                "monitortargets",
                "monitortargets/status",
                "alertrules",
                "aianalyses",
            ]),
        )
        .await;
        check_crds(&client).await.expect("complete API");
    }
}
