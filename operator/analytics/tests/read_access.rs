//! The read API's access decisions through the real router over HTTP on 127.0.0.1, with
//! token and permission tables standing in for TokenReview and SubjectAccessReview (the
//! cluster test `read_access_cluster.rs` uses the real API server): no token 401, no
//! permission 403, a reader of namespace `a` sees `a` and not `b`, ingest and `/metrics`
//! unaffected.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use fabricwatch_analytics::{
    authz::{Access, AccessReviewer, Attributes, DecisionCache, ReviewFuture},
    http::Api,
    metrics::Metrics,
    state::{OpenCatalog, Shared},
    ui::silence::{AckRequest, RuleSilencer, SilenceFuture, SilenceRequest},
};
use fabricwatch_common::{
    auth::{Identity, StaticTokens},
    serve::{ops_router, Readiness},
};
use fabricwatch_proto::{
    report::{AgentReport, PeerReport, REPORT_PATH},
    ObjectRef,
};
use serde_json::Value;

/// `reader-a` may get monitortargets in `a`; `editor-a` too, and update alertrules there;
/// nobody else may read anything.
struct Rbac;

impl AccessReviewer for Rbac {
    fn allowed<'a>(&'a self, who: &'a Identity, what: &'a Attributes) -> ReviewFuture<'a> {
        Box::pin(async move {
            let in_a = what.namespace.as_deref() == Some("a");
            Ok(
                match (
                    who.username.as_str(),
                    what.verb.as_str(),
                    what.resource.as_str(),
                ) {
                    ("reader-a" | "editor-a", "get", "monitortargets") => in_a,
                    ("editor-a", "update", "alertrules") => in_a,
                    _ => false,
                },
            )
        })
    }
}

/// Records the silences and acknowledgements the fleet view writes.
#[derive(Default)]
struct Silences(
    Mutex<Vec<(ObjectRef, Option<SilenceRequest>)>>,
    Mutex<Vec<(ObjectRef, Option<AckRequest>)>>,
);

impl RuleSilencer for Silences {
    fn set<'a>(
        &'a self,
        rule: &'a ObjectRef,
        silence: Option<SilenceRequest>,
    ) -> SilenceFuture<'a> {
        Box::pin(async move {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((rule.clone(), silence));
            Ok(())
        })
    }

    fn acknowledge<'a>(
        &'a self,
        rule: &'a ObjectRef,
        ack: Option<AckRequest>,
    ) -> SilenceFuture<'a> {
        Box::pin(async move {
            self.1
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((rule.clone(), ack));
            Ok(())
        })
    }
}

async fn start() -> String {
    start_with(None).await
}

async fn start_with(silencer: Option<Arc<Silences>>) -> String {
    let metrics = Metrics::new().expect("metrics");
    let tokens = Arc::new(StaticTokens::new([
        (
            "agent-a",
            Identity::named("system:serviceaccount:a:fabric-agent"),
        ),
        (
            "agent-b",
            Identity::named("system:serviceaccount:b:fabric-agent"),
        ),
        ("reader-a", Identity::named("reader-a")),
        ("nobody", Identity::named("nobody")),
        ("editor-a", Identity::named("editor-a")),
    ]));
    let shared = Arc::new(Shared {
        auth: Some(tokens.clone()),
        max_body_bytes: 64 * 1024,
        ..Shared::new(metrics.clone(), Arc::new(OpenCatalog))
    });
    let access = Arc::new(Access::checked(
        tokens,
        Arc::new(Rbac),
        DecisionCache::new(std::time::Duration::from_secs(10), 100),
    ));
    let app = Api::new(shared, access)
        .with_silencer(silencer.map(|s| s as Arc<dyn RuleSilencer>))
        .router()
        .merge(ops_router(metrics.registry, Readiness::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn report(ns: &str, node: &str) -> AgentReport {
    AgentReport {
        schema_version: 1,
        target: ObjectRef {
            namespace: ns.into(),
            name: "fabric".into(),
        },
        node: node.into(),
        node_ip: Some("10.0.0.1".into()),
        agent_version: "test".into(),
        seq: 1,
        collected_at: Utc::now(),
        interval_seconds: 10.0,
        ping: vec![PeerReport {
            peer: "x".into(),
            address: "10.0.0.9".into(),
            sent: 100,
            received: 100,
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn get(base: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut rb = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn readers_see_only_their_namespaces() {
    let base = start().await;
    let http = reqwest::Client::new();
    // Ingest keeps authenticating agents on its own.
    for (tok, ns) in [("agent-a", "a"), ("agent-b", "b")] {
        let r = http
            .post(format!("{base}{REPORT_PATH}"))
            .bearer_auth(tok)
            .json(&report(ns, "n1"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 200, "{tok}: {:?}", r.text().await);
    }
    let (s, _) = get(&base, "/metrics", None).await;
    assert_eq!(s, 200, "/metrics needs no token");

    let reads = [
        "/api/v1/targets",
        "/api/v1/targets/b/fabric",
        "/api/v1/targets/b/fabric/nodes",
        "/api/v1/targets/b/fabric/nodes/n1/history/ping_loss_percent",
        "/api/v1/alerts",
        "/api/v1/events",
        "/api/v1/anomalies",
    ];
    for path in reads {
        let (s, b) = get(&base, path, None).await;
        assert_eq!(
            (s, b["reason"].as_str()),
            (401, Some("unauthenticated")),
            "{path}"
        );
        let (s, _) = get(&base, path, Some("forged")).await;
        assert_eq!(s, 401, "{path}");
        let (s, b) = get(&base, path, Some("nobody")).await;
        assert_eq!(
            (s, b["reason"].as_str()),
            (403, Some("forbidden")),
            "{path}: {b}"
        );
    }
    // An agent's token is no reader's.
    let (s, _) = get(&base, "/api/v1/targets", Some("agent-a")).await;
    assert_eq!(s, 403);

    let (s, list) = get(&base, "/api/v1/targets", Some("reader-a")).await;
    assert_eq!(s, 200);
    let namespaces: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|v| v["target"]["namespace"].as_str())
        .collect();
    assert_eq!(namespaces, vec!["a"], "{list}");
    let (s, _) = get(&base, "/api/v1/targets/a/fabric/nodes", Some("reader-a")).await;
    assert_eq!(s, 200);
    let (s, b) = get(&base, "/api/v1/targets/b/fabric", Some("reader-a")).await;
    assert_eq!(s, 403, "{b}");
    // A 403 before a 404: whether a target exists in b is not told either.
    let (s, _) = get(&base, "/api/v1/targets/b/nope", Some("reader-a")).await;
    assert_eq!(s, 403);
    let (s, _) = get(&base, "/api/v1/targets/a/nope", Some("reader-a")).await;
    assert_eq!(s, 404);
    let (s, _) = get(&base, "/api/v1/events?namespace=b", Some("reader-a")).await;
    assert_eq!(s, 403);
    let (s, ev) = get(&base, "/api/v1/events", Some("reader-a")).await;
    assert_eq!(s, 200);
    assert!(
        ev.as_array()
            .expect("array")
            .iter()
            .all(|e| e["object"]["namespace"] == "a"),
        "{ev}"
    );

    // The fleet view's cookie carries the same token.
    let r = http
        .get(format!("{base}/api/v1/targets"))
        .header("cookie", "theme=dark; fabricwatch_token=reader-a")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);

    // The fleet view decides the same way: a sign-in form without a token, a refusal
    // without permission, only namespace a for its reader.
    let page = |path: &'static str, cookie: Option<&'static str>| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let mut rb = http.get(format!("{base}{path}"));
            if let Some(c) = cookie {
                rb = rb.header("cookie", c);
            }
            let r = rb.send().await.expect("send");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    let (s, body) = page("/ui/", None).await;
    assert_eq!(s, 401);
    assert!(body.contains(r#"action="/ui/login""#), "{body}");
    let (s, body) = page("/ui/", Some("fabricwatch_token=nobody")).await;
    assert_eq!(s, 403, "{body}");
    let (s, body) = page("/ui/", Some("fabricwatch_token=reader-a")).await;
    assert_eq!(s, 200);
    assert!(body.contains(r#"data-target="a/fabric""#), "{body}");
    assert!(!body.contains(r#"data-target="b/fabric""#), "{body}");
    let (s, _) = page("/ui/targets/b/fabric", Some("fabricwatch_token=reader-a")).await;
    assert_eq!(s, 403);
    let (s, _) = page(
        "/ui/targets/a/fabric/nodes/n1",
        Some("fabricwatch_token=reader-a"),
    )
    .await;
    assert_eq!(s, 200);

    // Signing in checks the token and stores it in an HttpOnly, same-site cookie.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = no_redirect
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=forged")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let r = no_redirect
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=reader-a")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 303);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        cookie.starts_with("fabricwatch_token=reader-a;")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}

#[tokio::test]
async fn silencing_and_acknowledging_need_update_on_the_alert_rule() {
    let silences = Arc::new(Silences::default());
    let base = start_with(Some(silences.clone())).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let post = |path: &str, token: Option<&str>, body: &str, site: Option<&str>| {
        let mut rb = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(t) = token {
            rb = rb.header("cookie", format!("fabricwatch_token={t}"));
        }
        if let Some(s) = site {
            rb = rb.header("sec-fetch-site", s);
        }
        async move { rb.send().await.expect("send").status().as_u16() }
    };
    let path = "/ui/alerts/a/loss/silence";
    assert_eq!(post(path, None, "hours=1", None).await, 401);
    assert_eq!(
        post(path, Some("reader-a"), "hours=1", None).await,
        403,
        "get is not update"
    );
    assert_eq!(
        post(
            "/ui/alerts/b/loss/silence",
            Some("editor-a"),
            "hours=1",
            None
        )
        .await,
        403
    );
    assert_eq!(
        post(path, Some("editor-a"), "hours=1", Some("cross-site")).await,
        403
    );
    assert_eq!(post(path, Some("editor-a"), "hours=0", None).await, 400);
    assert_eq!(post(path, Some("editor-a"), "hours=500", None).await, 400);
    assert!(
        silences.0.lock().expect("lock").is_empty(),
        "nothing written yet"
    );

    let before = Utc::now();
    assert_eq!(
        post(
            path,
            Some("editor-a"),
            "hours=4&node=n3",
            Some("same-origin")
        )
        .await,
        303
    );
    assert_eq!(post(path, Some("editor-a"), "lift=1", None).await, 303);
    let written = silences.0.lock().expect("lock").clone();
    assert_eq!(written.len(), 2);
    let rule = ObjectRef {
        namespace: "a".into(),
        name: "loss".into(),
    };
    assert_eq!(written[0].0, rule);
    let s = written[0].1.clone().expect("a silence");
    assert_eq!(s.by, "editor-a", "who is recorded");
    assert_eq!(s.node.as_deref(), Some("n3"));
    let hours = (s.until - before).num_seconds() as f64 / 3600.0;
    assert!((3.99..=4.01).contains(&hours), "{hours}");
    assert_eq!(written[1], (rule.clone(), None), "lifted");

    // Acknowledging is authorized the same way and records who.
    let ack = "/ui/alerts/a/loss/acknowledge";
    assert_eq!(post(ack, None, "", None).await, 401);
    assert_eq!(post(ack, Some("reader-a"), "", None).await, 403);
    assert_eq!(
        post(ack, Some("editor-a"), "", Some("cross-site")).await,
        403
    );
    assert!(silences.1.lock().expect("lock").is_empty());
    let before = Utc::now();
    assert_eq!(
        post(ack, Some("editor-a"), "", Some("same-origin")).await,
        303
    );
    assert_eq!(post(ack, Some("editor-a"), "lift=1", None).await, 303);
    let acks = silences.1.lock().expect("lock").clone();
    assert_eq!(acks.len(), 2);
    let a = acks[0].1.clone().expect("an acknowledgement");
    assert_eq!(
        (acks[0].0.clone(), a.by.as_str()),
        (rule.clone(), "editor-a")
    );
    assert!(a.at >= before && a.at <= Utc::now(), "at is now: {}", a.at);
    assert_eq!(acks[1], (rule, None), "lifted");

    // Without a Kubernetes API there is nothing to write to.
    let local = start().await;
    let r = reqwest::Client::new()
        .post(format!("{local}{path}"))
        .header("cookie", "fabricwatch_token=editor-a")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("hours=1")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
}
