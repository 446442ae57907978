//! Commands and processes on the test host: running a command for its output, `kubectl`,
//! iptables rules inside a local node's network namespace (`e2e/cluster nodeexec`), and host
//! processes a test starts (the LLM stand-in, Prometheus, Alertmanager), killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, ensure, Context, Result};

use crate::{repo_root, Cluster, LocalCluster};

/// Runs `cmd` to completion and returns its stdout.
///
/// # Errors
/// When it cannot be started or exits non-zero; the error carries its stdout and stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `kubectl ARGS...` against `cluster`: the local cluster's own kubectl (`e2e/cluster
/// kubectl`, 1.20.2, whatever is on `PATH`), else [`kubectl_on_path`] with its kubeconfig.
///
/// # Errors
/// As [`run`].
pub fn kubectl(cluster: &Cluster, args: &[&str]) -> Result<String> {
    match cluster.local() {
        Some(local) => {
            let mut all = vec!["kubectl"];
            all.extend_from_slice(args);
            local.run_script(&all)
        }
        None => kubectl_on_path(cluster.kubeconfig(), args),
    }
}

/// `kubectl ARGS...` with the `kubectl` found on `PATH` and `KUBECONFIG=kubeconfig`.
///
/// # Errors
/// As [`run`].
pub fn kubectl_on_path(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    run(Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .args(args))
}

/// A process on the host started by a test, its stdout and stderr in `<dir>/<name>.log`;
/// killed (by its own pid) on drop.
pub struct HostProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl HostProcess {
    /// Starts `cmd` (stdin closed) with its output in `dir/<name>.log`.
    ///
    /// # Errors
    /// When the log file cannot be created or the process cannot be started.
    pub fn start(name: &'static str, dir: &Path, cmd: &mut Command) -> Result<HostProcess> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        Ok(HostProcess { name, child, log })
    }

    /// The last 30 lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// `Ok` while it runs.
    ///
    /// # Errors
    /// When it has exited, with its exit status and log tail.
    pub fn ensure_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
        Ok(())
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An iptables rule at the top of the `INPUT` chain inside local node `n`'s network namespace
/// (`e2e/cluster nodeexec N iptables ...`, root); deleted by [`NodeRule::remove`] or on drop.
pub struct NodeRule<'a> {
    local: &'a LocalCluster,
    node: usize,
    spec: Vec<String>,
    active: bool,
}

impl<'a> NodeRule<'a> {
    /// `iptables -I INPUT SPEC...` in node `node` (1-based: node 2 is `fw-n2`).
    ///
    /// # Errors
    /// When `e2e/cluster nodeexec` or iptables fails.
    pub fn insert(local: &'a LocalCluster, node: usize, spec: &[&str]) -> Result<NodeRule<'a>> {
        let n = node.to_string();
        let mut args = vec!["nodeexec", &n, "iptables", "-I", "INPUT"];
        args.extend_from_slice(spec);
        local.run_script(&args)?;
        Ok(NodeRule {
            local,
            node,
            spec: spec.iter().map(|s| s.to_string()).collect(),
            active: true,
        })
    }

    /// `iptables -D INPUT SPEC...`; a second call does nothing.
    ///
    /// # Errors
    /// When `e2e/cluster nodeexec` or iptables fails (the rule then counts as still there).
    pub fn remove(&mut self) -> Result<()> {
        if !self.active {
            return Ok(());
        }
        let n = self.node.to_string();
        let mut args = vec!["nodeexec", n.as_str(), "iptables", "-D", "INPUT"];
        args.extend(self.spec.iter().map(String::as_str));
        self.local.run_script(&args)?;
        self.active = false;
        Ok(())
    }
}

impl Drop for NodeRule<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("removing the iptables rule on node {}: {e:#}", self.node);
        }
    }
}

/// The LLM stand-in (`llm-standin`, a Bedrock Converse look-alike):
/// `FABRICWATCH_LLM_STANDIN_BIN`, else `<CARGO_TARGET_DIR or repo/target>/debug/llm-standin`.
///
/// # Errors
/// When that file does not exist, saying how to build it.
pub fn standin_binary() -> Result<PathBuf> {
    let path = std::env::var_os("FABRICWATCH_LLM_STANDIN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"))
                .join("debug/llm-standin")
        });
    ensure!(
        path.exists(),
        "{} missing: run `cargo build -p fabricwatch-ai --features testing --bin llm-standin` or set FABRICWATCH_LLM_STANDIN_BIN",
        path.display()
    );
    Ok(path)
}

/// iptables match and target dropping 40 % of the packets at random (`statistic` match):
/// appended to a [`NodeRule`] spec to make a path lossy rather than dead.
pub const DROP_40_PERCENT: [&str; 8] = [
    "-m",
    "statistic",
    "--mode",
    "random",
    "--probability",
    "0.4",
    "-j",
    "DROP",
];
