//! Stable pseudonyms for node, pod and namespace names and IP addresses.
//!
//! One [`Anonymizer`] lives for one run: the context builder registers every name it knows,
//! replaces names and addresses (also inside free text such as Event messages) by
//! pseudonyms (`node-1`, `pod-2`, `ns-1`, `ip-3`), and after the model answered, the same
//! mapping turns pseudonyms in the findings back into the real names. The mapping never
//! leaves the process.
//!
//! Free text is scanned once, left to right; at each token start the longest known name wins,
//! then IPv6 and IPv4 literals (also the `ip-10-0-1-5` form of cloud host names) are
//! replaced. Scanning once means a real name that looks like a pseudonym cannot be rewritten
//! twice.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// What a pseudonym stands for; decides its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntityKind {
    /// A Kubernetes node (`node-N`).
    Node,
    /// A pod (`pod-N`).
    Pod,
    /// A namespace (`ns-N`).
    Namespace,
    /// An IPv4 or IPv6 address (`ip-N`).
    Ip,
}

impl EntityKind {
    fn prefix(self) -> &'static str {
        match self {
            EntityKind::Node => "node",
            EntityKind::Pod => "pod",
            EntityKind::Namespace => "ns",
            EntityKind::Ip => "ip",
        }
    }

    const ALL: [EntityKind; 4] = [
        EntityKind::Node,
        EntityKind::Pod,
        EntityKind::Namespace,
        EntityKind::Ip,
    ];
}

/// The pseudonym mapping of one run.
#[derive(Clone, Debug, Default)]
pub struct Anonymizer {
    enabled: bool,
    forward: HashMap<(EntityKind, String), String>,
    reverse: HashMap<String, String>,
    counters: HashMap<EntityKind, usize>,
    /// Known names (nodes, pods, namespaces) for free-text replacement, longest first.
    names: Vec<(String, EntityKind)>,
    names_sorted: bool,
}

impl Anonymizer {
    /// A mapping; with `enabled == false` every method returns its input unchanged.
    pub fn new(enabled: bool) -> Self {
        Anonymizer {
            enabled,
            ..Default::default()
        }
    }

    /// Whether names are replaced.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Number of pseudonyms handed out.
    pub fn len(&self) -> usize {
        self.reverse.len()
    }

    /// `true` when no pseudonym was handed out.
    pub fn is_empty(&self) -> bool {
        self.reverse.is_empty()
    }

    /// The pseudonym of `real` (registering it on first sight). IP addresses given as a
    /// name are canonicalized first, so `10.0.0.1` and the same address inside text share a
    /// pseudonym. Empty names stay empty.
    pub fn name(&mut self, kind: EntityKind, real: &str) -> String {
        if !self.enabled || real.is_empty() {
            return real.to_string();
        }
        if let Some(ip) = parse_ip(real) {
            return self.pseudonym(EntityKind::Ip, &ip);
        }
        let p = self.pseudonym(kind, real);
        if kind != EntityKind::Ip && !self.names.iter().any(|(n, _)| n == real) {
            self.names.push((real.to_string(), kind));
            self.names_sorted = false;
        }
        p
    }

    fn pseudonym(&mut self, kind: EntityKind, key: &str) -> String {
        if let Some(p) = self.forward.get(&(kind, key.to_string())) {
            return p.clone();
        }
        let n = self.counters.entry(kind).or_insert(0);
        *n += 1;
        let p = format!("{}-{}", kind.prefix(), n);
        self.forward.insert((kind, key.to_string()), p.clone());
        self.reverse.insert(p.clone(), key.to_string());
        p
    }

    /// Replaces every known name and every IP address in free text.
    pub fn text(&mut self, s: &str) -> String {
        if !self.enabled {
            return s.to_string();
        }
        if !self.names_sorted {
            // Longest first so `worker-10` is not matched as `worker-1`.
            self.names
                .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
            self.names_sorted = true;
        }
        let bytes = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        let mut copied = 0;
        while i < s.len() {
            if !s.is_char_boundary(i) {
                i += 1;
                continue;
            }
            let prev = if i == 0 { None } else { Some(bytes[i - 1]) };
            let mut hit: Option<(usize, EntityKind, String)> = None;
            if prev.is_none_or(|p| !is_word_byte(p)) {
                let rest = &s[i..];
                hit = self
                    .names
                    .iter()
                    .find(|(name, _)| {
                        rest.starts_with(name.as_str())
                            && rest
                                .as_bytes()
                                .get(name.len())
                                .is_none_or(|b| !is_word_byte(*b))
                    })
                    .map(|(name, kind)| (name.len(), *kind, name.clone()));
            }
            if hit.is_none() && prev.is_none_or(|p| !is_addr_byte(p)) {
                hit = scan_ip(&s[i..]).map(|(len, ip)| (len, EntityKind::Ip, ip));
            }
            match hit {
                Some((len, kind, key)) => {
                    out.push_str(&s[copied..i]);
                    let pseudo = self.pseudonym(kind, &key);
                    out.push_str(&pseudo);
                    i += len;
                    copied = i;
                }
                None => i += 1,
            }
        }
        out.push_str(&s[copied..]);
        out
    }

    /// Replaces pseudonyms in model output by the real names. Unknown pseudonyms (the model
    /// invented `node-99`) stay as they are.
    pub fn reverse(&self, s: &str) -> String {
        if !self.enabled || self.reverse.is_empty() {
            return s.to_string();
        }
        let bytes = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        let mut copied = 0;
        while i < s.len() {
            let at_start = i == 0 || !is_word_byte(bytes[i - 1]);
            if at_start && s.is_char_boundary(i) {
                if let Some(len) = pseudonym_len(&s[i..]) {
                    if let Some(real) = self.reverse.get(&s[i..i + len]) {
                        out.push_str(&s[copied..i]);
                        out.push_str(real);
                        i += len;
                        copied = i;
                        continue;
                    }
                }
            }
            i += 1;
        }
        out.push_str(&s[copied..]);
        out
    }

    /// The real values (names and canonical addresses) behind the pseudonyms; tests use it
    /// to assert none of them reached a prompt.
    pub fn real_values(&self) -> impl Iterator<Item = &str> {
        self.reverse.values().map(String::as_str)
    }
}

/// Bytes that continue a Kubernetes name token (RFC 1123 label characters plus `_`).
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Bytes that continue an address literal.
fn is_addr_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.' || is_word_byte(b)
}

/// Length of a `prefix-N` pseudonym at the start of `s`.
fn pseudonym_len(s: &str) -> Option<usize> {
    for kind in EntityKind::ALL {
        let prefix = kind.prefix();
        let Some(rest) = s.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
            continue;
        };
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            continue;
        }
        let len = prefix.len() + 1 + digits;
        if s.as_bytes().get(len).is_none_or(|b| !is_word_byte(*b)) {
            return Some(len);
        }
    }
    None
}

/// Canonical form of a whole-string IP address.
fn parse_ip(s: &str) -> Option<String> {
    let t = s.trim_start_matches('[').trim_end_matches(']');
    if let Ok(v4) = t.parse::<Ipv4Addr>() {
        return Some(v4.to_string());
    }
    if t.contains(':') {
        if let Ok(v6) = t.parse::<Ipv6Addr>() {
            return Some(v6.to_string());
        }
    }
    None
}

/// An IP literal at the start of `s`: returns its byte length and canonical form.
fn scan_ip(s: &str) -> Option<(usize, String)> {
    // `ip-10-0-1-5`: the EC2-style host name carries the address.
    if let Some(rest) = s.strip_prefix("ip-") {
        if let Some((len, v4)) = scan_v4(rest, b'-') {
            return Some((3 + len, v4));
        }
    }
    let run = s
        .bytes()
        .take_while(|b| b.is_ascii_hexdigit() || *b == b':' || *b == b'.')
        .count();
    let candidate = &s[..run];
    if candidate.matches(':').count() >= 2 {
        // Trailing punctuation of a sentence is not part of the address.
        let mut end = candidate.len();
        while end > 0 {
            let c = &candidate[..end];
            if let Ok(v6) = c.parse::<Ipv6Addr>() {
                return Some((end, v6.to_string()));
            }
            if c.ends_with('.') || c.ends_with(':') {
                end -= 1;
            } else {
                break;
            }
        }
    }
    scan_v4(s, b'.')
}

/// Dotted (or dashed) quad at the start of `s`, not followed by more digits.
fn scan_v4(s: &str, sep: u8) -> Option<(usize, String)> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut octets = [0u8; 4];
    for (n, octet) in octets.iter_mut().enumerate() {
        let digits = b[i..]
            .iter()
            .take(4)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 || digits > 3 {
            return None;
        }
        *octet = s[i..i + digits].parse::<u8>().ok()?;
        i += digits;
        if n < 3 {
            if b.get(i) != Some(&sep) {
                return None;
            }
            i += 1;
        }
    }
    // `1.2.3.4.5` or `1.2.3.45x` is something else (a version, an OID).
    match b.get(i) {
        Some(c) if c.is_ascii_alphanumeric() || *c == b'_' => return None,
        Some(c) if *c == sep && b.get(i + 1).is_some_and(u8::is_ascii_digit) => return None,
        _ => {}
    }
    Some((i, Ipv4Addr::from(octets).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_stable_pseudonyms_and_reverse() {
        let mut a = Anonymizer::new(true);
        assert_eq!(a.name(EntityKind::Node, "gpu-a1"), "node-1");
        assert_eq!(a.name(EntityKind::Node, "gpu-a10"), "node-2");
        assert_eq!(a.name(EntityKind::Node, "gpu-a1"), "node-1");
        assert_eq!(a.name(EntityKind::Namespace, "training"), "ns-1");
        assert_eq!(a.name(EntityKind::Pod, "trainer-0"), "pod-1");
        let t = a.text("pod training/trainer-0 on gpu-a10 lost gpu-a1, gpu-a1x stays");
        assert_eq!(t, "pod ns-1/pod-1 on node-2 lost node-1, gpu-a1x stays");
        assert_eq!(
            a.reverse("node-2 and node-1 (node-12, xnode-1)"),
            "gpu-a10 and gpu-a1 (node-12, xnode-1)"
        );
    }

    #[test]
    fn addresses_inside_text_are_replaced() {
        let mut a = Anonymizer::new(true);
        let t = a.text(
            "ping 10.0.1.5:443 failed; 10.0.1.5 again; ip-10-0-1-5.ec2.internal; \
             v6 fd00::1a and [2001:db8::1]:80. Version 1.2.3.4.5 and 12:30:45 stay, 999.1.1.1 too.",
        );
        assert_eq!(
            t,
            "ping ip-1:443 failed; ip-1 again; ip-1.ec2.internal; \
             v6 ip-2 and [ip-3]:80. Version 1.2.3.4.5 and 12:30:45 stay, 999.1.1.1 too."
        );
        assert_eq!(
            a.reverse("see ip-1 and ip-3"),
            "see 10.0.1.5 and 2001:db8::1"
        );
        assert_eq!(a.name(EntityKind::Node, "fd00:0::1A"), "ip-2");
    }

    #[test]
    fn real_name_shaped_like_a_pseudonym_is_not_rewritten_twice() {
        let mut a = Anonymizer::new(true);
        assert_eq!(a.name(EntityKind::Node, "node-2"), "node-1");
        assert_eq!(a.name(EntityKind::Node, "node-1"), "node-2");
        assert_eq!(a.text("node-1 talks to node-2"), "node-2 talks to node-1");
        assert_eq!(
            a.reverse("node-2 talks to node-1"),
            "node-1 talks to node-2"
        );
    }

    #[test]
    fn disabled_is_identity_and_utf8_is_safe() {
        let mut a = Anonymizer::new(false);
        assert_eq!(a.name(EntityKind::Node, "n1"), "n1");
        assert_eq!(a.text("10.0.0.1 ü"), "10.0.0.1 ü");
        let mut b = Anonymizer::new(true);
        b.name(EntityKind::Node, "n1");
        assert_eq!(b.text("ü n1 ✓10.0.0.1"), "ü node-1 ✓ip-1");
    }
}
