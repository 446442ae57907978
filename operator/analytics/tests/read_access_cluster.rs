//! The read API's access model against a real kube-apiserver (the local `e2e/cluster`, or the
//! cluster named by `FABRICWATCH_E2E_KUBECONFIG`): real ServiceAccount tokens reviewed with
//! TokenReview, permissions with SubjectAccessReview against real RBAC. No token 401, a
//! token without RBAC 403, a token with `get monitortargets` in namespace A sees A and not B;
//! agents' ingest (audience-bound tokens) and `/metrics` unaffected. Skipped (passing)
//! unless `FABRICWATCH_E2E=1`; see the `fabricwatch-tests` docs.

use std::{sync::Arc, time::Duration};

use anyhow::{ensure, Context, Result};
use chrono::Utc;
use fabricwatch_analytics::{
    authz::{Access, DecisionCache, SubjectAccessReviewer},
    http::Api as AnalyticsApi,
    k8s::Stores,
    metrics::Metrics,
    state::{Catalog, Shared},
    ui::silence::KubeSilencer,
};
use fabricwatch_common::{
    auth::TokenReviewAuthenticator,
    serve::{ops_router, Readiness},
};
use fabricwatch_crds::AlertRule;
use fabricwatch_proto::{
    report::{AgentReport, PeerReport, REPORT_PATH},
    ObjectRef,
};
use fabricwatch_tests::{eventually, TestNamespace};
use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::ServiceAccount,
};
use kube::api::{Api, PostParams};
use serde_json::Value;

const AUDIENCE: &str = "fabricwatch-analytics";
const SETTLE: Duration = Duration::from_secs(30);

/// A token of ServiceAccount `sa`; `audience` `None` = the API server's default audience
/// (what `kubectl create token` gives).
async fn token(ns: &TestNamespace, sa: &str, audience: Option<&str>) -> Result<String> {
    let api: Api<ServiceAccount> = ns.api();
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
            expiration_seconds: Some(600),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = api
        .create_token_request(sa, &PostParams::default(), &req)
        .await?;
    answer
        .status
        .map(|s| s.token)
        .context("TokenRequest without a token")
}

fn report(ns: &str) -> AgentReport {
    AgentReport {
        schema_version: 1,
        target: ObjectRef {
            namespace: ns.into(),
            name: "fabric".into(),
        },
        node: "n1".into(),
        node_ip: Some("10.9.0.1".into()),
        agent_version: "test".into(),
        seq: 1,
        collected_at: Utc::now(),
        interval_seconds: 10.0,
        ping: vec![PeerReport {
            peer: "x".into(),
            address: "10.9.0.99".into(),
            sent: 100,
            received: 100,
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn get(base: &str, path: &str, token: Option<&str>) -> Result<(u16, Value)> {
    let mut rb = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

#[tokio::test]
async fn readers_need_rbac_on_the_namespace() -> Result<()> {
    fabricwatch_common::telemetry::init(fabricwatch_common::telemetry::LogFormat::Text, "warn");
    fabricwatch_analytics::install_crypto_provider();
    let Some(cluster) = fabricwatch_tests::Cluster::connect_if_enabled().await? else {
        return Ok(());
    };
    cluster.install_crds().await?;
    let a = cluster.namespace("read-a").await?;
    let b = cluster.namespace("read-b").await?;
    let objects = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: fabric-agent}\n---\n\
         apiVersion: fabricwatch.io/v1alpha1\nkind: MonitorTarget\nmetadata: {name: fabric}\nspec: {}\n";
    a.apply_yaml(objects).await?;
    b.apply_yaml(objects).await?;
    // RBAC subjects need their namespace spelled out.
    a.apply_yaml(&format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: reader}}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: norbac}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: fabricwatch-reader}}\n\
         rules: [{{apiGroups: [fabricwatch.io], resources: [monitortargets], verbs: [get]}}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: fabricwatch-reader}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: fabricwatch-reader}}\n\
         subjects: [{{kind: ServiceAccount, name: reader, namespace: {ns}}}]\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: editor}}\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: fabricwatch-editor}}\n\
         rules: [{{apiGroups: [fabricwatch.io], resources: [monitortargets], verbs: [get]}}, \
                 {{apiGroups: [fabricwatch.io], resources: [alertrules], verbs: [get, update]}}]\n---\n\
         apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: fabricwatch-editor}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: fabricwatch-editor}}\n\
         subjects: [{{kind: ServiceAccount, name: editor, namespace: {ns}}}]\n---\n\
         apiVersion: fabricwatch.io/v1alpha1\nkind: AlertRule\nmetadata: {{name: loss}}\n\
         spec: {{targetRef: {{name: fabric}}, metric: ping_loss_percent, operator: gt, threshold: 5}}\n",
        ns = a.name()
    ))
    .await?;

    let client = cluster.client();
    let stores = Stores::start(client.clone()).await?;
    let metrics = Metrics::new()?;
    let shared = Arc::new(Shared {
        auth: Some(Arc::new(TokenReviewAuthenticator::new(
            client.clone(),
            vec![AUDIENCE.into()],
        ))),
        ..Shared::new(metrics.clone(), Arc::new(stores.clone()))
    });
    let access = Arc::new(Access::checked(
        Arc::new(TokenReviewAuthenticator::new(client.clone(), vec![])),
        Arc::new(SubjectAccessReviewer::new(client.clone())),
        // No caching: each request below is decided by the API server.
        DecisionCache::new(Duration::ZERO, 1),
    ));
    let app = AnalyticsApi::new(shared, access)
        .with_silencer(Some(Arc::new(KubeSilencer::new(client.clone()))))
        .router()
        .merge(ops_router(metrics.registry, Readiness::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    for ns in [&a, &b] {
        let t = ObjectRef {
            namespace: ns.name().into(),
            name: "fabric".into(),
        };
        eventually("the watch to catch up", SETTLE, || {
            let (stores, t) = (stores.clone(), t.clone());
            async move { stores.target(&t).map(|_| ()).context("target not in store") }
        })
        .await?;
    }

    // Ingest: agents' audience-bound tokens, unchanged.
    let http = reqwest::Client::new();
    for ns in [&a, &b] {
        let tok = token(ns, "fabric-agent", Some(AUDIENCE)).await?;
        let r = http
            .post(format!("{base}{REPORT_PATH}"))
            .bearer_auth(tok)
            .json(&report(ns.name()))
            .send()
            .await?;
        let status = r.status().as_u16();
        ensure!(
            status == 200,
            "ingest in {}: {status} {}",
            ns.name(),
            r.text().await?
        );
    }
    let (s, _) = get(&base, "/metrics", None).await?;
    ensure!(s == 200, "/metrics without a token: {s}");

    let (s, body) = get(&base, "/api/v1/targets", None).await?;
    ensure!(s == 401, "no token: {s} {body}");
    let norbac = token(&a, "norbac", None).await?;
    let (s, body) = get(&base, "/api/v1/targets", Some(&norbac)).await?;
    ensure!(s == 403, "token without RBAC: {s} {body}");
    let (s, body) = get(
        &base,
        &format!("/api/v1/targets/{}/fabric", a.name()),
        Some(&norbac),
    )
    .await?;
    ensure!(s == 403, "token without RBAC, one target: {s} {body}");

    // RBAC may take a moment to reach the authorizer's cache.
    let reader = token(&a, "reader", None).await?;
    eventually("the reader's Role to apply", SETTLE, || {
        let (base, reader) = (base.clone(), reader.clone());
        let name = a.name().to_string();
        async move {
            let (s, body) = get(&base, "/api/v1/targets", Some(&reader)).await?;
            ensure!(s == 200, "reader: {s} {body}");
            let seen: Vec<&str> = body
                .as_array()
                .context("array")?
                .iter()
                .filter_map(|v| v["target"]["namespace"].as_str())
                .collect();
            ensure!(seen == vec![name.as_str()], "reader sees {seen:?}");
            Ok(())
        }
    })
    .await?;
    let (s, body) = get(
        &base,
        &format!("/api/v1/targets/{}/fabric/nodes", a.name()),
        Some(&reader),
    )
    .await?;
    ensure!(s == 200, "reader, own namespace: {s} {body}");
    let (s, body) = get(
        &base,
        &format!("/api/v1/targets/{}/fabric", b.name()),
        Some(&reader),
    )
    .await?;
    ensure!(s == 403, "reader, other namespace: {s} {body}");
    // An agent token (another audience) is no reader's token.
    let agent = token(&a, "fabric-agent", Some(AUDIENCE)).await?;
    let (s, body) = get(&base, "/api/v1/targets", Some(&agent)).await?;
    ensure!(s == 401, "agent token as reader: {s} {body}");

    // The fleet view's silence action: the reader (get only) is refused, the editor (update
    // on alertrules) writes spec.silence with its own name.
    let silence = |token: String| {
        let base = base.clone();
        let path = format!("/ui/alerts/{}/loss/silence", a.name());
        async move {
            let r = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?
                .post(format!("{base}{path}"))
                .header("cookie", format!("fabricwatch_token={token}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("hours=2&node=n1")
                .send()
                .await?;
            anyhow::Ok(r.status().as_u16())
        }
    };
    let s = silence(reader.clone()).await?;
    ensure!(s == 403, "reader may not silence: {s}");
    let editor = token(&a, "editor", None).await?;
    eventually("the editor's Role to apply", SETTLE, || {
        let silence = &silence;
        let editor = editor.clone();
        async move {
            let s = silence(editor).await?;
            ensure!(s == 303, "editor silences: {s}");
            Ok(())
        }
    })
    .await?;
    let rules: Api<AlertRule> = a.api();
    let written = rules.get("loss").await?;
    let w = written.spec.silence.context("spec.silence written")?;
    ensure!(
        w.by.as_deref() == Some(format!("system:serviceaccount:{}:editor", a.name()).as_str()),
        "by: {:?}",
        w.by
    );
    ensure!(w.node.as_deref() == Some("n1"), "node: {:?}", w.node);

    // Acknowledging the same way: the API server stores spec.acknowledge (the CRD schema
    // has it) with the editor's name and the time of the click.
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .post(format!("{base}/ui/alerts/{}/loss/acknowledge", a.name()))
        .header("cookie", format!("fabricwatch_token={editor}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await?;
    ensure!(
        r.status().as_u16() == 303,
        "editor acknowledges: {}",
        r.status()
    );
    let ack = rules
        .get("loss")
        .await?
        .spec
        .acknowledge
        .context("spec.acknowledge written")?;
    ensure!(
        ack.by.as_deref() == Some(format!("system:serviceaccount:{}:editor", a.name()).as_str())
            && ack.at.0.as_second() >= before.timestamp()
            && ack.notify_resolved,
        "acknowledge: {ack:?}"
    );

    a.cleanup().await?;
    b.cleanup().await
}
