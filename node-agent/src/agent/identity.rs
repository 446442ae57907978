//! Who this agent is: node, pod and the address peers probe, from the downward API or
//! the host.

/// Who this agent is, from the downward API (`NODE_NAME`, `POD_NAME`, `POD_IP`) or the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// Node name (hostname when `NODE_NAME` is unset).
    pub node: String,
    /// Address peers should probe (`POD_IP` of a hostNetwork pod).
    pub node_ip: Option<String>,
    /// Pod name.
    pub pod: Option<String>,
}

impl Identity {
    /// Reads the identity through `env` (a `std::env::var`-like lookup); the hostname from
    /// `gethostname(2)` stands in for a missing `NODE_NAME`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        Self {
            node: non_empty("NODE_NAME").unwrap_or_else(hostname),
            node_ip: non_empty("POD_IP"),
            pod: non_empty("POD_NAME"),
        }
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its full length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}
