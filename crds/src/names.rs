//! Names of the objects the controller creates for a MonitorTarget, shared by the controller
//! (which creates them) and analytics (which accepts the agents' ServiceAccount), so the two
//! can never disagree.

/// `app.kubernetes.io/name` of the agent Pods (and every other agent object).
pub const AGENT_APP: &str = "fabricwatch-agent";

/// Longest label value and longest name the controller derives (DNS-1123 label length), so
/// that names and label values stay valid whatever the MonitorTarget's name.
const MAX_LABEL: usize = 63;

/// FNV-1a 64-bit hash (Fowler/Noll/Vo, <http://www.isthe.com/chongo/tech/comp/fnv/>): stable
/// across releases and platforms, unlike `std`'s hasher.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `base-suffix`, shortened to at most 63 characters: when too long, `base` is cut and an
/// 8-hex-digit hash of the full base keeps distinct targets distinct.
pub fn child_name(base: &str, suffix: &str) -> String {
    let full = format!("{base}-{suffix}");
    if full.len() <= MAX_LABEL {
        return full;
    }
    let hash = format!("{:08x}", fnv1a64(base.as_bytes()) as u32);
    let keep = MAX_LABEL - suffix.len() - hash.len() - 2;
    let cut: String = base.chars().take(keep).collect();
    let cut = cut.trim_end_matches(['-', '.']);
    format!("{cut}-{hash}-{suffix}")
}

/// A label value for `name` (at most 63 characters, hashed like [`child_name`] when longer).
pub fn label_value(name: &str) -> String {
    if name.len() <= MAX_LABEL {
        return name.to_string();
    }
    let hash = format!("{:08x}", fnv1a64(name.as_bytes()) as u32);
    let cut: String = name.chars().take(MAX_LABEL - 9).collect();
    format!("{}-{hash}", cut.trim_end_matches(['-', '.']))
}

/// Name of the agent DaemonSet, ConfigMap, Service, ServiceAccount and PodMonitor of a target.
pub fn agent_name(target: &str) -> String {
    child_name(target, "agent")
}
