//! Loading the agent configuration: YAML file, then `FABRICWATCH_<SECTION>__<KEY>`
//! environment overrides, then command-line flags, then validation.
//!
//! Environment keys map to config fields by lower-casing and camel-casing each part:
//! `FABRICWATCH_PING__TIMEOUT_SECONDS` → `ping.timeoutSeconds`,
//! `FABRICWATCH_INTERVAL_SECONDS` → `intervalSeconds`. Values are parsed as YAML scalars
//! (or flow sequences, e.g. `[10.0.0.1, gw]`), so `1.5`, `true` and `icmp` all work.

use std::{net::SocketAddr, path::Path};

use fabricwatch_proto::agent_config::{AgentConfig, Level};
use serde_yaml::Value;

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "FABRICWATCH_";
/// Environment variables with the prefix that are flags of the binary, not config fields.
const NON_CONFIG_ENV: &[&str] = &["FABRICWATCH_LOG_FORMAT", "FABRICWATCH_CONFIG"];
/// Top-level fields of [`AgentConfig`] (camelCase). A `FABRICWATCH_*` variable whose first
/// segment names none of them belongs to another program sharing the prefix (the test
/// harness's `FABRICWATCH_E2E`, the build cache's `FABRICWATCH_CACHE`, ...) and is left
/// alone; an unknown key inside a known section is still an error.
pub const CONFIG_SECTIONS: &[&str] = &[
    "target",
    "intervalSeconds",
    "listen",
    "sysfsRoot",
    "procfsRoot",
    "analytics",
    "rdma",
    "ping",
    "host",
    "thresholds",
    "snapshotDir",
];

/// A configuration error; the message names the field (`ping.timeoutSeconds`) or the
/// environment variable it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// YAML syntax or a field of the wrong type / unknown name.
    #[error("invalid config{origin}: {message}")]
    Parse {
        /// Where it came from (` in <file>` or ` from environment`).
        origin: String,
        /// serde's message, which includes the field path.
        message: String,
    },
    /// An environment override that names no field.
    #[error("invalid environment override {var}: {message}")]
    Env {
        /// Variable name.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value out of range.
    #[error("invalid config: {field}: {message}")]
    Invalid {
        /// Field path, e.g. `intervalSeconds`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Flag overrides (applied after the environment).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlagOverrides {
    /// `--sysfs-root`.
    pub sysfs_root: Option<String>,
    /// `--procfs-root`.
    pub procfs_root: Option<String>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--snapshot-dir`.
    pub snapshot_dir: Option<String>,
}

/// `TIMEOUT_SECONDS` → `timeoutSeconds`.
pub fn env_key_to_field(key: &str) -> String {
    let mut out = String::new();
    for (i, part) in key.split('_').filter(|p| !p.is_empty()).enumerate() {
        let lower = part.to_ascii_lowercase();
        if i == 0 {
            out.push_str(&lower);
        } else {
            let mut cs = lower.chars();
            if let Some(f) = cs.next() {
                out.push(f.to_ascii_uppercase());
                out.extend(cs);
            }
        }
    }
    out
}

/// Applies `FABRICWATCH_*` variables from `env` onto a YAML document.
///
/// # Errors
/// [`ConfigError::Env`] for a variable that names no path or whose parent is not a mapping.
pub fn apply_env(
    doc: &mut Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfigError> {
    let mut applied = Vec::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !NON_CONFIG_ENV.contains(&k.as_str()))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let rest = &var[ENV_PREFIX.len()..];
        let path: Vec<String> = rest.split("__").map(env_key_to_field).collect();
        if !path
            .first()
            .is_some_and(|first| CONFIG_SECTIONS.contains(&first.as_str()))
        {
            continue;
        }
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env {
                var,
                message: "empty path segment".into(),
            });
        }
        let value: Value = serde_yaml::from_str(&raw).unwrap_or(Value::String(raw.clone()));
        let value = if value.is_null() {
            Value::String(raw)
        } else {
            value
        };
        let mut cur = &mut *doc;
        for (i, seg) in path.iter().enumerate() {
            if cur.is_null() {
                *cur = Value::Mapping(Default::default());
            }
            let Value::Mapping(map) = cur else {
                return Err(ConfigError::Env {
                    var,
                    message: format!("{} is not a section", path[..i].join(".")),
                });
            };
            let key = Value::String(seg.clone());
            if i + 1 == path.len() {
                map.insert(key, value.clone());
                break;
            }
            cur = map.entry(key).or_insert(Value::Null);
        }
        applied.push(format!("{var} → {}", path.join(".")));
    }
    Ok(applied)
}

/// Loads the config: `file` (optional YAML), `env`, then `flags`; validates the result.
///
/// # Errors
/// A [`ConfigError`] naming the file, variable or field at fault.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &FlagOverrides,
) -> Result<AgentConfig, ConfigError> {
    let (mut doc, origin) = match file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.display().to_string(),
                source,
            })?;
            let doc: Value = serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
                origin: format!(" in {}", p.display()),
                message: e.to_string(),
            })?;
            (
                doc,
                format!(" in {} (after environment overrides)", p.display()),
            )
        }
        None => (Value::Null, " (after environment overrides)".to_string()),
    };
    if doc.is_null() {
        doc = Value::Mapping(Default::default());
    }
    apply_env(&mut doc, env)?;
    // Round-trip through text so serde reports the failing field's path.
    let text = serde_yaml::to_string(&doc).map_err(|e| ConfigError::Parse {
        origin: origin.clone(),
        message: e.to_string(),
    })?;
    let mut cfg: AgentConfig = serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
        origin,
        message: e.to_string(),
    })?;
    if let Some(v) = &flags.sysfs_root {
        cfg.sysfs_root = v.clone();
    }
    if let Some(v) = &flags.procfs_root {
        cfg.procfs_root = v.clone();
    }
    if let Some(v) = &flags.listen {
        cfg.listen = v.clone();
    }
    if let Some(v) = &flags.snapshot_dir {
        cfg.snapshot_dir = Some(v.clone());
    }
    validate(&cfg)?;
    Ok(cfg)
}

fn invalid(field: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Longest accepted interval or timeout, in seconds (one year): far beyond any useful
/// setting, and small enough that turning it into a `Duration` and adding it to an `Instant`
/// cannot overflow.
const MAX_SECONDS: f64 = 365.0 * 86_400.0;

fn positive(field: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 && v <= MAX_SECONDS {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be a positive number of seconds up to {MAX_SECONDS}, got {v}"),
        ))
    }
}

fn level(field: &str, l: &Level, higher_is_worse: bool) -> Result<(), ConfigError> {
    if !l.warning.is_finite() || !l.critical.is_finite() {
        return Err(invalid(
            field,
            "warning and critical must be finite numbers",
        ));
    }
    let ordered = if higher_is_worse {
        l.warning <= l.critical
    } else {
        l.warning >= l.critical
    };
    if !ordered {
        return Err(invalid(
            field,
            format!(
                "warning ({}) must be {} critical ({})",
                l.warning,
                if higher_is_worse {
                    "at most"
                } else {
                    "at least"
                },
                l.critical
            ),
        ));
    }
    Ok(())
}

/// Range checks serde cannot express.
///
/// # Errors
/// [`ConfigError::Invalid`] naming the field.
pub fn validate(c: &AgentConfig) -> Result<(), ConfigError> {
    positive("intervalSeconds", c.interval_seconds)?;
    c.listen.parse::<SocketAddr>().map_err(|e| {
        invalid(
            "listen",
            format!("{:?} is not an address:port ({e})", c.listen),
        )
    })?;
    if c.sysfs_root.is_empty() {
        return Err(invalid("sysfsRoot", "must not be empty"));
    }
    if c.procfs_root.is_empty() {
        return Err(invalid("procfsRoot", "must not be empty"));
    }
    positive("ping.timeoutSeconds", c.ping.timeout_seconds)?;
    if c.ping.packets_per_probe == 0 || c.ping.packets_per_probe > 1000 {
        return Err(invalid(
            "ping.packetsPerProbe",
            "must be between 1 and 1000",
        ));
    }
    if c.ping.tcp_port == 0 {
        return Err(invalid("ping.tcpPort", "must be between 1 and 65535"));
    }
    for (i, p) in c.ping.peers.iter().enumerate() {
        if p.address.is_empty() {
            return Err(invalid(
                &format!("ping.peers[{i}].address"),
                "must not be empty",
            ));
        }
    }
    if let Some(a) = &c.analytics {
        if !(a.url.starts_with("http://") || a.url.starts_with("https://")) {
            return Err(invalid(
                "analytics.url",
                format!("{:?} is not an http(s) URL", a.url),
            ));
        }
        positive("analytics.timeoutSeconds", a.timeout_seconds)?;
        if a.buffer_reports == 0 {
            return Err(invalid("analytics.bufferReports", "must be at least 1"));
        }
        if a.token_file.is_empty() {
            return Err(invalid("analytics.tokenFile", "must not be empty"));
        }
    }
    let t = &c.thresholds;
    level("thresholds.cpuUsagePercent", &t.cpu_usage_percent, true)?;
    level("thresholds.memoryUsedPercent", &t.memory_used_percent, true)?;
    level("thresholds.diskFreePercent", &t.disk_free_percent, false)?;
    level("thresholds.lossPercent", &t.loss_percent, true)?;
    level("thresholds.rttP99Seconds", &t.rtt_p99_seconds, true)?;
    level(
        "thresholds.rdmaErrorsPerMinute",
        &t.rdma_errors_per_minute,
        true,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_of_other_programs_are_left_alone() {
        let c = load(
            None,
            env(&[
                ("FABRICWATCH_E2E", "1"),
                ("FABRICWATCH_CACHE", "/var/cache/fabricwatch"),
                ("FABRICWATCH_KEEP", "1"),
                ("FABRICWATCH_PING__TIMEOUT_SECONDS", "0.25"),
            ]),
            &FlagOverrides::default(),
        )
        .expect("unrelated FABRICWATCH_ variables are not config");
        assert_eq!(c.ping.timeout_seconds, 0.25);
    }

    #[test]
    fn config_sections_list_every_top_level_field() {
        let full = AgentConfig {
            target: Some(Default::default()),
            analytics: Some(Default::default()),
            snapshot_dir: Some("/tmp".into()),
            ..AgentConfig::default()
        };
        let Value::Mapping(m) = serde_yaml::to_value(&full).expect("serialize") else {
            panic!("config serializes to a mapping");
        };
        let mut keys: Vec<String> = m
            .keys()
            .filter_map(|k| k.as_str().map(String::from))
            .collect();
        keys.sort();
        let mut listed: Vec<String> = CONFIG_SECTIONS.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(keys, listed);
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keys_camel_case() {
        assert_eq!(env_key_to_field("TIMEOUT_SECONDS"), "timeoutSeconds");
        assert_eq!(env_key_to_field("PING"), "ping");
        assert_eq!(env_key_to_field("INTERVAL_SECONDS"), "intervalSeconds");
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.yaml");
        std::fs::write(
            &f,
            "intervalSeconds: 5\nping:\n  timeoutSeconds: 2\n  externalTargets: [1.1.1.1]\n",
        )
        .expect("write");
        let cfg = load(
            Some(&f),
            env(&[
                ("FABRICWATCH_PING__TIMEOUT_SECONDS", "0.5"),
                ("FABRICWATCH_ANALYTICS__URL", "http://a:8080"),
                ("FABRICWATCH_RDMA__HW_COUNTERS", "false"),
                ("FABRICWATCH_LOG_FORMAT", "json"),
                ("HOME", "/root"),
            ]),
            &FlagOverrides {
                listen: Some("127.0.0.1:9999".into()),
                ..FlagOverrides::default()
            },
        )
        .expect("load");
        assert_eq!(cfg.interval_seconds, 5.0);
        assert_eq!(cfg.ping.timeout_seconds, 0.5);
        assert_eq!(cfg.ping.external_targets, vec!["1.1.1.1".to_string()]);
        assert_eq!(cfg.analytics.expect("analytics").url, "http://a:8080");
        assert!(!cfg.rdma.hw_counters);
        assert_eq!(cfg.listen, "127.0.0.1:9999");
    }

    #[test]
    fn errors_name_the_field() {
        let e = load(
            None,
            env(&[("FABRICWATCH_PING__TIMEOUT_SECONDS", "soon")]),
            &FlagOverrides::default(),
        )
        .expect_err("bad type");
        assert!(e.to_string().contains("ping.timeoutSeconds"), "{e}");
        let e = load(
            None,
            env(&[("FABRICWATCH_PING__TIMEOUT_SECS", "1")]),
            &FlagOverrides::default(),
        )
        .expect_err("unknown");
        assert!(e.to_string().contains("timeoutSecs"), "{e}");
        let e = load(
            None,
            env(&[("FABRICWATCH_INTERVAL_SECONDS", "0")]),
            &FlagOverrides::default(),
        )
        .expect_err("range");
        assert!(e.to_string().contains("intervalSeconds"), "{e}");
        // Beyond what a Duration holds: an error, not a panic when the loop starts.
        let e = load(
            None,
            env(&[("FABRICWATCH_PING__TIMEOUT_SECONDS", "1e300")]),
            &FlagOverrides::default(),
        )
        .expect_err("too long");
        assert!(e.to_string().contains("ping.timeoutSeconds"), "{e}");
        let e = load(
            None,
            env(&[]),
            &FlagOverrides {
                listen: Some("nope".into()),
                ..FlagOverrides::default()
            },
        )
        .expect_err("listen");
        assert!(e.to_string().contains("listen"), "{e}");
        let e = load(
            None,
            env(&[(
                "FABRICWATCH_THRESHOLDS__DISK_FREE_PERCENT",
                "{warning: 5, critical: 10}",
            )]),
            &FlagOverrides::default(),
        )
        .expect_err("order");
        assert!(e.to_string().contains("thresholds.diskFreePercent"), "{e}");
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.yaml");
        std::fs::write(&f, "ping:\n  packetsPerProbe: -3\n").expect("write");
        let e = load(Some(&f), env(&[]), &FlagOverrides::default()).expect_err("negative");
        assert!(e.to_string().contains("ping.packetsPerProbe"), "{e}");
        let e = load(
            Some(&dir.path().join("missing.yaml")),
            env(&[]),
            &FlagOverrides::default(),
        )
        .expect_err("missing");
        assert!(e.to_string().contains("missing.yaml"), "{e}");
    }

    #[test]
    fn empty_file_is_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.yaml");
        std::fs::write(&f, "").expect("write");
        assert_eq!(
            load(Some(&f), env(&[]), &FlagOverrides::default()).expect("load"),
            AgentConfig::default()
        );
    }
}
