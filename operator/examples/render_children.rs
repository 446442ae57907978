//! Prints the objects the controller builds, as a YAML stream, without a cluster: for each
//! MonitorTarget its ServiceAccount, ConfigMap, DaemonSet, Service and PodMonitor; for each
//! AlertRule with a `prometheusRule` twin its PrometheusRule; then the analytics and notifier
//! Deployments and Services. The builders are the controller's own
//! (`fabricwatch_operator::controller::build`); the settings are the controller's flags, so
//! the defaults are the controller's defaults.
//!
//! ```sh
//! cargo run -p fabricwatch-operator --example render_children -- FILE.yaml [controller flags]
//! ```
//!
//! Objects that came from the API server carry a `metadata.uid`; one that has none here gets a
//! fixed placeholder, since the owner references need one. Exit status 1 when a file cannot be
//! read or parsed or a builder fails, with the reason on stderr.

use std::process::ExitCode;

use clap::Parser;
use fabricwatch_crds::{AlertRule, MonitorTarget};
use fabricwatch_operator::controller::build::{agent, central, prometheus_rule};
use fabricwatch_operator::controller::Args;
use serde::Deserialize;

#[derive(Parser)]
#[command(name = "render_children")]
struct Cli {
    /// YAML files holding MonitorTargets and AlertRules (other kinds are skipped).
    #[arg(required = true)]
    files: Vec<std::path::PathBuf>,
    #[command(flatten)]
    controller: Args,
}

const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

fn with_uid(meta: &mut kube::core::ObjectMeta, namespace: &str) {
    meta.uid.get_or_insert_with(|| PLACEHOLDER_UID.into());
    meta.namespace.get_or_insert_with(|| namespace.into());
}

fn emit<T: serde::Serialize>(out: &mut String, obj: &T) -> Result<(), String> {
    let yaml = serde_yaml::to_string(obj).map_err(|e| e.to_string())?;
    out.push_str("---\n");
    out.push_str(&yaml);
    Ok(())
}

fn render(cli: &Cli) -> Result<String, String> {
    let settings = cli.controller.settings();
    let mut out = String::new();
    for file in &cli.files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            let parse_err = |e: serde_yaml::Error| format!("{}: {kind}: {e}", file.display());
            match kind {
                "MonitorTarget" => {
                    let mut mt: MonitorTarget =
                        serde_yaml::from_value(value.clone()).map_err(parse_err)?;
                    with_uid(&mut mt.metadata, "default");
                    let objs = agent::build(&mt, &settings, true).map_err(|e| e.to_string())?;
                    emit(&mut out, &objs.service_account)?;
                    emit(&mut out, &objs.config_map)?;
                    emit(&mut out, &objs.daemon_set)?;
                    emit(&mut out, &objs.service)?;
                    if let Some(pm) = &objs.pod_monitor {
                        emit(&mut out, pm)?;
                    }
                }
                "AlertRule" => {
                    let mut ar: AlertRule =
                        serde_yaml::from_value(value.clone()).map_err(parse_err)?;
                    with_uid(&mut ar.metadata, "default");
                    if let Some(pr) = prometheus_rule::build(&ar).map_err(|e| e.to_string())? {
                        emit(&mut out, &pr)?;
                    }
                }
                _ => {}
            }
        }
    }
    for c in central::Component::ALL {
        let objs = central::build(c, &settings, None);
        emit(&mut out, &objs.deployment)?;
        emit(&mut out, &objs.service)?;
    }
    Ok(out)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match render(&cli) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("render_children: {e}");
            ExitCode::FAILURE
        }
    }
}
