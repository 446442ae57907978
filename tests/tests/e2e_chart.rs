//! The Helm chart and the samples, without a cluster: the chart's CRDs are the generated
//! ones, its controller RBAC is `operator/rbac/controller-rbac.yaml`, its pods run under the
//! restricted Pod Security profile, its dashboards use metric names the components export,
//! and the samples in `examples/` and `e2e/samples/` pass the API's own validation.
//!
//! Rendering uses `e2e/helm.py` (Helm's Go code through `helm-python-sdk`, or the `helm`
//! CLI), so these tests need `python3`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use fabricwatch_crds::{AIAnalysisSpec, AlertRuleSpec, MonitorTargetSpec};
use fabricwatch_tests::apply::parse_yaml_documents;
use fabricwatch_tests::repo_root;
use serde_json::Value;

fn yaml_files(dir: &Path) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") {
            out.insert(name);
        }
    }
    Ok(out)
}

/// Renders the chart with `e2e/helm.py template` (offline) and returns its documents.
fn render_chart(extra: &[&str]) -> Result<Vec<Value>> {
    let root = repo_root();
    let out = Command::new("python3")
        .arg(root.join("e2e/helm.py"))
        .args(["template", "--release", "fw", "-n", "fw-system"])
        .args(extra)
        .output()
        .context("running python3 e2e/helm.py (is python3 installed?)")?;
    ensure!(
        out.status.success(),
        "helm.py template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_yaml_documents(&String::from_utf8_lossy(&out.stdout))
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .with_context(|| format!("the chart renders no {kind} {name}"))
}

/// Rules as a set of (apiGroups, resources, resourceNames, verbs), order-insensitive.
fn rule_set(role: &Value) -> BTreeSet<String> {
    let sorted = |v: &Value| -> Vec<String> {
        let mut l: Vec<String> = v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        l.sort();
        l
    };
    role["rules"]
        .as_array()
        .map(|rules| {
            rules
                .iter()
                .map(|r| {
                    format!(
                        "{:?} {:?} {:?} {:?}",
                        sorted(&r["apiGroups"]),
                        sorted(&r["resources"]),
                        sorted(&r["resourceNames"]),
                        sorted(&r["verbs"])
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn chart_crds_are_the_generated_crds() -> Result<()> {
    let root = repo_root();
    let top = root.join("crds");
    let chart = root.join("charts/fabricwatch/crds");
    let (a, b) = (yaml_files(&top)?, yaml_files(&chart)?);
    ensure!(
        a == b,
        "crds/ has {a:?} but charts/fabricwatch/crds/ has {b:?}; run `cp crds/*.yaml charts/fabricwatch/crds/`"
    );
    for f in &a {
        let x = std::fs::read(top.join(f))?;
        let y = std::fs::read(chart.join(f))?;
        ensure!(
            x == y,
            "charts/fabricwatch/crds/{f} differs from crds/{f}; run `cp crds/*.yaml charts/fabricwatch/crds/`"
        );
    }
    Ok(())
}

#[test]
fn chart_controller_rbac_is_the_operators_rbac_file() -> Result<()> {
    let docs = render_chart(&[])?;
    let file = std::fs::read_to_string(repo_root().join("operator/rbac/controller-rbac.yaml"))?;
    let reference = parse_yaml_documents(&file)?;
    for kind in ["ClusterRole", "Role"] {
        let want = reference
            .iter()
            .find(|d| d["kind"] == kind)
            .with_context(|| format!("controller-rbac.yaml has no {kind}"))?;
        let got = find(&docs, kind, "fw-fabricwatch-operator")?;
        let (w, g) = (rule_set(want), rule_set(got));
        ensure!(
            w == g,
            "chart {kind} rules differ from operator/rbac/controller-rbac.yaml:\n only in the file: {:?}\n only in the chart: {:?}",
            w.difference(&g).collect::<Vec<_>>(),
            g.difference(&w).collect::<Vec<_>>()
        );
    }
    Ok(())
}

#[test]
fn chart_rbac_has_no_wildcards_and_no_secret_listing() -> Result<()> {
    let docs = render_chart(&[
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "networkPolicy.enabled=true",
    ])?;
    let mut roles = 0;
    for d in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
    {
        roles += 1;
        let name = d["metadata"]["name"].as_str().unwrap_or("?");
        for r in d["rules"].as_array().into_iter().flatten() {
            let all: Vec<&str> = ["apiGroups", "resources", "verbs", "resourceNames"]
                .iter()
                .flat_map(|k| r[*k].as_array().into_iter().flatten())
                .filter_map(Value::as_str)
                .collect();
            ensure!(!all.contains(&"*"), "{name} has a wildcard rule: {r}");
            let secrets = r["resources"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "secrets"));
            let verbs: Vec<&str> = r["verbs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            ensure!(
                !(secrets && (verbs.contains(&"list") || verbs.contains(&"watch"))),
                "{name} may list or watch Secrets: {r}"
            );
        }
    }
    ensure!(
        roles == 5,
        "expected 5 roles (operator x2, analytics, notifier x2), got {roles}"
    );
    // The notifier's namespaced Role touches only its outbox by name (create cannot be named).
    let role = find(&docs, "Role", "fw-fabricwatch-notifier")?;
    for r in role["rules"].as_array().into_iter().flatten() {
        let verbs: Vec<&str> = r["verbs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if verbs != ["create"] {
            ensure!(
                r["resourceNames"] == serde_json::json!(["fabricwatch-notifier-state"]),
                "notifier Role rule not limited to its outbox: {r}"
            );
        }
    }
    for kind in ["ServiceMonitor", "NetworkPolicy"] {
        let n = docs.iter().filter(|d| d["kind"] == kind).count();
        ensure!(n == 3, "expected 3 {kind}s when enabled, got {n}");
    }
    Ok(())
}

#[test]
fn chart_operator_runs_restricted_with_probes_and_real_flags() -> Result<()> {
    let docs = render_chart(&[])?;
    let d = find(&docs, "Deployment", "fw-fabricwatch")?;
    let spec = &d["spec"]["template"]["spec"];
    ensure!(
        d["spec"]["replicas"] == 2,
        "replicas: {}",
        d["spec"]["replicas"]
    );
    ensure!(
        spec["securityContext"]["runAsNonRoot"] == true,
        "pod not runAsNonRoot"
    );
    ensure!(
        spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault",
        "no RuntimeDefault seccomp"
    );
    let c = &spec["containers"][0];
    let sc = &c["securityContext"];
    ensure!(sc["readOnlyRootFilesystem"] == true, "root fs writable");
    ensure!(
        sc["allowPrivilegeEscalation"] == false,
        "privilege escalation allowed"
    );
    ensure!(
        sc["capabilities"]["drop"] == serde_json::json!(["ALL"]),
        "capabilities not dropped"
    );
    ensure!(
        c["livenessProbe"]["httpGet"]["path"] == "/healthz",
        "no /healthz probe"
    );
    ensure!(
        c["readinessProbe"]["httpGet"]["path"] == "/readyz",
        "no /readyz probe"
    );
    ensure!(
        c["resources"]["requests"].is_object(),
        "no resource requests"
    );
    let args: Vec<&str> = c["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    // The controller-only binary, which the operator image holds beside its entrypoint
    // (e2e/lib/images.sh smoke-tests both inside the image).
    ensure!(
        c["command"] == serde_json::json!(["/usr/local/bin/fabricwatch-controller"]),
        "command: {}",
        c["command"]
    );
    // Every flag the chart passes must exist in the controller's flag definitions.
    let flags_src = std::fs::read_to_string(repo_root().join("operator/src/controller/args.rs"))?;
    for a in &args {
        let Some(flag) = a.strip_prefix("--").and_then(|f| f.split('=').next()) else {
            bail!("unexpected argument {a}");
        };
        let field = flag.replace('-', "_");
        ensure!(
            flags_src.contains(&format!("pub {field}:")),
            "--{flag} is not a flag of `fabricwatch-controller` (no field {field} in operator/src/controller/args.rs)"
        );
    }
    ensure!(
        args.contains(&"--owner-deployment=fw-fabricwatch"),
        "args: {args:?}"
    );
    // PodDisruptionBudget exists (policy/v1 offline; policy/v1beta1 on 1.20 clusters).
    let pdb = docs
        .iter()
        .find(|d| d["kind"] == "PodDisruptionBudget")
        .context("no PodDisruptionBudget")?;
    ensure!(pdb["spec"]["minAvailable"] == 1, "pdb: {pdb}");
    Ok(())
}

/// `analytics.uiListen` becomes the controller's `--analytics-ui-listen` (which the
/// controller passes to the analytics Deployment it builds); unset, no flag; a non-loopback
/// address is refused by the values schema before anything is rendered.
#[test]
fn chart_passes_the_analytics_ui_listener_to_the_controller() -> Result<()> {
    let controller_args = |docs: &[Value]| -> Result<Vec<String>> {
        let d = find(docs, "Deployment", "fw-fabricwatch")?;
        Ok(d["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect())
    };
    let default = controller_args(&render_chart(&[])?)?;
    ensure!(
        !default
            .iter()
            .any(|a| a.starts_with("--analytics-ui-listen")),
        "no listener by default: {default:?}"
    );
    let set = controller_args(&render_chart(&[
        "--set",
        "analytics.uiListen=127.0.0.1:8081",
    ])?)?;
    ensure!(
        set.iter()
            .any(|a| a == "--analytics-ui-listen=127.0.0.1:8081"),
        "args: {set:?}"
    );
    ensure!(
        render_chart(&["--set", "analytics.uiListen=0.0.0.0:8081"]).is_err(),
        "a non-loopback uiListen must be refused"
    );
    Ok(())
}

/// Every `fabricwatch_*` name in the dashboards is one a component exports.
#[test]
fn dashboards_use_exported_metric_names() -> Result<()> {
    let root = repo_root();
    let mut source = String::new();
    for crate_dir in [
        "node-agent",
        "operator/analytics",
        "operator/notifier",
        "operator",
        "operator/ai",
    ] {
        collect_rs(&root.join(crate_dir).join("src"), &mut source)?;
    }
    let dir = root.join("charts/fabricwatch/dashboards");
    let mut checked = 0;
    for e in std::fs::read_dir(&dir)? {
        let path = e?.path();
        let text = std::fs::read_to_string(&path)?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        ensure!(
            json["panels"].as_array().is_some_and(|p| !p.is_empty()),
            "{}: no panels",
            path.display()
        );
        for name in metric_names(&text) {
            checked += 1;
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            let known = source.contains(&format!("\"{name}\""))
                || source.contains(&format!("\"{base}\""))
                || name
                    .strip_prefix("fabricwatch_rdma_congestion_")
                    .is_some_and(|suffix| source.contains(&format!("\"{suffix}\"")));
            ensure!(
                known,
                "{}: metric {name} is exported by no component",
                path.display()
            );
        }
    }
    ensure!(
        checked >= 20,
        "only {checked} metric references found in the dashboards"
    );
    Ok(())
}

fn collect_rs(dir: &Path, out: &mut String) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect_rs(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push_str(&std::fs::read_to_string(&p)?);
        }
    }
    Ok(())
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("fabricwatch_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The samples (for real clusters and for the local one) parse as the API types and pass
/// the same validation the controller runs.
#[test]
fn examples_are_valid() -> Result<()> {
    for folder in ["examples", "e2e/samples"] {
        let dir = repo_root().join(folder);
        let mut kinds = Vec::new();
        for f in yaml_files(&dir)? {
            let text = std::fs::read_to_string(dir.join(&f))?;
            for doc in parse_yaml_documents(&text)? {
                let kind = doc["kind"].as_str().unwrap_or_default().to_string();
                let spec = doc["spec"].clone();
                let res = match kind.as_str() {
                    "MonitorTarget" => serde_json::from_value::<MonitorTargetSpec>(spec)
                        .map_err(anyhow::Error::from)
                        .and_then(|s| s.validate().map_err(|e| anyhow::anyhow!("{e:?}"))),
                    "AlertRule" => serde_json::from_value::<AlertRuleSpec>(spec)
                        .map_err(anyhow::Error::from)
                        .and_then(|s| s.validate().map_err(|e| anyhow::anyhow!("{e:?}"))),
                    "AIAnalysis" => serde_json::from_value::<AIAnalysisSpec>(spec)
                        .map_err(anyhow::Error::from)
                        .and_then(|s| s.validate().map_err(|e| anyhow::anyhow!("{e:?}"))),
                    "Secret" => Ok(()),
                    other => bail!("{folder}/{f}: unexpected kind {other:?}"),
                };
                res.with_context(|| format!("{folder}/{f}: {kind} is invalid"))?;
                kinds.push(kind);
            }
        }
        for k in ["MonitorTarget", "AlertRule", "AIAnalysis"] {
            ensure!(kinds.iter().any(|x| x == k), "{folder}/ has no {k}");
        }
    }
    Ok(())
}
