//! Set-up shared by the network-namespace tests: the reason to skip (not root, a tool
//! missing), shell commands, two namespaces joined by a veth pair, and entering a
//! namespace from a thread.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::{fs::File, os::fd::AsRawFd, process::Command};

/// Why the namespace tests cannot run here: not root, or one of `tools` not installed.
pub fn skip_reason(tools: &[&str]) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root".into());
    }
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Some(format!("{tool} not installed"));
        }
    }
    None
}

/// Runs `cmd` with `sh -c`: its stdout, or the command and its stderr.
pub fn sh(cmd: &str) -> Result<String, String> {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{cmd}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Namespaces `a` and `b` joined by a veth pair (`veth_a` in `a`, `veth_b` in `b`) with
/// `<subnet>.1/30` and `<subnet>.2/30`, loopback and veth up; removed on drop (also when
/// the test fails).
pub struct VethPair {
    /// The first namespace.
    pub a: String,
    /// The second namespace.
    pub b: String,
    subnet: String,
}

impl VethPair {
    /// Creates the pair, first removing namespaces of the same names left by a crashed run.
    ///
    /// # Panics
    /// When `ip` fails.
    pub fn new(a: String, b: String, veth_a: &str, veth_b: &str, subnet: String) -> Self {
        let p = VethPair { a, b, subnet };
        p.cleanup();
        let (a, b, net) = (&p.a, &p.b, &p.subnet);
        sh(&format!(
            "set -e
             ip netns add {a}; ip netns add {b}
             ip link add {veth_a} netns {a} type veth peer name {veth_b} netns {b}
             ip -n {a} addr add {net}.1/30 dev {veth_a}
             ip -n {b} addr add {net}.2/30 dev {veth_b}
             ip -n {a} link set lo up; ip -n {b} link set lo up
             ip -n {a} link set {veth_a} up; ip -n {b} link set {veth_b} up"
        ))
        .expect("netns setup");
        p
    }

    /// The address in `a`.
    pub fn addr_a(&self) -> String {
        format!("{}.1", self.subnet)
    }

    /// The address in `b`.
    pub fn addr_b(&self) -> String {
        format!("{}.2", self.subnet)
    }

    fn cleanup(&self) {
        let _ = sh(&format!(
            "ip netns del {} 2>/dev/null; ip netns del {} 2>/dev/null; true",
            self.a, self.b
        ));
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Moves the calling thread into network namespace `ns`.
///
/// # Panics
/// When the namespace cannot be opened or entered.
pub fn enter(ns: &str) {
    let f = File::open(format!("/run/netns/{ns}")).expect("open netns");
    // SAFETY: fd is a valid namespace file descriptor for the duration of the call;
    // setns only changes this thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}
