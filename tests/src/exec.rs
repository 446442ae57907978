//! Running commands in pods (`kubectl exec`).

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::AttachParams;
use kube::Api;
use tokio::io::AsyncReadExt;

/// What a command run with [`exec`] printed and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// The exit code (0 on success; -1 when the runtime reported a failure without one).
    pub exit_code: i32,
}

impl ExecOutput {
    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0
    }

    /// `Ok(self)` on exit 0, else an error with the command's exit code and output.
    pub fn check(self) -> Result<ExecOutput> {
        if self.success() {
            Ok(self)
        } else {
            anyhow::bail!(
                "exit code {}; stdout: {:?}; stderr: {:?}",
                self.exit_code,
                self.stdout.trim(),
                self.stderr.trim()
            )
        }
    }
}

/// Run `command` in the first container of pod `pod` (no stdin, no TTY) and collect its
/// output and exit code. A non-zero exit is not an error here; see [`ExecOutput::check`].
pub async fn exec(pods: &Api<Pod>, pod: &str, command: &[&str]) -> Result<ExecOutput> {
    let params = AttachParams::default()
        .stdin(false)
        .stdout(true)
        .stderr(true)
        .tty(false);
    let mut proc = pods
        .exec(pod, command.to_vec(), &params)
        .await
        .with_context(|| format!("exec {command:?} in pod {pod}"))?;
    let mut stdout = proc.stdout().context("exec: no stdout stream")?;
    let mut stderr = proc.stderr().context("exec: no stderr stream")?;
    let status = proc.take_status().context("exec: no status channel")?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (r1, r2, status) = tokio::join!(
        stdout.read_to_end(&mut out),
        stderr.read_to_end(&mut err),
        status
    );
    r1.context("exec: reading stdout")?;
    r2.context("exec: reading stderr")?;
    let exit_code = match status {
        Some(s) if s.status.as_deref() == Some("Success") => 0,
        Some(s) => s
            .details
            .as_ref()
            .and_then(|d| d.causes.as_ref())
            .and_then(|causes| {
                causes
                    .iter()
                    .find(|c| c.reason.as_deref() == Some("ExitCode"))
            })
            .and_then(|c| c.message.as_deref())
            .and_then(|m| m.parse().ok())
            .unwrap_or(-1),
        None => -1,
    };
    proc.join().await.context("exec: finishing the session")?;
    Ok(ExecOutput {
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
        exit_code,
    })
}
